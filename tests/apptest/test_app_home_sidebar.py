"""Home's live numbers come from the results the report ships; the sidebar refuses bad input visibly
while the rest of the page keeps working."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dstab import cache, checkpoints, models, zoo, zooindex, zooresults
from dstab.analysis import consistency as cons
from dstab.analysis import results
from dstab.analysis.results import Plan


def _consistency(bundles, ids):
    """The shipped consistency spec (DDPM, M = 32) through results.get: (result, where it came from)."""
    found = results.get(zooresults.CONSISTENCY, bundles, names=ids)
    return zooresults.CONSISTENCY.read(found), found.source


def _hessian_params(bundle) -> dict:
    return Plan(zooresults.HESSIAN, [bundle]).params


REPO = Path(__file__).resolve().parents[2]


def test_home_shows_shipped_numbers_once_they_exist(app, monkeypatch, tmp_path):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "fresh-cache"))
    at = app(data="toy2d")
    assert not at.exception, at.exception
    assert [m.value for m in at.metric] == ["not computed"] * 4
    assert len(at.get("page_link")) == 7

    ids = cons.group_ids("toy2d", "dm-init")
    bundles = [checkpoints.load(zoo.checkpoint_path(i)) for i in ids]
    c_dm, _ = _consistency(bundles, ids)
    gan = checkpoints.load(zoo.checkpoint_path("toy2d/gan-s0"))
    spec = zooresults.HESSIAN.read(results.get(zooresults.HESSIAN, [gan]))
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
    assert len(at.get("plotly_chart")) == 2  # the two contour maps

    _upload(at, "big.safetensors", b"\0" * (2 * 2**20))  # the tests' limit is 1 MiB
    assert any("above this server's upload limit" in e.value for e in at.error)

    torch.manual_seed(5)
    arch = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2}
    header = checkpoints.make_header(
        "dm", arch, "toy2d:8gaussians", 3, 5, diffusion={"schedule": "linear", "T": 1000, "prediction": "eps"}
    )
    path = dash_env["root"] / "mine.safetensors"
    checkpoints.save(path, header, {"model": models.build(arch)})
    _upload(at, "mine.safetensors", path.read_bytes())
    assert not at.exception, at.exception
    assert any("added yours: " in s.value and "DM list" in s.value for s in at.success)
    shown = [o for o in at.selectbox(key="dm").options if o.startswith("yours: ")]
    assert len(shown) == 1 and shown[0].endswith("-mine.safetensors")  # its label, never the server's path
    assert not [o for o in at.selectbox(key="dm").options if o.startswith("path:")]
    (ref,) = at.session_state["dstab_user_checkpoints"]
    at.selectbox(key="dm").set_value(ref).run()
    assert not at.exception, at.exception
    assert at.table[-1].value["model"][0].startswith("yours: ")


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


def test_home_shows_the_report_s_own_hessian_and_no_variant(app, monkeypatch, tmp_path):
    """A stored Hessian of the zoo GAN that differs from the report's only in the Lanczos tolerance is
    never shown as the report's; the report's own is, once stored. This miniature manifest names each
    entry's dataset but no train config: the GAN's key is spelled from the manifest, the DM's (its T)
    from the loaded checkpoint."""
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "fresh-cache"))
    entries = zoo.read_manifest()["entries"]
    assert zooresults.keyed_by_manifest("toy2d/gan-s0", entries)
    assert not zooresults.keyed_by_manifest("toy2d/dm-eps-s0", entries)
    gan = checkpoints.load(zoo.checkpoint_path("toy2d/gan-s0"))
    params = _hessian_params(gan)
    variant = {**params, "tol": params["tol"] * 10}
    cache.store("hessian", variant, [gan.sha256], {"lambda_1": 222.0}, {"x": np.zeros(1)})
    assert app(data="toy2d").metric[3].value == "not computed"
    cache.store("hessian", params, [gan.sha256], {"lambda_1": 111.0}, {"x": np.zeros(1)})
    assert zooresults.report_hessian(gan).meta["lambda_1"] == 111.0
    assert zooresults.shipped_hessian("toy2d/gan-s0", entries).key == zooresults.report_hessian(gan).key
    dm = checkpoints.load(zoo.checkpoint_path("toy2d/dm-eps-s0"))
    cache.store("hessian", _hessian_params(dm), [dm.sha256], {"lambda_1": 333.0}, {"x": np.zeros(1)})
    at = app(data="toy2d")
    assert not at.exception, at.exception
    assert [m.value for m in at.metric[2:]] == ["333.00", "111.00"]


HOME_COLD = r"""
import json, sys
from streamlit.testing.v1 import AppTest
import dashboard.server
dashboard.server.warm_up = lambda *a, **k: None  # what a served first page imports, without the warm-up
AppTest.from_file(sys.argv[1], default_timeout=300).run()  # the process's first run (Streamlit's v1 pages mode)
at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.query_params["data"] = sys.argv[2]
at.run()
heavy = [m for m in ("torch", "sklearn", "scipy", "pandas", "pyarrow") if m in sys.modules]
print(json.dumps({"heavy": heavy, "metrics": [m.value for m in at.metric], "exception": [str(e) for e in at.exception],
                  "labels": [m.label for m in at.metric], "captions": [c.value for c in at.main.caption],
                  "device": [c.value for c in at.sidebar.caption if c.value.startswith("Device")]}))
"""


@pytest.mark.parametrize("family", ["digits", "toy2d"])
def test_home_on_the_real_zoo_draws_without_pytorch_and_shows_the_shipped_numbers(family, tmp_path):
    """A cold server's first page imports no PyTorch (nor scikit-learn, scipy, pandas): its numbers
    are the report's results, found from the manifest; the same ones the exact keys of the loaded
    checkpoints find."""
    from dashboard import server

    env = {
        **os.environ,
        "DSTAB_ZOO": str(zoo.zoo_root()),
        "DSTAB_CACHE": str(tmp_path / "cache"),
        "DSTAB_WORKSPACE": str(tmp_path / "ws"),
        "PYTHONPATH": str(REPO),
    }
    out = subprocess.run(
        [sys.executable, "-c", HOME_COLD, str(REPO / "app.py"), family],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["exception"] == [] and seen["heavy"] == []
    assert seen["device"] == [f"Device: {server.device_label()}"]
    expected, entries, scores = [], zoo.read_manifest()["entries"], {}
    for kind in ("dm", "gan"):
        ids = cons.group_ids(family, f"{kind}-init")
        bundles = [checkpoints.load(zoo.checkpoint_path(i)) for i in ids]
        result, source = _consistency(bundles, ids)
        assert source == "shipped"
        # C(q) as the verdict counts it: a collapsed model left out, the reference the first healthy one
        keep = [j for j, i in enumerate(ids) if not zooindex.is_collapsed(entries[i])]
        matrix = result.matrix.mean(dim=2)
        kept = [float(matrix[keep[0], j]) for j in keep[1:]]
        scores[kind] = result.score
        expected.append(f"{np.mean(kept) if len(keep) < len(ids) else result.score:.2f} dB")
    # the sidebar opens on the lowest init seed that trained: toy2d's gan-s0 is mode-collapsed, so gan-s1
    gan = next(e for e in cons.group_ids(family, "gan-init") if not zooindex.is_collapsed(entries[e]))
    assert gan == {"digits": "digits/gan-s0", "toy2d": "toy2d/gan-s1"}[family]
    for eid in (f"{family}/dm-eps-s0", gan):
        expected.append(f"{zooresults.report_hessian(checkpoints.load(zoo.checkpoint_path(eid))).meta['lambda_1']:.2f}")
    assert seen["metrics"] == expected
    # the collapsed models are named where the numbers are, with the number that includes them
    gone = [e for e in cons.group_ids(family, "gan-init") if zooindex.is_collapsed(entries[e])]
    named = [c for c in seen["captions"] if "left out as collapsed" in c]
    assert bool(named) == bool(gone)
    if gone:
        assert (
            f"GAN: {gone[0].split('/')[1]} left out as collapsed (with it, all 3 models: {scores['gan']:.2f} dB)"
            in named[0]
        )
    assert not seen["labels"][3].endswith("(collapsed)")
    assert (family == "toy2d") == bool(gone)  # the shipped zoo: toy2d/gan-s0 collapsed, digits none
    # the single pair's lambda_1 is said to be one pair, and the verdict over every seed is beside it
    pair = next(c for c in seen["captions"] if c.startswith("This one pair"))
    assert "The claim, over every seed: " in pair


def test_the_manifest_spells_the_exact_key_of_every_shipped_hessian(monkeypatch, tmp_path):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "empty"))
    entries = zoo.read_manifest()["entries"]
    found = 0
    for eid in sorted(entries):
        assert zooresults.keyed_by_manifest(eid, entries), eid
        exact = zooresults.report_hessian(checkpoints.load(zoo.checkpoint_path(eid)))
        from_manifest = zooresults.shipped_hessian(eid, entries)
        assert (from_manifest.key if from_manifest else None) == (exact.key if exact else None), eid
        found += exact is not None
    assert found >= 4  # the report ships a DM and a GAN Hessian of both datasets
