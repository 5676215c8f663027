"""Hessian, consistency and interpolation pages on the toy2d zoo defaults: the charts appear and every
number in their tables equals what the library computes afresh for the same inputs."""

from dataclasses import replace

import pytest

from dstab import checkpoints, probes, zoo, zooresults
from dstab.analysis import consistency as cons
from dstab.analysis import hessian, interpolation
from dstab.analysis.specs import ProbeSpec

HESSIAN = zooresults.HESSIAN


def _load(eid: str, stage: str = "final"):
    return checkpoints.load(zoo.checkpoint_path(eid, stage))


def test_hessian_page_equals_engine(app):
    at = app("pages/hessian.py", data="toy2d")
    assert not at.exception, at.exception
    assert not at.error
    assert len(at.get("plotly_chart")) == 2  # overlaid densities, top eigenvalues
    rows = at.table[0].value.to_dict("records")
    assert [r["kind"] for r in rows] == ["DM", "GAN"]
    for row, (eid, role) in zip(rows, [("toy2d/dm-eps-s0", None), ("toy2d/gan-s0", "g")]):
        probe = replace(HESSIAN.probe, role=role).build(_load(eid))
        spectrum = hessian.spectrum(probe, **HESSIAN.settings()).summary()
        assert row["lambda_1"] == pytest.approx(spectrum["lambda_1"], rel=1e-9)
        assert row["trace"] == pytest.approx(spectrum["trace"], rel=1e-9)
        assert row["sigma^2 (spectrum variance)"] == pytest.approx(spectrum["sigma2"], rel=1e-9)
        assert row["parameters n"] == spectrum["n_params"]
    assert [r["probe"] for r in rows] == ["DM, t = 125, 375, 625, 875", "GAN, G loss"]
    again = app("pages/hessian.py", data="toy2d")  # a new session: both results now come from the cache
    assert [r["probe"] for r in again.table[0].value.to_dict("records")] == [r["probe"] for r in rows]


def test_consistency_page_equals_eq1_and_x0_counterexample(app):
    at = app("pages/consistency.py", data="toy2d", m="8")
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 4  # linked samples (toy2d points) and PSNR heatmaps
    rows = at.table[0].value.to_dict("records")
    for row, group in zip(rows, ["dm-init", "gan-init"]):
        ids = cons.group_ids("toy2d", group)
        assert row["models N"] == len(ids) == 3
        expected = cons.consistency([_load(i) for i in ids], ids, num=8, seed=0, sampler="ddpm").score
        assert row["C(q) dB"] == pytest.approx(expected, rel=1e-9)

    at = app("pages/consistency.py", data="toy2d", m="8", sampler="ddim", steps="10", x0="true")
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3 + 3  # eps DMs, x0 DMs, GANs (the paper's Fig. 9 test): samples, PSNR
    rows = {r["group"]: r for r in at.table[0].value.to_dict("records")}
    x0_ids = cons.group_ids("toy2d", "x0-init")
    assert rows["X0"]["reference"] == "toy2d/dm-x0-s0" and rows["X0"]["models N"] == len(x0_ids) == 3
    x0 = cons.consistency([_load(i) for i in x0_ids], x0_ids, num=8, seed=0, sampler="ddim", steps=10).score
    assert rows["X0"]["C(q) dB"] == pytest.approx(x0, rel=1e-9)
    eps = rows["DM"]["C(q) dB"]
    verdict = next(m.value for m in at.markdown if "x0-prediction DMs less consistent than eps DMs" in m.value)
    assert "x0 group toy2d/dm-x0-s0, toy2d/dm-x0-s1, toy2d/dm-x0-s2" in verdict
    assert ("holds" in verdict.split(":")[1]) == (x0 < eps)  # the verdict follows the numbers


def test_interpolation_page_equals_library(app):
    at = app("pages/interpolation.py", data="toy2d")
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1  # DM and GAN on one chart
    rows = at.table[0].value.to_dict("records")
    for row, eid, make in [
        (rows[0], "toy2d/dm-eps-s0", lambda b: probes.dm_probe(b, [500], 64, 0)),
        (rows[1], "toy2d/gan-s0", lambda b: probes.gan_probe(b, "g", 64, 0)),
    ]:
        curve = interpolation.interpolate(make(_load(eid)), make(_load(eid, "early")), -0.5, 1.5, 20)
        assert row["roughness"] == pytest.approx(curve.meta["metrics"]["roughness"], rel=1e-9, abs=1e-12)
        assert row["loss final (alpha 1)"] == pytest.approx(curve.meta["loss_a"], rel=1e-9)
        assert row["loss early (alpha 0)"] == pytest.approx(curve.meta["loss_b"], rel=1e-9)


def test_pages_find_their_results_again_by_their_own_keys(app):
    """What a page computed (through the library's cached entry points) it must find by the key it looks up
    first, or every rerun would compute again."""
    from dstab import cache
    from dstab.analysis.results import Plan

    app("pages/landscape.py", data="toy2d", grid="5")
    app("pages/interpolation.py", data="toy2d", steps="4")
    app("pages/hessian.py", data="toy2d")
    app("pages/consistency.py", data="toy2d", m="4")
    dm, gan, dm_early = _load("toy2d/dm-eps-s0"), _load("toy2d/gan-s0"), _load("toy2d/dm-eps-s0", "early")
    ids = cons.group_ids("toy2d", "gan-init")
    surface = replace(zooresults.SURFACE, grid=5)
    requests = [
        Plan(replace(surface, probe=ProbeSpec(timesteps=(500,))), [dm]),
        Plan(replace(surface, probe=ProbeSpec(role="g")), [gan]),
        Plan(replace(zooresults.CURVE, probe=ProbeSpec(timesteps=(500,)), steps=4), [dm, dm_early]),
        Plan(HESSIAN, [dm]),
        Plan(replace(HESSIAN, probe=replace(HESSIAN.probe, role="g")), [gan]),
        Plan(replace(zooresults.CONSISTENCY, num=4).for_kind("gan"), [_load(i) for i in ids]),
    ]
    for req in requests:
        assert cache.lookup(req.spec.name, req.params, req.shas) is not None, req.spec


def test_consistency_shows_all_m_samples_linked_by_their_noise(app):
    import json

    at = app("pages/consistency.py", data="toy2d", m="6")
    assert not at.exception, at.exception
    heads = [h.value for h in at.subheader]
    assert heads[0].startswith("DM: C(q) = ")
    notes = [c.value for c in at.caption if c.value.startswith("Mean PSNR against")]
    assert notes[0] == "Mean PSNR against dm-eps-s0, over all M = 6 samples of N = 3 models."
    assert not any("row of a grid" in c.value for c in at.caption)  # toy2d draws points, not grids
    charts = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    dm = next(spec for key, spec in charts.items() if "samples-dm" in key)
    lines = [t for t in dm["data"] if t["mode"] == "lines"]
    markers = [t for t in dm["data"] if t["mode"] == "markers"]
    assert len(lines) == 6 and [t["name"] for t in markers] == ["dm-eps-s0", "dm-eps-s1", "dm-eps-s2"]
    assert all(t["marker"]["color"] == markers[0]["marker"]["color"] for t in markers)  # a colour per noise
    assert len(set(markers[0]["marker"]["color"])) == 6


def test_consistency_digits_grid_holds_every_sample(app):
    import json

    at = app("pages/consistency.py", data="digits", m="5", sampler="ddim", steps="4")
    assert not at.exception, at.exception
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "samples-dm" in c.proto.id)
    image = spec["data"][0]
    assert image["type"] == "image"
    assert len(spec["layout"]["yaxis"]["ticktext"]) == 3  # a row per model
    assert spec["layout"]["xaxis"]["ticktext"] == ["1", "2", "3", "4", "5"]  # a column per sample, all M


def test_hessian_page_per_block_section_equals_engine(app):
    """The per-block section (toggle in the URL): one figure, the DM and the GAN side by side, each block's
    lambda_1 and trace as the engine computes them; each result's memory plan under the figures."""
    at = app("pages/hessian.py", data="toy2d", blocks="true")
    assert not at.exception, at.exception
    assert not at.error
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # densities, top eigenvalues, per-block spectra
    figure = charts[2].proto.spec
    for eid, role in [("toy2d/dm-eps-s0", None), ("toy2d/gan-s0", "g")]:
        probe = replace(HESSIAN.probe, role=role).build(_load(eid))
        blocks = hessian.spectrum(probe, **{**HESSIAN.settings(), "per_block": True}).blocks
        assert len(blocks) >= 3
        for b in blocks:
            assert f"{b['block']}: n = {b['n_params']:,}, lambda_1 {b['lambda_1']:.4g}" in figure
    plans = [c.value for c in at.caption if "memory: ~" in c.value]
    assert len(plans) == 2 and all("operator" in p and "MiB" in p for p in plans)
