"""Statistics of paired per-seed log ratios: intervals, an exact test, Holm's correction. Pure
functions of arrays.

- `interval`: the mean of n per-seed values with a two-sided interval: Student-t at n < 10 (a
  percentile bootstrap of fewer than 10 values covers the truth far less often than it says: at 3
  seeds about 64% for a nominal 90%), the BCa bootstrap (bias-corrected and accelerated, Efron
  1987) at n >= 10.
- `t_test_p`: the two-sided one-sample Student-t p of mean(d) = 0, the interval's own model: the
  test a report's Holm adjustment is made on.
- `sign_flip_p`: the exact two-sided sign-flip permutation p of mean(d) = 0 (H0: d symmetric
  about 0), printed beside it as a distribution-free check; with n values the smallest p it can give
  is 2 / 2^n (`p_floor`): 0.25 for 3 seeds, 0.0625 for 5 (so after Holm over 2 or more tests it can
  never reach 0.10 at 5 seeds). Above 16 values, 2^16 random flips (seeded) stand in for all 2^n.
- `holm`: Holm's step-down adjustment of the p values of one report (family-wise error).
- `mean_band`: per evaluation, the mean over seeds with its Student-t interval (the figures' band).
"""

from __future__ import annotations

from itertools import product

import numpy as np
from scipy import stats as sps

LEVEL = 0.90
BCA_MIN_N = 10  # BCa from this many values; Student-t below
BOOTSTRAP = 10_000
EXACT_FLIPS = 16  # all 2^n sign flips up to this n


def t_interval(d, level: float = LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean of `d` (n >= 2): mean +- t_{(1+level)/2, n-1} sd / sqrt(n)."""
    d = np.asarray(d, dtype=np.float64)
    n = len(d)
    half = sps.t.ppf((1 + level) / 2, n - 1) * d.std(ddof=1) / np.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def bca_interval(d, level: float = LEVEL, resamples: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of `d`: percentile levels moved by the bias correction
    z0 = Phi^-1(share of resampled means below the mean) and the acceleration a from the jackknife
    (a = sum u^3 / (6 (sum u^2)^1.5), u = mean of the others minus the jackknife mean)."""
    d = np.asarray(d, dtype=np.float64)
    n, mean = len(d), float(d.mean())
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    below = (np.sum(means < mean) + 0.5 * np.sum(means == mean)) / resamples
    z0 = sps.norm.ppf(np.clip(below, 1 / resamples, 1 - 1 / resamples))
    jack = (d.sum() - d) / (n - 1)
    u = jack.mean() - jack
    denom = 6.0 * np.sum(u**2) ** 1.5
    a = float(np.sum(u**3) / denom) if denom > 0 else 0.0
    out = []
    for alpha in ((1 - level) / 2, (1 + level) / 2):
        z = z0 + sps.norm.ppf(alpha)
        out.append(float(np.quantile(means, sps.norm.cdf(z0 + z / (1 - a * z)))))
    return out[0], out[1]


def interval(d, level: float = LEVEL, bca_min_n: int = BCA_MIN_N) -> tuple[float, float, str]:
    """(low, high, method) of the mean of `d`: Student-t below `bca_min_n` values, BCa from there."""
    d = np.asarray(d, dtype=np.float64)
    if len(d) >= bca_min_n and d.std() > 0:
        return (*bca_interval(d, level), "BCa")
    return (*t_interval(d, level), "Student-t")


def t_test_p(d) -> float:
    """Two-sided one-sample Student-t p of mean(d) = 0 (n >= 2); 1 for all-zero d, 0 for a constant
    non-zero d (no spread: the t statistic is infinite)."""
    d = np.asarray(d, dtype=np.float64)
    sd = d.std(ddof=1)
    if sd == 0:
        return 1.0 if d.mean() == 0 else 0.0
    t = d.mean() / (sd / np.sqrt(len(d)))
    return float(2 * sps.t.sf(abs(t), len(d) - 1))


def p_floor(n: int) -> float:
    """The smallest two-sided sign-flip p that n paired values allow (above 16: that of the random flips)."""
    if not n:
        return float("nan")
    return 2.0 / 2.0**n if n <= EXACT_FLIPS else 1.0 / (2**EXACT_FLIPS + 1)


def sign_flip_p(d, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p of mean(d) = 0: exact (all 2^n flips) up to 16 values."""
    d = np.asarray(d, dtype=np.float64)
    if len(d) == 0:
        return float("nan")
    observed = abs(d.mean())
    if len(d) <= EXACT_FLIPS:
        flips = np.array(list(product((1.0, -1.0), repeat=len(d))))
        return float(np.mean(np.abs(flips @ d) / len(d) >= observed - 1e-12 * max(1.0, observed)))
    flips = np.random.default_rng(seed).choice((1.0, -1.0), size=(2**EXACT_FLIPS, len(d)))
    hits = np.sum(np.abs(flips @ d) / len(d) >= observed - 1e-12 * max(1.0, observed))
    return float((hits + 1) / (len(flips) + 1))


def holm(ps) -> list[float]:
    """Holm's adjusted p values, in the order given: the i-th smallest p times (m - i + 1), made
    monotone, capped at 1. NaN (a test that could not be made) stays NaN and is not counted in m."""
    ps = np.asarray(ps, dtype=np.float64)
    out = np.full(len(ps), np.nan)
    idx = [i for i in np.argsort(ps, kind="stable") if np.isfinite(ps[i])]
    m, running = len(idx), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out.tolist()


def mean_band(values, level: float = LEVEL):
    """(mean, low, high) over seeds (rows) at every point, the Student-t interval of the mean; with a
    single seed the band is that curve."""
    v = np.asarray(values, dtype=np.float64)
    mean = v.mean(axis=0)
    if len(v) < 2:
        return mean, mean.copy(), mean.copy()
    half = sps.t.ppf((1 + level) / 2, len(v) - 1) * v.std(axis=0, ddof=1) / np.sqrt(len(v))
    return mean, mean - half, mean + half
