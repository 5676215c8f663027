"""Per-page widget state: a value set on one page never reaches another; link values are parsed
case-insensitively and a refused one is noted (dashboard.urlstate)."""

from dashboard import compute
from dstab import zooresults


def _warnings(at) -> str:
    return " ".join(w.value for w in at.warning)


def test_landscape_timestep_leaves_hessian_and_diffusion_at_their_defaults(app, monkeypatch):
    monkeypatch.setenv("DSTAB_AUTO_COMPUTE_S", "0")  # widgets only: nothing needs computing here
    at = app("pages/landscape.py", data="toy2d", t="900")
    assert not at.exception, at.exception
    assert at.select_slider(key="landscape.t").value == 900
    at.switch_page("pages/hessian.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="hessian.t").value == compute.QUARTILES
    at.switch_page("pages/diffusion_process.py").run()
    assert not at.exception, at.exception
    assert at.slider(key="diffusion_process.t").value == 250
    assert at.radio(key="diffusion_process.sampler").value == "ddim"
    at.switch_page("pages/landscape.py").run()
    assert at.select_slider(key="landscape.t").value == 900  # the page keeps its own value for the session


def test_consistency_sampler_does_not_switch_the_diffusion_page(app, monkeypatch):
    monkeypatch.setenv("DSTAB_AUTO_COMPUTE_S", "0")
    at = app("pages/consistency.py", data="toy2d", seed="7")
    at.radio(key="consistency.sampler").set_value("ddim").run()
    at.switch_page("pages/hessian.py").run()
    assert at.number_input(key="hessian.seed").value == zooresults.HESSIAN.seed
    at.switch_page("pages/diffusion_process.py").run()
    assert at.radio(key="diffusion_process.sampler").value == "ddim"
    at.radio(key="diffusion_process.sampler").set_value("ddpm").run()
    at.switch_page("pages/consistency.py").run()
    assert at.radio(key="consistency.sampler").value == "ddim"
    assert at.number_input(key="consistency.seed").value == 7


def test_link_values_are_case_insensitive(app, monkeypatch):
    monkeypatch.setenv("DSTAB_AUTO_COMPUTE_S", "0")
    at = app("pages/landscape.py", data="TOY2D", role="d", radius="1")
    assert not at.exception, at.exception
    assert at.selectbox(key="data").value == "toy2d"
    assert at.radio(key="landscape.role").value == "D"
    assert at.selectbox(key="landscape.radius").value == 1.0
    assert not at.warning


def test_unknown_link_values_show_a_note_and_use_the_default(app, monkeypatch):
    monkeypatch.setenv("DSTAB_AUTO_COMPUTE_S", "0")
    at = app("pages/landscape.py", data="toy2d", role="x", t="905", dseed="-3")
    assert not at.exception, at.exception
    notes = _warnings(at)
    assert "role='x' ignored (not one of g, d)" not in notes  # the options are shown as offered
    assert "role='x' ignored (not one of G, D); using the default G" in notes
    assert "t='905' ignored (not one of 1, 10, 50, 100, 250, 500, 750, 900, 999); using the default 500" in notes
    assert "dseed='-3' ignored (outside [0, 10000]); using the default 0" in notes
    assert at.radio(key="landscape.role").value == "G"
    assert at.select_slider(key="landscape.t").value == 500
    assert at.number_input(key="landscape.dseed").value == 0
    at.run()  # the note is for the link only: a rerun with the corrected URL shows none
    assert not at.warning


def _own_copy(dash_env, name: str, T: int | None = None, noise: float = 0.0):
    """A toy2d DM of the user's in the workspace: the zoo's dm-eps-s1 with another T, or nudged weights."""
    import torch

    from dstab import checkpoints, zoo

    bundle = checkpoints.load(zoo.checkpoint_path("toy2d/dm-eps-s1"))
    header = {**bundle.header, "diffusion": {**bundle.header["diffusion"], "T": T or bundle.diffusion.T}}
    with torch.no_grad():
        for p in bundle.model.parameters():
            p.add_(noise)
    path = dash_env["root"] / "workspace" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoints.save(path, header, {"model": bundle.model})
    return path


def _t(at):
    """The timestep slider (its widget key follows the options a model offers; its label does not)."""
    return next(s for s in at.select_slider if s.label == "DM timestep t")


def _load_own(at, path):
    at.text_input(key="own_path").input(str(path))
    at.button(key="own_path_load").click().run()
    return f"path:{path}"


def test_a_model_switch_keeps_t_or_takes_the_nearest_and_brings_it_back(app, dash_env, monkeypatch):
    monkeypatch.setenv("DSTAB_AUTO_COMPUTE_S", "0")  # the controls only
    same_t = _own_copy(dash_env, "nudged.safetensors", noise=0.01)
    short = _own_copy(dash_env, "t50.safetensors", T=50)
    at = app("pages/landscape.py", data="toy2d", t="750")
    assert _t(at).value == 750
    # a model with the same T keeps the chosen t, and the options read the same (no "(instant)" labels
    # that change with the model: in Chromium they left the slider and the URL one step apart)
    ref = _load_own(at, same_t)
    at.selectbox(key="dm").set_value(ref).run()
    assert _t(at).value == 750 and at.query_params["t"] == "750"
    assert _t(at).options == [str(t) for t in zooresults.SURFACE_TIMESTEPS]
    assert "None stored yet for this model" in " ".join(c.value for c in at.caption)
    # T = 50 offers the zoo's fractions of its own T: 750 is not among them, the nearest (49) is used, said so
    ref = _load_own(at, short)
    at.selectbox(key="dm").set_value(ref).run()
    assert not at.exception, at.exception
    assert _t(at).options == ["1", "2", "5", "12", "25", "38", "45", "49"]
    assert _t(at).value == 49 and at.query_params["t"] == "49"
    assert "t = 750 is not offered here; the nearest, 49, is used." in " ".join(i.value for i in at.info)
    # back on the zoo's DM the user's own 750 returns (not 50, the nearest to 49)
    at.selectbox(key="dm").set_value("toy2d/dm-eps-s0").run()
    assert _t(at).value == 750 and at.query_params["t"] == "750"
    # a value the user picks on the short model is theirs: it stays, and the next switch works from it
    at.selectbox(key="dm").set_value(f"path:{short}").run()
    _t(at).set_value(5).run()
    at.selectbox(key="dm").set_value("toy2d/dm-eps-s0").run()
    assert _t(at).value == 1 and at.query_params["t"] == "1"
