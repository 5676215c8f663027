"""Every analysis page works on every listed model (issue 25): an imported diffusers folder, whose header
names no dataset dstab knows, gets a required data control that says why; a typed folder spec follows the
CLI's confinement rule; the pick holds for that model across pages and travels in the link."""

import numpy as np
import pytest
from PIL import Image

from dstab import checkpoints, probes
from dstab.analysis import landscape

diffusers = pytest.importorskip("diffusers")


def diffusers_folder(root):
    """A tiny diffusers UNet2DModel folder (3 x 8 x 8), as `huggingface-cli download` leaves one."""
    import torch

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    ).eval()
    folder = root / "ddpm-tiny"
    unet.save_pretrained(folder)
    diffusers.DDPMScheduler(num_train_timesteps=1000).save_pretrained(folder)
    return folder


def image_folder(root, n: int = 24):
    """Random 8 x 8 RGB PNGs: a `folder:` dataset inside the allowed roots."""
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def test_an_imported_model_is_analysed_once_its_data_is_picked(app, dash_env, tmp_path, monkeypatch):
    ws = dash_env["root"] / "workspace"
    model = diffusers_folder(ws)
    spec = f"folder:{image_folder(ws)}?size=8"
    at = app("pages/landscape.py", data="toy2d", grid="5", t="500")
    at.text_input(key="own_path").input(str(model))
    at.button(key="own_path_load").click().run()
    at.selectbox(key="dm").set_value(f"path:{model}").run()
    assert not at.exception, at.exception
    pick = at.selectbox(key="data_pick_dm")
    assert pick.value is None and "its own" not in pick.options  # required: nothing to default to
    why = " ".join(w.value for w in at.warning)
    assert "yours: ddpm-tiny needs a dataset" in why and "'unknown' is not one dstab knows" in why
    assert [r["model"] for r in at.table[-1].value.to_dict("records")] == ["gan-s0"]  # the GAN goes on

    # a path outside the allowed roots is refused with the CLI's words, and nothing is computed
    pick.set_value(pick.options[-1]).run()
    at.text_input(key=f"data_typed_dm_path:{model}").input(f"folder:{tmp_path}").run()
    assert any("DM data" in e.value and "outside the folders this server may read" in e.value for e in at.error)
    at.text_input(key=f"data_typed_dm_path:{model}").input(spec).run()
    assert not at.exception, at.exception
    row = at.table[-1].value.to_dict("records")[0]
    assert row["model"] == "yours: ddpm-tiny"
    bundle = checkpoints.load(model)
    ref = landscape.surface(probes.dm_probe(bundle, [500], 64, 0, spec), 5, 1.0, 0).meta["metrics"]
    assert row["relative rise at r = 1.0"] == pytest.approx(ref["relative_rise"], rel=1e-9)
    assert at.query_params["dmdata"] == spec  # the link carries it

    # the pick is the model's: the Hessian page starts with it, the zoo DM with its own dataset
    monkeypatch.setenv("DSTAB_AUTO_COMPUTE_S", "0")  # the controls only: its Hessian waits for a click
    at.switch_page("pages/hessian.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="data_pick_dm").value == "a folder or CIFAR-10 path..."
    assert at.text_input(key=f"data_typed_dm_path:{model}").value == spec
    at.selectbox(key="dm").set_value("toy2d/dm-eps-s0").run()
    assert at.selectbox(key="data_pick_dm").value == "its own" and "dmdata" not in at.query_params


def test_a_picked_set_of_another_shape_is_refused_by_name(app, dash_env):
    at = app("pages/landscape.py", data="toy2d", grid="5")
    at.selectbox(key="data_pick_dm").set_value("digits").run()
    assert not at.exception, at.exception
    assert any("works on samples shaped (2,) but dataset digits has (1, 8, 8)" in e.value for e in at.error)
