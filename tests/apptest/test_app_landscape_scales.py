"""The landscape page's scales: each surface on its own loss range by default, even when a DM's centre
loss is 10,000 times smaller than the GAN's; the shared relative rise as an option; the sentence that
says which one is smoother, generated from the numbers beside it (each number may pick another model)."""

import json
from dataclasses import replace

import numpy as np
import pytest

from dstab import cache, checkpoints, zoo, zooresults
from dstab.analysis.results import Plan
from dstab.analysis.specs import ProbeSpec
from dstab.plots import surface as surface_plots
from dstab.plots.smoothness_text import smoother_sentence

PAGE = "pages/landscape.py"
SEED = 77  # direction seed of the stored fakes: nothing else in the suite uses it


def _grid(n: int = 11):
    a = np.linspace(-1, 1, n)
    return a, np.add.outer(a**2, a**2)


def _store(eid: str, loss: np.ndarray, metrics: dict, seed: int = SEED) -> None:
    """A surface result for the page's own request key, stored as if computed."""
    bundle = checkpoints.load(zoo.checkpoint_path(eid))
    spec = zooresults.SURFACE
    probe = ProbeSpec.of(bundle.kind, 500, "g", batch_size=spec.probe.batch_size, seed=spec.probe.seed)
    plan = Plan(replace(spec, probe=probe, grid=11, radius=1.0, seed=seed), [bundle])
    a = np.linspace(-1, 1, 11)
    probe = {"kind": "dm", "timesteps": [500]} if bundle.kind == "dm" else {"kind": "gan-g"}
    meta = {"radius": 1.0, "grid": 11, "centre_loss": float(loss[5, 5]), "metrics": metrics, "probe": probe}
    cache.store(plan.spec.name, plan.params, plan.shas, meta, {"alphas": a, "betas": a, "loss": loss})


@pytest.fixture
def far_apart(dash_env):
    _, bowl = _grid()
    dm = 2e-4 * (1 + 40 * bowl)  # centre 0.0002, rises 40-fold
    gan = 1.0 + 0.5 * bowl  # centre 1, rises by half
    _store("toy2d/dm-eps-s0", dm, {"relative_rise": 40.0, "curvature_roughness": 0.1, "convex_fraction": 0.9})
    _store("toy2d/gan-s0", gan, {"relative_rise": 0.5, "curvature_roughness": 0.4, "convex_fraction": 0.6})
    return dm, gan


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec)["data"][0] for c in at.get("plotly_chart")]


def test_each_surface_spans_its_own_loss_by_default(app, far_apart):
    dm, gan = far_apart
    at = app(PAGE, data="toy2d", grid="11", dseed=str(SEED), surf3d="true")
    assert not at.exception, at.exception
    cont_dm, cont_gan, surf_dm, surf_gan = _charts(at)[:4]
    assert (surf_dm["cmin"], surf_dm["cmax"]) == pytest.approx((dm.min(), dm.max()), rel=1e-12)
    assert (cont_dm["zmin"], cont_dm["zmax"]) == pytest.approx((dm.min(), dm.max()), rel=1e-12)
    assert (surf_gan["cmin"], surf_gan["cmax"]) == pytest.approx((gan.min(), gan.max()), rel=1e-12)
    assert (cont_gan["zmin"], cont_gan["zmax"]) == pytest.approx((gan.min(), gan.max()), rel=1e-12)
    assert cont_dm["colorbar"]["title"]["text"] == "loss"


def test_shared_relative_rise_is_one_scale_for_both(app, far_apart):
    at = app(PAGE, data="toy2d", grid="11", dseed=str(SEED), scale="shared relative rise", surf3d="true")
    assert not at.exception, at.exception
    _, _, surf_dm, surf_gan = _charts(at)[:4]
    assert surf_dm["cmax"] == surf_gan["cmax"] == pytest.approx(80.0, rel=1e-9)  # the DM's corner rise sets both
    assert surf_dm["cmin"] == -surf_dm["cmax"]


def test_views_log_and_raw():
    _, bowl = _grid(5)
    losses = {"dm": 1e-3 * (1 + bowl), "gan": 2 + bowl}
    log = surface_plots.views(losses, surface_plots.LOG)
    assert (log["dm"].lo, log["dm"].hi) == pytest.approx((-3.0, np.log10(3e-3)), rel=1e-12)
    raw = surface_plots.views(losses, surface_plots.RAW)
    assert (raw["dm"].lo, raw["dm"].hi) == (raw["gan"].lo, raw["gan"].hi) == pytest.approx((1e-3, 4.0))
    flat = surface_plots.views({"x": np.ones((3, 3))})["x"]
    assert flat.lo < 1.0 < flat.hi  # a flat surface still gets a range to draw in


def _metrics(rise: float, rough: float, convex: float) -> dict:
    return {"relative_rise": rise, "curvature_roughness": rough, "convex_fraction": convex}


# (DM metrics, DM centre loss, GAN metrics, GAN centre loss, what the sentence must say, what it must not)
CASES = {
    # the relative rise picks the GAN only because the DM's centre loss is 5,000 times smaller: in absolute
    # terms the DM rises less (0.008 vs 0.5), and the sentence blames the scale
    "rise-by-scale": (
        _metrics(40.0, 0.1, 0.9),
        2e-4,
        _metrics(0.5, 0.4, 0.6),
        1.0,
        [
            "convex fraction 0.9 vs 0.6: dm-eps-s0; curvature roughness 0.1 vs 0.4: dm-eps-s0; "
            "relative rise 40 vs 0.5: gan-s0.",
            "The numbers disagree: convex fraction and curvature roughness pick dm-eps-s0, relative rise picks gan-s0.",
            "0.0002 for the DM against 1 for the GAN: in absolute terms dm-eps-s0 rises less by r = 1 (0.008 vs 0.5)",
        ],
        ["centre loss does not explain"],
    ),
    # toy2d at t = 50 as Chromium showed it: the rise picks the GAN in absolute terms too (0.832 vs 0.51), so
    # the centre loss explains nothing (the old canned sentence blamed it)
    "rise-by-climb": (
        _metrics(5.74, 0.773, 0.875),
        0.145,
        _metrics(0.5, 1.24, 0.0748),
        1.02,
        [
            "relative rise 5.74 vs 0.5: gan-s0.",
            "The absolute rise picks gan-s0 too (0.832 vs 0.51 by r = 1; centre losses 0.145 vs 1.02), so the "
            "centre loss does not explain it",
            "convex fraction and curvature roughness find dm-eps-s0's surface the more regular one",
        ],
        ["divides by the centre loss"],
    ),
    # each shape number picks another model; the rise sides with the convex fraction
    "shapes-split": (
        _metrics(0.5, 0.9, 0.8),
        1.0,
        _metrics(2.0, 0.3, 0.4),
        1.0,
        [
            "convex fraction 0.8 vs 0.4: dm-eps-s0; curvature roughness 0.9 vs 0.3: gan-s0; relative rise 0.5 vs 2: "
            "dm-eps-s0.",
            "The numbers disagree: convex fraction and relative rise pick dm-eps-s0, curvature roughness picks gan-s0.",
            "while curvature roughness finds gan-s0's surface the more regular one",
            "The two shape numbers disagree: dm-eps-s0 has more of its grid curving upward (convex fraction 0.8 vs "
            "0.4), gan-s0 the more even curvature (curvature roughness 0.9 vs 0.3).",
        ],
        ["divides by the centre loss"],
    ),
    "all-agree": (
        _metrics(0.5, 0.1, 0.9),
        1.0,
        _metrics(2.0, 0.4, 0.6),
        1.0,
        ["All three ranking numbers pick dm-eps-s0."],
        ["disagree", "centre loss"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_sentence_follows_the_numbers_beside_it(app, dash_env, case):
    dm_metrics, dm_centre, gan_metrics, gan_centre, says, never = CASES[case]
    seed = SEED + 1 + list(CASES).index(case)  # a key of its own per case
    _, bowl = _grid()
    _store("toy2d/dm-eps-s0", dm_centre * (1 + bowl), dm_metrics, seed)
    _store("toy2d/gan-s0", gan_centre * (1 + bowl), gan_metrics, seed)
    at = app(PAGE, data="toy2d", grid="11", dseed=str(seed))
    assert not at.exception, at.exception
    sentence = " ".join(i.value for i in at.info)
    rows = {r["model"]: r for r in at.table[-1].value.to_dict("records")}  # the numbers beside it
    assert rows["dm-eps-s0"]["convex fraction"] == dm_metrics["convex_fraction"]
    assert rows["gan-s0"]["relative rise at r = 1.0"] == gan_metrics["relative_rise"]
    for text in says:
        assert text in sentence, sentence
    for text in never:
        assert text not in sentence, sentence


def test_a_rise_at_or_below_zero_ranks_nothing():
    # toy2d at t = 500 (seen in Chromium): the GAN's G loss falls on average from its centre (a tilted sheet),
    # and the sentence called the GAN "smoother by relative rise" and blamed the DM's small centre loss
    dm = {"metrics": _metrics(5.74, 0.773, 0.875), "centre_loss": 0.145}
    gan = {"metrics": _metrics(-0.0206, 1.24, 0.0748), "centre_loss": 1.02}
    text = smoother_sentence(("dm-eps-s0", dm), ("gan-s0", gan))
    assert "convex fraction 0.875 vs 0.0748: dm-eps-s0; curvature roughness 0.773 vs 1.24: dm-eps-s0" in text
    assert "relative rise 5.74 vs -0.0206: no ranking." in text
    assert "Both ranking numbers pick dm-eps-s0." in text
    assert "gan-s0's loss is on average no higher at r than at the centre (relative rise -0.0206)" in text
    assert "divides by the centre loss" not in text
