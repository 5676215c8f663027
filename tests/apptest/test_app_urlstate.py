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
