"""The four readouts of a speed-up on curves whose answers are known: crossings, areas, final levels,
plateaus (one reached at a known evaluation, one never reached), and a single noisy dip that must not
decide a crossing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from dstab.errors import DstabError
from dstab.experiments import readouts as ro

STEPS = np.arange(100, 6001, 100, dtype=float)


def test_the_running_mean_is_centred_with_fewer_points_at_the_ends():
    assert ro.smooth([1, 2, 3, 4, 5, 6], 3).tolist() == [1.5, 2, 3, 4, 5, 5.5]
    assert ro.smooth([1, 2, 3, 4, 5, 6], 5).tolist() == [2, 2.5, 3, 4, 4.5, 5]
    assert ro.smooth([7.0] * 9, 5).tolist() == [7.0] * 9  # a constant stays constant


def test_crossings_interpolate_between_evaluations():
    assert ro.crossing([100, 200, 300], [10.0, 6.0, 2.0], 4.0) == pytest.approx(250.0)
    assert ro.crossing([100, 200], [3.0, 1.0], 5.0) == 100.0  # already there at the first evaluation
    assert ro.crossing([100, 200], [9.0, 8.0], 5.0) is None
    assert ro.crossing([100, 200, 300], [0.1, 0.3, 0.5], 0.4, higher=True) == pytest.approx(250.0)


def test_one_noisy_dip_does_not_decide_a_crossing():
    steps = STEPS[:40]
    values = 300.0 - 0.05 * steps  # reaches 200 at step 2000
    values[steps == 1100] = 150.0  # one evaluation far below its neighbours (245)
    assert ro.crossing(steps, values, 200.0) < 1100  # the raw curve would be decided by it
    # on the centred running mean the dip is a fifth as deep (245 - 95 / 5 = 226 > 200): the trend decides
    assert ro.ladder_crossings(ro.Curve(steps, values), [200.0], 5) == [pytest.approx(2000.0)]


def test_a_variant_twice_as_fast_gives_log_2_on_the_ladder():
    steps = STEPS[:40]
    ref = ro.Curve(steps, 600.0 - 0.05 * steps)  # reaches 450 at 3000
    var = ro.Curve(steps, 600.0 - 0.10 * steps)  # at 1500
    levels = ro.ladder_levels(550.0, 450.0, (0.2, 0.4, 0.6, 0.8))
    assert levels == pytest.approx([550 * (450 / 550) ** f for f in (0.2, 0.4, 0.6, 0.8)])
    rx, vx = ro.ladder_crossings(ref, levels, 5), ro.ladder_crossings(var, levels, 5)
    assert [r / v for r, v in zip(rx, vx)] == pytest.approx([2.0] * 4)
    assert ro.ladder_readout(rx, vx) == pytest.approx(np.log(2.0))
    # a level one run never reaches is left out of that seed's mean; none shared: no readout
    assert ro.ladder_readout([400.0, None], [200.0, 100.0]) == pytest.approx(np.log(2.0))
    assert ro.ladder_readout([None], [100.0]) is None


def test_area_and_final_level_are_log_ratios_of_known_curves():
    ref = ro.Curve(STEPS, 50.0 * np.exp(-STEPS / 2000.0) + 10.0)
    var = ro.Curve(STEPS, 0.8 * (50.0 * np.exp(-STEPS / 2000.0) + 10.0))  # 0.8x everywhere
    assert ro.area_readout(ref, var) == pytest.approx(-np.log(0.8))
    assert ro.final_readout(ref, var, 10) == pytest.approx(-np.log(0.8))
    assert ro.final_level([1, 2, 3, 4], 2) == 3.5
    assert ro.log_area([1.0, np.e, np.e**2]) == pytest.approx(1.0)
    # only the evaluations both runs have count; for a higher-is-better metric the sign flips
    short = ro.Curve(STEPS[:10], var.values[:10])
    assert ro.area_readout(ref, short) == pytest.approx(-np.log(0.8))
    up = ro.Curve(STEPS, ref.values, higher=True)
    assert ro.area_readout(up, ro.Curve(STEPS, var.values, higher=True)) == pytest.approx(np.log(0.8))


def _alternating(n: int, eps: float) -> np.ndarray:
    return eps * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def reference_plateau(x, values, window, alpha):
    """The same test written with scipy's linregress, for the cross-check."""
    y = np.log(values)
    for i in range(window - 1, len(y)):
        fit = sps.linregress(x[i - window + 1 : i + 1], y[i - window + 1 : i + 1])
        if fit.slope / fit.stderr >= -sps.t.ppf(1 - alpha, window - 2):
            return i
    return None


def test_a_flat_noisy_curve_plateaus_at_its_first_full_window():
    values = 100.0 * np.exp(_alternating(len(STEPS), 0.05))
    assert ro.plateau_index(STEPS, values, 20, 0.05) == 19
    assert ro.plateau_x(STEPS, values, 20, 0.05) == 2000.0


def test_a_curve_that_never_stops_falling_never_plateaus():
    values = 100.0 * np.exp(-STEPS / 3000.0 + _alternating(len(STEPS), 0.002))
    assert ro.plateau_index(STEPS, values, 20, 0.05) is None
    assert ro.plateau_x(STEPS, values) is None  # 'not reached' is a result
    assert ro.plateau_readout(None, 2000.0) is None and ro.plateau_readout(3000.0, 1500.0) == pytest.approx(np.log(2))


def test_a_fall_then_a_noisy_level_plateaus_where_the_slope_test_says():
    fall = np.where(STEPS < 2000, 2.0 - STEPS / 2000.0, 1.0)
    values = 100.0 * np.exp(fall + _alternating(len(STEPS), 0.03))
    got = ro.plateau_index(STEPS, values, 20, 0.05)
    assert got == reference_plateau(STEPS, values, 20, 0.05)
    assert 19 <= got <= 39  # after the fall ends (index 19), once the window's slope is within its noise


def test_the_slope_t_of_an_exact_fit():
    assert ro.slope_t([1, 2, 3], [1.0, 1.0, 1.0]) == 0.0
    assert ro.slope_t([1, 2, 3], [3.0, 2.0, 1.0]) == -np.inf
    x, y = np.arange(10.0), np.array([0.3, 0.1, 0.5, 0.2, 0.9, 0.4, 0.8, 0.7, 1.2, 0.9])
    fit = sps.linregress(x, y)
    assert ro.slope_t(x, y) == pytest.approx(fit.slope / fit.stderr)


def test_values_inside_the_floor_are_read_as_its_top_and_non_positive_values_need_it():
    assert ro.censored([0.5, -0.001, 0.002], 0.01).tolist() == [0.5, 0.01, 0.01]
    assert ro.censored([0.5, 0.2], 0.3, higher=True).tolist() == [0.5, 0.2]  # no floor for higher-is-better
    with pytest.raises(DstabError, match="values <= 0"):
        ro.Curve([100, 200], [0.1, -0.001])
