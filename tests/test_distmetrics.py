import numpy as np
import pytest

from dstab import data
from dstab.analysis import distmetrics as dm
from dstab.errors import DstabError


def _gauss(n, mean, cov, seed):
    return np.random.default_rng(seed).multivariate_normal(mean, cov, size=n)


def test_mmd2_of_one_distribution_is_zero_on_average():
    vals = [dm.mmd2(_gauss(300, [0, 0], np.eye(2), s), _gauss(300, [0, 0], np.eye(2), 100 + s)) for s in range(20)]
    spread = np.std(vals) / np.sqrt(len(vals))
    assert abs(np.mean(vals)) < 3 * spread  # unbiased: mean ~0, single values of either sign
    assert min(vals) < 0 < max(vals)


def test_mmd2_of_a_sample_against_itself_unbiased_is_near_zero():
    x, n, k = _gauss(400, [0, 0], np.eye(2), 0), 400, len(dm.MMD_BANDWIDTHS)
    # only the cross term keeps the diagonal (k(x_i, x_i) = 1 per kernel): the value is slightly
    # negative, of order k / n
    assert -2 * k / n < dm.mmd2(x, x) < 0


def test_mmd2_grows_monotonically_with_a_shift():
    x = _gauss(400, [0, 0], np.eye(2), 0)
    base = _gauss(400, [0, 0], np.eye(2), 1)
    vals = [dm.mmd2(x, base + [s, 0.0]) for s in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(b > a for a, b in zip(vals, vals[1:]))
    assert vals[-1] > 1.0


def test_sliced_w2_between_gaussians_matches_the_closed_form():
    m1, m2 = np.array([0.0, 0.0]), np.array([1.0, -0.5])
    s1, s2 = np.array([[1.0, 0.3], [0.3, 0.5]]), np.array([[2.0, 0.0], [0.0, 0.25]])
    x, y = _gauss(40000, m1, s1, 0), _gauss(40000, m2, s2, 1)
    theta = dm.projections(2, 64, seed=3)
    # W2^2 of two 1-D Gaussians: (mean difference)^2 + (std difference)^2
    exact = np.mean(
        (theta @ (m1 - m2)) ** 2
        + (np.sqrt(np.einsum("pi,ij,pj->p", theta, s1, theta)) - np.sqrt(np.einsum("pi,ij,pj->p", theta, s2, theta)))
        ** 2
    )
    assert dm.sliced_w2(x, y, count=64, seed=3) == pytest.approx(np.sqrt(exact), rel=0.03)


def test_sliced_w2_unequal_counts_and_zero_for_identical():
    x = _gauss(500, [0, 0], np.eye(2), 0)
    assert dm.sliced_w2(x, x) == 0.0
    assert dm.sliced_w2(x, x[:250]) < 0.15
    assert dm.sliced_w2(x, x + [3.0, 0.0]) > 1.0


def test_mode_stats_of_the_8_gaussians_data_and_a_collapsed_sample():
    pts = data.load("toy2d", seed=0).data.numpy()
    c, s = data.EIGHT_GAUSSIANS_CENTRES, data.EIGHT_GAUSSIANS_STD
    full = dm.mode_stats(pts, c, s)
    assert full["coverage"] == 8 and full["modes"] == 8
    assert full["precision"] > 0.98  # 3 std holds 98.9% of a 2-D isotropic Gaussian
    assert sum(full["shares"]) == pytest.approx(full["precision"])
    one = dm.mode_stats(c[3] + 0.1 * np.random.default_rng(0).standard_normal((500, 2)), c, s)
    assert one["coverage"] == 1 and one["shares"][3] > 0.98
    far = dm.mode_stats(np.zeros((100, 2)), c, s)  # the centre of the circle: near no mode
    assert far["coverage"] == 0 and far["precision"] == 0.0


def test_bad_points_are_refused():
    with pytest.raises(DstabError, match="NaN"):
        dm.mmd2(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(DstabError, match="dimensions"):
        dm.sliced_w2(np.zeros((5, 2)), np.zeros((5, 3)))
