"""The landscape page: DM and GAN surfaces side by side, numbers equal to dstab.analysis.landscape's."""

import numpy as np
import pytest

from dstab import checkpoints, probes, zoo
from dstab.analysis import landscape

PAGE = "pages/landscape.py"


def _library_metrics(eid: str, **probe) -> dict:
    bundle = checkpoints.load(zoo.checkpoint_path(eid))
    p = probes.dm_probe(bundle, [500]) if bundle.kind == "dm" else probes.gan_probe(bundle, probe.get("role", "g"))
    return landscape.surface(p, 21, 1.0, 0).meta["metrics"]


def test_toy2d_defaults_render_with_library_numbers(app):
    at = app(PAGE, data="toy2d")
    assert not at.exception, at.exception
    assert not at.error
    assert len(at.get("plotly_chart")) == 2  # the contour maps first; WebGL surfaces and small multiples on request
    at.toggle(key="landscape.surf3d").set_value(True).run()
    at.toggle(key="landscape.multiples").set_value(True).run()
    assert len(at.get("plotly_chart")) == 5  # + 3-D surface for each of DM and GAN, small multiples
    assert at.query_params["surf3d"] == "true" and at.query_params["multiples"] == "true"
    table = at.table[-1].value  # the side-by-side smoothness table
    assert list(table["model"]) == ["dm-eps-s0", "gan-s0"]
    for row, eid in zip(table.to_dict("records"), ["toy2d/dm-eps-s0", "toy2d/gan-s0"]):
        expected = _library_metrics(eid)
        assert row["relative rise at r = 1.0"] == pytest.approx(expected["relative_rise"], rel=1e-9)
        assert row["curvature roughness"] == pytest.approx(expected["curvature_roughness"], rel=1e-9)
        assert row["convex fraction"] == pytest.approx(expected["convex_fraction"], rel=1e-12)


def test_gan_discriminator_probe_and_url_state(app):
    at = app(PAGE, data="toy2d", role="D", grid="11", radius="0.5")
    assert not at.exception, at.exception
    assert at.selectbox(key="landscape.grid").value == 11
    assert at.selectbox(key="landscape.radius").value == 0.5
    gan_row = at.table[-1].value.to_dict("records")[1]
    assert gan_row["probe"] == "GAN, D loss"
    bundle = checkpoints.load(zoo.checkpoint_path("toy2d/gan-s0"))
    ref = landscape.surface(probes.gan_probe(bundle, "d"), 11, 0.5, 0).meta["metrics"]
    assert gan_row["relative rise at r = 0.5"] == pytest.approx(ref["relative_rise"], rel=1e-9)
    assert at.radio(key="landscape.role").value == "D"


def test_bad_url_values_fall_back_to_defaults(app):
    at = app(PAGE, data="toy2d", grid="7", radius="abc")
    assert not at.exception, at.exception
    assert at.selectbox(key="landscape.grid").value == 21
    assert at.selectbox(key="landscape.radius").value == 1.0
    notes = " ".join(w.value for w in at.warning)
    assert "grid='7' ignored (not one of 5, 11, 21, 31, 41, 51); using the default 21" in notes
    assert "radius='abc' ignored" in notes


def test_costly_surface_waits_for_a_click_then_computes(app, monkeypatch):
    monkeypatch.setenv("DSTAB_AUTO_COMPUTE_S", "0")
    at = app(PAGE, data="digits", grid="5")
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 0
    captions = " ".join(c.value for c in at.caption)
    assert "not in the cache; estimated cost" in captions
    buttons = [b for b in at.button if b.label == "Compute"]
    assert len(buttons) == 2
    buttons[1].click().run()  # the GAN's
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1  # the GAN's contour map
    rel = at.table[-1].value.to_dict("records")[0]["relative rise at r = 1.0"]
    bundle = checkpoints.load(zoo.checkpoint_path("digits/gan-s0"))
    ref = landscape.surface(probes.gan_probe(bundle, "g"), 5, 1.0, 0).meta["metrics"]["relative_rise"]
    assert rel == pytest.approx(ref, rel=1e-9)
    assert np.isfinite(rel)


def test_compute_all_starts_the_dm_and_the_gan_together(app, monkeypatch):
    monkeypatch.setenv("DSTAB_AUTO_COMPUTE_S", "0")
    at = app(PAGE, data="toy2d", grid="5", radius="0.5", surf3d="true", multiples="true")
    assert len(at.get("plotly_chart")) == 0
    assert [b.label for b in at.button if b.label.startswith("Compute")] == ["Compute all 2", "Compute", "Compute"]
    next(b for b in at.button if b.label == "Compute all 2").click().run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 5
    assert list(at.table[-1].value["model"]) == ["dm-eps-s0", "gan-s0"]


def test_timestep_control_marks_the_stored_values(app):
    # a direction seed no other test uses: only what this test computes is stored
    at = app(PAGE, data="toy2d", grid="5", dseed="4242", t="250")  # computes (and stores) the DM's surface at t = 250
    first = next(c.value for c in at.caption if c.value.startswith("Stored, drawn at once"))
    assert first == "Stored, drawn at once: t = 250; the others are computed when chosen."  # said after computing
    again = app(PAGE, data="toy2d", grid="5", dseed="4242", t="10")
    assert not again.exception, again.exception
    assert again.select_slider(key="landscape.t").options == ["1", "10", "50", "100", "250", "500", "750", "900", "999"]
    stored = next(c.value for c in again.caption if c.value.startswith("Stored, drawn at once"))
    assert stored == "Stored, drawn at once: t = 10, 250; the others are computed when chosen."
    assert again.select_slider(key="landscape.t").value == 10
    assert at.select_slider(key="landscape.t").value == 250


def test_one_plan_and_one_lookup_per_result_per_render(app, monkeypatch):
    """The timestep control's marks, the two surfaces and the small multiples ask for the same results:
    a render builds one Plan (one key) and reads the cache once per distinct result."""
    from collections import Counter

    from dstab import cache
    from dstab.analysis.results import Plan

    app(PAGE, data="toy2d", grid="5")  # computes the two surfaces the page shows
    reads, plans = Counter(), []
    real_read, real_init = cache.read_key, Plan.__init__

    def read_key(name, key, roots=None):
        reads[key] += 1
        return real_read(name, key, roots)

    def init(self, spec, bundles, device="cpu"):
        plans.append(spec)
        real_init(self, spec, bundles, device)

    monkeypatch.setattr(cache, "read_key", read_key)
    monkeypatch.setattr(Plan, "__init__", init)
    at = app(PAGE, data="toy2d", grid="5", surf3d="true", multiples="true")  # every panel that looks up
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 5
    T = checkpoints.load(zoo.checkpoint_path("toy2d/dm-eps-s0")).diffusion.T
    dm_t = [t for t in (1, 10, 50, 100, 250, 500, 750, 900, 999) if t < T]  # a t past T is refused by the spec
    assert len(plans) == len(set(plans)) == len(dm_t) + 2  # the DM at each t; the GAN's G and D
    # each read once (results this server's job runner computed are not read from the cache at all)
    assert set(reads.values()) == {1} and len(reads) <= len(plans)
