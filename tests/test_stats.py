"""The statistics behind a speed-up: Student-t and BCa intervals, the exact sign-flip p and its floor,
Holm's adjustment, against hand values and scipy; and the coverage of the interval at 3 and 5 seeds,
by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from dstab.experiments import stats


def test_the_t_interval_of_three_values_by_hand_and_by_scipy():
    lo, hi = stats.t_interval([0.1, 0.2, 0.3], 0.90)
    half = 2.919985580355516 * 0.1 / np.sqrt(3)  # t_{0.95, 2} x sd / sqrt(n)
    assert (lo, hi) == pytest.approx((0.2 - half, 0.2 + half), abs=1e-12)
    d = np.array([0.31, -0.05, 0.22, 0.18, 0.09])
    want = sps.t.interval(0.90, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    assert stats.t_interval(d, 0.90) == pytest.approx(want, abs=1e-12)


def test_below_ten_values_the_interval_is_t_and_from_ten_it_is_bca():
    assert stats.interval([0.1, 0.2, 0.4])[2] == "Student-t"
    assert stats.interval(np.linspace(0, 1, 10))[2] == "BCa"


def test_bca_agrees_with_scipy():
    d = np.random.default_rng(3).lognormal(0.0, 0.6, size=30)  # skewed: BCa moves off the percentile interval
    lo, hi = stats.bca_interval(d, 0.90, resamples=20_000)
    ref = sps.bootstrap((d,), np.mean, confidence_level=0.90, method="BCa", n_resamples=20_000, random_state=1)
    width = hi - lo
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.03 * width)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.03 * width)
    plo, phi = np.quantile(d[np.random.default_rng(0).integers(0, 30, (20_000, 30))].mean(1), [0.05, 0.95])
    assert hi - phi > 0.01 * width  # the right skew moves the upper end further out than the percentile one


def test_the_sign_flip_p_is_exact_and_has_a_floor():
    assert stats.sign_flip_p([1.0, 1.0, 1.0]) == pytest.approx(0.25)  # 2 of 8 flips are as extreme
    assert stats.sign_flip_p([0.3, 0.1, 0.2, 0.5, 0.4]) == pytest.approx(0.0625) == stats.p_floor(5)
    assert stats.sign_flip_p([0.0, 0.0, 0.0]) == 1.0
    d = [1.0, -1.0, 0.5, 2.0]
    signs = np.array(np.meshgrid(*[[1, -1]] * 4)).T.reshape(-1, 4)
    assert stats.sign_flip_p(d) == pytest.approx(np.mean(np.abs(signs @ d) / 4 >= 0.625 - 1e-12))
    big = np.full(20, 0.1)  # above 16 values: random flips, (hits + 1) / (flips + 1)
    assert stats.sign_flip_p(big) == pytest.approx(1 / (2**16 + 1)) == stats.p_floor(20)


def test_holm_by_hand():
    # sorted 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1, but not below the previous): 0.02, 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    out = stats.holm([0.01, float("nan"), 0.02])  # a test that could not be made is not counted
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert stats.holm([0.0625] * 24)[0] == 1.0  # 24 tests at the 5-seed floor: none survives


def test_the_t_test_p_is_scipys_one_sample_t_test():
    for d in ([0.31, -0.05, 0.22, 0.18, 0.09], [0.1, 0.3, -0.2], [-0.4, -0.1, -0.3, -0.2]):
        assert stats.t_test_p(d) == pytest.approx(sps.ttest_1samp(d, 0.0).pvalue, rel=1e-12)
    assert stats.t_test_p([0.0, 0.0, 0.0]) == 1.0 and stats.t_test_p([0.25, 0.25, 0.25]) == 0.0
    assert stats.t_test_p([0.2, 0.2, 0.2]) < 1e-20  # the mean rounds: a spread of 1e-17, still no doubt


@pytest.mark.parametrize("n", [3, 4, 5])
def test_the_t_test_rejects_a_true_null_at_its_nominal_rate(n):
    """Simulated at the seed counts users have: no effect, the t-test p <= 0.10 in about 10% of
    experiments (the sign-flip p of 3 seeds never goes below 0.25, so it never would)."""
    sims = np.random.default_rng(10 + n).normal(0.0, 0.1, size=(4000, n))
    rejected = np.mean([stats.t_test_p(row) <= 0.10 for row in sims])
    assert rejected == pytest.approx(0.10, abs=0.015)


@pytest.mark.parametrize(("n", "percentile"), [(3, 0.64), (4, 0.73), (5, 0.80)])
def test_the_t_interval_covers_the_truth_at_its_nominal_rate(n, percentile):
    """Simulated: paired log ratios with no effect; the t interval covers 0 about 90% of the time at 3
    to 5 seeds, where the percentile bootstrap covered 64%, about 73% and 80% (the issue's numbers for 3 and 5,
    rechecked)."""
    rng = np.random.default_rng(n)
    sims = rng.normal(0.0, 0.1, size=(20_000, n))
    half = sps.t.ppf(0.95, n - 1) * sims.std(axis=1, ddof=1) / np.sqrt(n)
    covered = np.mean(np.abs(sims.mean(axis=1)) <= half)
    assert covered == pytest.approx(0.90, abs=0.006)
    one = [stats.t_interval(row) for row in sims[:200]]  # the function itself, on the first 200
    assert np.mean([lo <= 0 <= hi for lo, hi in one]) == pytest.approx(
        np.mean(np.abs(sims[:200].mean(1)) <= half[:200])
    )
    # for contrast, the percentile bootstrap (1000 resamples) of the first 2000 simulated experiments
    idx = rng.integers(0, n, size=(2000, 1000, n))
    means = np.take_along_axis(np.repeat(sims[:2000, None, :], 1000, axis=1), idx, axis=2).mean(axis=2)
    lo, hi = np.quantile(means, [0.05, 0.95], axis=1)
    assert np.mean((lo <= 0) & (0 <= hi)) == pytest.approx(percentile, abs=0.04)


def test_the_band_is_a_t_interval_at_each_point():
    v = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    mean, lo, hi = stats.mean_band(v)
    assert mean.tolist() == [2.0, 4.0]
    assert (lo[0], hi[0]) == pytest.approx(stats.t_interval([1.0, 2.0, 3.0]))
    one = stats.mean_band(v[:1])
    assert one[1].tolist() == one[2].tolist() == [1.0, 2.0]
