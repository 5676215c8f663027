"""Smoothing and rate/ETA of training curves: analytic cases."""

import numpy as np
import pytest

from dstab.training.curves import rate_and_eta, smooth


def test_smooth_keeps_a_straight_line_exactly_including_the_ends():
    line = 3.0 + 0.5 * np.arange(50)
    for k in (1, 5, 100):
        np.testing.assert_allclose(smooth(line, k), line, rtol=0, atol=1e-12)


def test_smooth_window_shrinks_symmetrically_at_the_ends():
    v = np.array([0.0, 10.0, 0.0, 10.0, 0.0, 100.0])
    out = smooth(v, 2)
    # i=0: window {0}; i=1: {0,1,2}; i=2: {0..4}; i=3: {1..5}; i=4: {3,4,5}; i=5: {5}
    np.testing.assert_allclose(out, [0.0, 10 / 3, 4.0, 24.0, 110 / 3, 100.0])


def test_smooth_reduces_noise_in_the_middle():
    rng = np.random.default_rng(0)
    v = rng.normal(size=2001)
    assert smooth(v, 50)[100:-100].std() < 0.2 * v.std()
    assert smooth(v, 0).tolist() == v.tolist()
    assert smooth(np.array([]), 3).size == 0


def test_rate_and_eta_count_only_the_current_process():
    steps = np.array([10, 20, 30, 40, 50, 60])
    walls = np.array([100.0, 101.0, 102.0, 500.5, 501.0, 501.5])  # stopped at 30, resumed at t = 500
    rate, eta = rate_and_eta(steps, walls, total=100, since=500.0)
    assert rate == pytest.approx(20.0)
    assert eta == pytest.approx(2.0)
    rate_all, _ = rate_and_eta(steps, walls, total=100)
    assert rate_all == pytest.approx(50 / 401.5)  # what ignoring the pause would report
    assert rate_and_eta(steps[:1], walls[:1], 100) == (None, None)
