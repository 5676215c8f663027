"""The readouts of a speed-up, per run and per seed pair: pure functions of metric curves.

A curve is a metric evaluated at increasing steps. Every readout is a log ratio oriented so that a
positive value means the variant is better (faster, or lower for a lower-is-better metric):
- ladder: iterations to reach each of a few fixed levels, read on the curve smoothed by a centred
  running mean (so one evaluation cannot decide), interpolated linearly between evaluations; per
  seed the mean over the levels both runs reach of log(x_reference / x_variant);
- area: the mean over evaluations of log(metric) (the area under the log-metric curve divided by its
  length), reference minus variant;
- final: log of the mean of the last k evaluations, reference minus variant;
- own plateau: per run, the first evaluation at which the OLS slope of log(metric) over a trailing
  window is not below 0 at one-sided alpha (a t-test on the slope), then log(x_reference / x_variant);
  a run whose test never fires has not reached its plateau, and that is a result.
For a higher-is-better metric every comparison is mirrored (crossings upwards, signs flipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from ..errors import DstabError

READOUTS = ("ladder", "area", "final", "plateau")
NAMES = {
    "ladder": "ladder crossings",
    "area": "area under the log curve",
    "final": "final level",
    "plateau": "own plateau",
}


@dataclass
class Curve:
    """One run's metric at its evaluation steps (`values` > 0: every readout takes logs)."""

    steps: np.ndarray
    values: np.ndarray
    higher: bool = False

    def __post_init__(self):
        self.steps = np.asarray(self.steps, dtype=np.float64)
        self.values = np.asarray(self.values, dtype=np.float64)
        if len(self.values) and not np.all(self.values > 0):
            raise DstabError(
                f"the metric has values <= 0 (smallest {self.values.min():.3g}), so it has no log scale; the "
                "readouts need its noise floor (values below it are set to the floor's top) or a positive metric"
            )

    @property
    def sign(self) -> float:
        return -1.0 if self.higher else 1.0


def censored(values, floor_top: float | None, higher: bool = False) -> np.ndarray:
    """Values of a lower-is-better metric below its floor's top set to that top: there they cannot be
    told from real data (and an unbiased estimator's values near 0 get a log scale)."""
    v = np.asarray(values, dtype=np.float64)
    return v if floor_top is None or higher else np.maximum(v, floor_top)


def smooth(values, window: int = 5) -> np.ndarray:
    """Centred running mean over `window` evaluations, fewer at the ends (a constant stays constant)."""
    v = np.asarray(values, dtype=np.float64)
    half = window // 2
    c = np.concatenate([[0.0], np.cumsum(v)])
    lo = np.clip(np.arange(len(v)) - half, 0, len(v))
    hi = np.clip(np.arange(len(v)) + (window - half), 0, len(v))
    return (c[hi] - c[lo]) / (hi - lo)


def crossing(x, values, level: float, higher: bool = False) -> float | None:
    """The first x at which `values` reaches `level` (at or below it; at or above for `higher`),
    linearly interpolated from the evaluation before; the first x when it starts there; None if never."""
    x, v = np.asarray(x, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if higher:
        v, level = -v, -level
    hit = np.nonzero(v <= level)[0]
    if len(hit) == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return float(x[0])
    return float(x[i - 1] + (x[i] - x[i - 1]) * (v[i - 1] - level) / (v[i - 1] - v[i]))


def final_level(values, k: int) -> float:
    """The mean of the last k evaluations."""
    return float(np.mean(np.asarray(values, dtype=np.float64)[-k:]))


def log_area(values) -> float:
    """The mean over evaluations of log(metric)."""
    return float(np.mean(np.log(np.asarray(values, dtype=np.float64))))


def slope_t(x, y) -> float:
    """The t statistic of the OLS slope of y on x (slope / its standard error); +-inf when the fit
    is exact and the slope not zero, 0 when it is."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(xc @ (y - y.mean())) / sxx
    resid = y - y.mean() - b * xc
    se = np.sqrt(float(resid @ resid) / (len(x) - 2) / sxx)
    if se == 0 or se < 1e-12 * abs(b):
        return 0.0 if b == 0 else np.copysign(np.inf, b)
    return b / se


def plateau_index(x, values, window: int = 20, alpha: float = 0.05, higher: bool = False) -> int | None:
    """The first evaluation at which the OLS slope of log(metric) over the trailing `window`
    evaluations is not below 0 at one-sided `alpha` (not above 0 for `higher`); None if never."""
    y = np.log(np.asarray(values, dtype=np.float64)) * (-1.0 if higher else 1.0)
    critical = -sps.t.ppf(1 - alpha, window - 2)
    for i in range(window - 1, len(y)):
        if slope_t(x[i - window + 1 : i + 1], y[i - window + 1 : i + 1]) >= critical:
            return i
    return None


def plateau_x(x, values, window: int = 20, alpha: float = 0.05, higher: bool = False) -> float | None:
    i = plateau_index(x, values, window, alpha, higher)
    return None if i is None else float(np.asarray(x)[i])


def value_at(x: float, steps, values) -> float:
    """A run's curve (e.g. its pooled smoothed metric) read at step x, linearly interpolated."""
    return float(np.interp(x, steps, values))


def ladder_levels(top: float, bottom: float, fractions) -> list[float]:
    """Levels geometrically spaced at `fractions` of the log distance from `top` to `bottom`."""
    return [float(top * (bottom / top) ** f) for f in fractions]


def ladder_crossings(curve: Curve, levels, window: int) -> list[float | None]:
    s = smooth(curve.values, window)
    return [crossing(curve.steps, s, lv, curve.higher) for lv in levels]


def ladder_readout(ref_x, var_x) -> float | None:
    """The mean over levels both runs reach of log(x_reference / x_variant); None if none is shared."""
    d = [np.log(r / v) for r, v in zip(ref_x, var_x) if r is not None and v is not None and r > 0 and v > 0]
    return float(np.mean(d)) if d else None


def common(ref: Curve, var: Curve) -> tuple[np.ndarray, np.ndarray]:
    """The two runs' values at the steps both evaluated."""
    _, i, j = np.intersect1d(ref.steps, var.steps, return_indices=True)
    return ref.values[i], var.values[j]


def area_readout(ref: Curve, var: Curve) -> float:
    r, v = common(ref, var)
    return ref.sign * (log_area(r) - log_area(v))


def final_readout(ref: Curve, var: Curve, k: int) -> float:
    return ref.sign * (np.log(final_level(ref.values, k)) - np.log(final_level(var.values, k)))


def plateau_readout(ref_x: float | None, var_x: float | None) -> float | None:
    return None if ref_x is None or var_x is None else float(np.log(ref_x / var_x))
