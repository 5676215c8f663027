"""TensorBoard smoothing (golden values of the published formula) and rate/ETA of training curves."""

import math

import numpy as np
import pytest

from dstab.runs.curves import ema, rate_and_eta


def _tensorboard(values, w):
    """The published formula, written out literally."""
    last, n, out = 0.0, 0, []
    for y in values:
        if not math.isfinite(y):
            out.append(y)
            continue
        last = last * w + (1 - w) * y
        n += 1
        out.append(last / (1 - w**n))
    return out


def test_ema_golden_values():
    # w = 0.6 on 1, 2, 3: last = 0.4, 1.04, 1.824; debiased by 1 - 0.6^n = 0.4, 0.64, 0.784
    np.testing.assert_allclose(ema([1.0, 2.0, 3.0], 0.6), [1.0, 1.625, 1.824 / 0.784], rtol=1e-12)
    assert ema([5.0], 0.9)[0] == pytest.approx(5.0)  # the first value is not biased towards 0
    np.testing.assert_allclose(ema(np.full(50, 3.25), 0.95), 3.25, rtol=1e-12)  # a constant stays constant
    v = [2.0, float("nan"), 4.0, 1.0, float("inf"), 0.5]
    got = ema(v, 0.7)
    np.testing.assert_allclose(got[[0, 2, 3, 5]], np.array(_tensorboard(v, 0.7))[[0, 2, 3, 5]], rtol=1e-12)
    assert np.isnan(got[1]) and np.isinf(got[4])  # non-finite points shown as they are, not counted in n
    np.testing.assert_array_equal(ema(v, 0.0)[[0, 2, 3, 5]], [2.0, 4.0, 1.0, 0.5])
    np.testing.assert_array_equal(ema([3.0, 7.0, 1.0], 1.0), [3.0, 3.0, 3.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ema([1.0], 1.5)


def test_ema_matches_the_literal_formula_on_a_noisy_series():
    rng = np.random.default_rng(0)
    v = np.cumsum(rng.normal(size=300)) + 10
    np.testing.assert_allclose(ema(v, 0.6), _tensorboard(v.tolist(), 0.6), rtol=1e-12)
    assert np.diff(ema(v, 0.99)).std() < 0.2 * np.diff(v).std()


def test_rate_and_eta_count_only_the_current_process():
    steps = np.array([10, 20, 30, 40, 50, 60])
    walls = np.array([100.0, 101.0, 102.0, 500.5, 501.0, 501.5])  # stopped at 30, resumed at t = 500
    rate, eta = rate_and_eta(steps, walls, total=100, since=500.0)
    assert rate == pytest.approx(20.0)
    assert eta == pytest.approx(2.0)
    rate_all, _ = rate_and_eta(steps, walls, total=100)
    assert rate_all == pytest.approx(50 / 401.5)  # what ignoring the pause would report
    assert rate_and_eta(steps[:1], walls[:1], 100) == (None, None)
