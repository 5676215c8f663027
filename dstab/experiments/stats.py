"""Statistics of training curves across seeds: crossings, speed-ups with bootstrap intervals, a
paired sign-flip test. Pure functions of arrays; lower values are better throughout (callers negate
a higher-is-better metric).

- `crossing`: the first x at which a curve reaches a target, linearly interpolated between the
  last evaluation above it and the first at or below it (the first evaluation's x when it starts
  below); None when it never does.
- Targets are per seed: the seed's own reference plateau (a pooled one would be out of reach for
  a reference seed that ends worse than the mean), or easier values derived from it.
- A speed-up of a variant over a reference at one target is, per seed, the ratio
  x_reference / x_variant of their crossings (paired by seed: same data order). Its estimate is
  the geometric mean over seeds, exp(mean d) with d = log ratio; the interval is a percentile
  bootstrap of that mean over seeds; the test is the exact sign-flip permutation test of mean d
  (H0: d symmetric about 0), two-sided. With n seeds its smallest p is 2 / 2^n (0.25 for 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

BOOTSTRAP = 4000
LEVEL = 0.90


def crossing(x, values, target: float) -> float | None:
    x, v = np.asarray(x, dtype=np.float64), np.asarray(values, dtype=np.float64)
    hit = np.nonzero(v <= target)[0]
    if len(hit) == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return float(x[0])
    x0, x1, v0, v1 = x[i - 1], x[i], v[i - 1], v[i]
    return float(x0 + (x1 - x0) * (v0 - target) / (v0 - v1))


def bootstrap_mean_interval(samples: np.ndarray, level: float = LEVEL, n: int = BOOTSTRAP, seed: int = 0):
    """Percentile interval of the mean over rows (seeds) of `samples` (seeds,) or (seeds, points)."""
    a = np.asarray(samples, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n, len(a)))
    means = a[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def sign_flip_p(d) -> float:
    """Exact two-sided sign-flip permutation p-value of mean(d) = 0 (all 2^n flips, n <= 16)."""
    d = np.asarray(d, dtype=np.float64)
    if len(d) == 0:
        return float("nan")
    observed = abs(d.mean())
    flips = np.array(list(product((1.0, -1.0), repeat=len(d))))
    stats = np.abs((flips * d).mean(axis=1))
    return float(np.mean(stats >= observed - 1e-12 * max(1.0, observed)))


@dataclass
class Speedup:
    """A variant's speed-up over a reference at one target, from per-seed crossings."""

    target: float  # the mean over seeds of the per-seed targets
    seeds: list[int]  # seeds complete for both
    reference_x: list[float | None]  # per seed, None = never reached
    variant_x: list[float | None]
    estimate: float | None = None  # geometric mean of per-seed ratios, over seeds where both reached
    low: float | None = None
    high: float | None = None
    p: float | None = None

    @property
    def paired(self) -> int:
        return sum(r is not None and v is not None for r, v in zip(self.reference_x, self.variant_x))

    @property
    def never_reached(self) -> list[int]:
        return [s for s, v in zip(self.seeds, self.variant_x) if v is None]

    @property
    def reference_never(self) -> list[int]:
        return [s for s, r in zip(self.seeds, self.reference_x) if r is None]

    def to_dict(self) -> dict:
        return {
            **self.__dict__,
            "paired": self.paired,
            "never_reached": self.never_reached,
            "reference_never": self.reference_never,
        }


def speedup(targets, seeds, ref_curves, var_curves, level: float = LEVEL) -> Speedup:
    """`ref_curves` / `var_curves`: per seed (x, values) of the same metric, and each seed's
    target (e.g. its own reference's plateau), all in `seeds` order."""
    rx = [crossing(x, v, t) for (x, v), t in zip(ref_curves, targets)]
    vx = [crossing(x, v, t) for (x, v), t in zip(var_curves, targets)]
    out = Speedup(float(np.mean(targets)), list(seeds), rx, vx)
    d = np.array([np.log(r / v) for r, v in zip(rx, vx) if r is not None and v is not None and r > 0 and v > 0])
    if len(d) >= 1:
        out.estimate = float(np.exp(d.mean()))
    if len(d) >= 2:
        lo, hi = bootstrap_mean_interval(d, level)
        out.low, out.high, out.p = float(np.exp(lo)), float(np.exp(hi)), sign_flip_p(d)
    return out


def mean_band(values: np.ndarray, level: float = LEVEL):
    """(mean, low, high) over seeds (rows) at every point: the bootstrap interval of the mean."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_mean_interval(v, level)
    return v.mean(axis=0), lo, hi


def easier_targets(plateau: float, start: float, fractions=(0.1, 0.25, 0.5)) -> list[float]:
    """Targets a fraction of the way back from the plateau towards the first evaluation: on a log
    scale when both are positive (FD spans decades), else linearly."""
    if plateau > 0 and start > 0:
        return [float(plateau * (start / plateau) ** f) for f in fractions]
    return [float(plateau + f * (start - plateau)) for f in fractions]
