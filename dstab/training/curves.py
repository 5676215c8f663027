"""Pure functions on training curves: smoothing and speed (speed-ups across seeds: experiments/stats.py)."""

from __future__ import annotations

import numpy as np


def smooth(values: np.ndarray, half_width: int) -> np.ndarray:
    """Centred moving average whose window shrinks symmetrically near the ends.

    At index i the window is i-k..i+k with k = min(half_width, i, n-1-i), so
    every window is centred on its point: a straight line is returned exactly,
    the end points are never dragged towards the interior (the bias of a
    one-sided or zero-padded window), and the first and last values are kept.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0 or half_width <= 0:
        return v.copy()
    i = np.arange(n)
    k = np.minimum(np.minimum(i, n - 1 - i), half_width)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    return (csum[i + k + 1] - csum[i - k]) / (2 * k + 1)


def smoothed(series: list[dict], half_width: int, keep_short: bool = False) -> list[dict]:
    """Each {"x", "y", ...} series with "smooth": its moving average (`smooth`), or None when not smoothed
    (half_width 0, or two points or fewer unless `keep_short`)."""
    out = []
    for s in series:
        use = half_width > 0 and (keep_short or len(s["y"]) > 2)
        out.append({**s, "smooth": smooth(s["y"], half_width) if use else None})
    return out


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
