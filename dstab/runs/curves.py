"""Pure functions on training curves: TensorBoard's smoothing and speed (speed-ups over seeds:
experiments/stats.py)."""

from __future__ import annotations

import numpy as np


def ema(values, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average (its scalar dashboard's smoothing).

    last = 0; for each finite y: last = w * last + (1 - w) * y, shown last / (1 - w^n) with n the finite
    points so far; a non-finite y is shown as it is and left out. The first value is shown unbiased
    (not pulled towards 0), a constant series stays constant, w = 0 returns the values."""
    v = np.asarray(values, dtype=np.float64)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"smoothing weight must lie in [0, 1], got {weight}")
    out, last, n = v.copy(), 0.0, 0
    if weight == 1.0:  # TensorBoard's limit: the first finite value held
        finite = v[np.isfinite(v)]
        out[np.isfinite(v)] = finite[0] if finite.size else 0.0
        return out
    for i, y in enumerate(v):
        if not np.isfinite(y):
            continue
        last = weight * last + (1.0 - weight) * y
        n += 1
        out[i] = last / (1.0 - weight**n)
    return out


def smoothed(series: list[dict], weight: float) -> list[dict]:
    """Each {"x", "y", ...} series with "smooth": its debiased EMA (`ema`), or None when weight is 0."""
    return [{**s, "smooth": ema(s["y"], weight) if weight > 0 else None} for s in series]


def rate_and_eta(steps, walls, total: int | None, since: float | None = None, window: int = 20):
    """(steps per second over the last `window` logged points, seconds left to reach `total`).

    `walls` are Unix times; only points logged at or after `since` (the launch of the current
    process) count, so the pause between a stop and its resume never enters the rate.
    """
    s, w = np.asarray(steps, dtype=np.float64), np.asarray(walls, dtype=np.float64)
    if since is not None:
        s, w = s[w >= since], w[w >= since]
    s, w = s[-window:], w[-window:]
    if len(s) < 2 or w[-1] <= w[0]:
        return None, None
    rate = (s[-1] - s[0]) / (w[-1] - w[0])
    eta = max(0.0, (total - s[-1]) / rate) if total else None
    return float(rate), eta
