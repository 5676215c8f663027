"""Home's live numbers come from the results the report ships; the sidebar refuses bad input visibly
while the rest of the page keeps working."""

import pytest
import torch

from dstab import checkpoints, models, report, zoo
from dstab.analysis import consistency as cons
from dstab.analysis import hessian


def test_home_shows_shipped_numbers_once_they_exist(app, monkeypatch, tmp_path):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "fresh-cache"))
    at = app(data="toy2d")
    assert not at.exception, at.exception
    assert [m.value for m in at.metric] == ["not computed"] * 4
    assert len(at.get("page_link")) == 5

    ids = cons.group_ids("toy2d", "dm-init")
    bundles = [checkpoints.load(zoo.checkpoint_path(i)) for i in ids]
    c_dm, _ = cons.cached(bundles, ids, num=32, seed=0, sampler="ddpm", steps=None)
    gan = checkpoints.load(zoo.checkpoint_path("toy2d/gan-s0"))
    spec, _ = hessian.cached(report.default_probe(gan, "g"), "dstab", **report.HESSIAN_SETTINGS)
    at = app(data="toy2d")
    values = [m.value for m in at.metric]
    assert values[0] == f"{c_dm.score:.2f} dB"
    assert values[1] == "not computed"
    assert values[3] == f"{spec.lambda_1:.2f}"


def test_path_outside_allowed_roots_is_refused_and_page_still_works(app, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"not used")
    at = app("pages/interpolation.py", data="toy2d")
    at.text_input(key="own_path").input(str(outside))
    at.button(key="own_path_load").click().run()
    assert not at.exception, at.exception
    assert any("outside the folders this server may read" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 1  # the page itself still renders its result


def _upload(at, name: str, payload: bytes):
    at.file_uploader(key="own_up").set_value((name, payload, "application/octet-stream"))
    return at.run()


def test_uploads_bad_oversized_and_good(app, dash_env):
    at = app("pages/landscape.py", data="toy2d", grid="5")
    _upload(at, "notes.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{}garbage")
    assert not at.exception, at.exception
    assert any("was not kept" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 4

    _upload(at, "big.safetensors", b"\0" * (2 * 2**20))  # the tests' limit is 1 MiB
    assert any("above this server's upload limit" in e.value for e in at.error)

    torch.manual_seed(5)
    arch = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2}
    header = checkpoints.make_header("dm", arch, "toy2d:8gaussians", 3, 5,
                                     diffusion={"schedule": "linear", "T": 1000, "prediction": "eps"})  # fmt: skip
    path = dash_env["root"] / "mine.safetensors"
    checkpoints.save(path, header, {"model": models.build(arch)})
    _upload(at, "mine.safetensors", path.read_bytes())
    assert not at.exception, at.exception
    assert any("added yours: " in s.value and "DM list" in s.value for s in at.success)
    choice = [o for o in at.selectbox(key="dm").options if o.startswith("path:")]
    assert len(choice) == 1 and choice[0].endswith("-mine.safetensors")
    at.selectbox(key="dm").set_value(choice[0]).run()
    assert not at.exception, at.exception
    assert at.dataframe[-1].value["model"][0].startswith("yours: ")


def test_link_naming_a_gan_as_the_dm_is_refused(app, dash_env):
    gan_path = zoo.checkpoint_path("toy2d/gan-s0")
    at = app("pages/landscape.py", data="toy2d", grid="5", dm=f"path:{gan_path}")
    assert not at.exception, at.exception
    assert any("is a GAN checkpoint; choose it as the GAN" in e.value for e in at.error)
    assert at.selectbox(key="dm").value == "toy2d/dm-eps-s0"  # the page goes on with the default


@pytest.mark.parametrize("kind", ["dm", "gan"])
def test_sidebar_lists_zoo_entries_by_dataset_and_kind(app, kind):
    at = app(data="toy2d")
    options = at.selectbox(key=kind).options
    expected = sorted(e for e, v in zoo.read_manifest()["entries"].items() if v["kind"] == kind and "toy2d/" in e)
    assert sorted(options) == expected
