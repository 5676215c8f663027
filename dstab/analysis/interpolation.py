"""1-D linear interpolation between two checkpoints of one architecture.

theta(alpha) = alpha * theta_a + (1 - alpha) * theta_b (the paper's Sec. 3.2,
after Goodfellow et al. 2015), evaluated at alpha = k / steps for every
integer k from lo * steps to hi * steps, so alpha = 0 (theta_b) and alpha = 1
(theta_a) are grid points exactly and the range extends beyond both (default
[-0.5, 1.5]). Buffers are interpolated the same way (BatchNorm running
statistics); a running variance extrapolated below zero is clamped at zero
(BatchNorm then divides by sqrt(eps), its own floor) instead of giving NaN.
Integer buffers (num_batches_tracked) are unused in eval mode and kept from a.

The loss is probe_a's: its fixed batch, its timesteps, and for GANs its
frozen partner network (for a G probe, the D of checkpoint a). For the zoo,
a is the final checkpoint and b the early one of the same run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import budgets
from ..errors import DstabError, require
from ..probes import Probe
from .landscape import loss_seconds, reporting
from .smoothness import curve_metrics

MAX_POINTS = 10001


def interpolation_alphas(lo: float = -0.5, hi: float = 1.5, steps: int = 20) -> np.ndarray:
    """k / steps for k = lo * steps .. hi * steps; 0 and 1 exactly on the grid."""
    require(isinstance(steps, int) and steps >= 2, f"steps per unit must be an integer >= 2, got {steps!r}")
    require(math.isfinite(lo) and math.isfinite(hi), f"the range [{lo}, {hi}] must be finite")
    require(lo <= 0.0 and hi >= 1.0, f"the range [{lo}, {hi}] must include both checkpoints, alpha = 0 and 1")
    k_lo, k_hi = round(lo * steps), round(hi * steps)
    require(
        abs(k_lo - lo * steps) < 1e-9 and abs(k_hi - hi * steps) < 1e-9,
        f"lo * steps and hi * steps must be whole numbers (got {lo} * {steps}, {hi} * {steps})",
    )
    require(k_hi - k_lo + 1 <= MAX_POINTS, f"{k_hi - k_lo + 1} points is absurd; use at most {MAX_POINTS}")
    budgets.check_count(k_hi - k_lo + 1, "DSTAB_MAX_GRID_POINTS", "interpolation points")
    return np.arange(k_lo, k_hi + 1) / steps


def check_compatible(a: Probe, b: Probe) -> None:
    """DstabError unless the two probes have the same kind, parameters and buffers."""
    if a.kind != b.kind:
        raise DstabError(f"cannot interpolate a {a.kind} probe with a {b.kind} probe")
    for what, x, y in (("parameters", a.params, b.params), ("buffers", a.buffers, b.buffers)):
        if set(x) != set(y):
            diff = sorted(set(x) ^ set(y))
            raise DstabError(
                f"{a.name} and {b.name} have different architectures ({what} differ: {diff[:3]}); "
                "interpolate between checkpoints of one architecture"
            )
        wrong = [k for k in x if x[k].shape != y[k].shape]
        if wrong:
            k = wrong[0]
            raise DstabError(
                f"{a.name} and {b.name} have different architectures: {k} is {tuple(x[k].shape)} "
                f"vs {tuple(y[k].shape)}; interpolate between checkpoints of one architecture"
            )


def blend(x: dict, y: dict, alpha: float) -> dict:
    """alpha * x + (1 - alpha) * y for float tensors; running variances clamped at 0; others from x."""
    out = {}
    for k, xa in x.items():
        if not xa.is_floating_point():
            out[k] = xa
            continue
        v = torch.lerp(y[k].to(xa.device), xa, alpha)
        out[k] = v.clamp_min(0.0) if k.endswith("running_var") else v
    return out


@dataclass
class Curve:
    alphas: np.ndarray
    loss: np.ndarray
    meta: dict = field(default_factory=dict)

    def to_record(self) -> tuple[dict, dict]:
        return self.meta, {"alphas": self.alphas, "loss": self.loss}

    @classmethod
    def from_record(cls, meta: dict, arrays: dict) -> Curve:
        return cls(arrays["alphas"], arrays["loss"], meta)


def barrier(alphas: np.ndarray, loss: np.ndarray) -> float:
    """max over alpha in [0, 1] of L(alpha) - ((1 - alpha) L(0) + alpha L(1)): the bump above the chord."""
    inside = (alphas >= 0) & (alphas <= 1)
    l0, l1 = loss[alphas == 0][0], loss[alphas == 1][0]
    a = alphas[inside]
    return float(np.max(loss[inside] - ((1 - a) * l0 + a * l1)))


def rise_over_end(alphas: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """(L(alpha) - L(1)) / |L(1)|: a curve relative to its final checkpoint's loss (curves of different
    models on one axis)."""
    ref = float(loss[alphas == 1][0])
    return (loss - ref) / abs(ref) if ref else loss - ref


def interpolation_params(lo: float, hi: float, steps: int) -> dict:
    return {"lo": float(lo), "hi": float(hi), "steps": int(steps)}


@torch.no_grad()
def interpolate(
    probe_a: Probe,
    probe_b: Probe,
    lo: float = -0.5,
    hi: float = 1.5,
    steps: int = 20,
    progress: Callable[[str, int, int], object] | None = None,
    per_point: float | None = None,
) -> Curve:
    """probe_a's loss along the line through b (alpha = 0) and a (alpha = 1);
    `progress("interpolate", done, total)` after each point."""
    alphas = interpolation_alphas(lo, hi, steps)
    check_compatible(probe_a, probe_b)
    loss_seconds(probe_a, per_point, len(alphas), f"interpolation {probe_b.name} -> {probe_a.name}")
    tick = reporting(progress, "interpolate", len(alphas))
    t0 = time.perf_counter()
    values = []
    for alpha in alphas:
        p = blend(probe_a.params, probe_b.params, float(alpha))
        b = blend(probe_a.buffers, probe_b.buffers, float(alpha))
        values.append(probe_a.loss(p, b).reshape(()))
        tick(len(values))
    loss = torch.stack(values).double().cpu().numpy()
    meta = {
        "analysis": "interpolate",
        "probe_a": probe_a.describe(),
        "probe_b": probe_b.describe(),
        **interpolation_params(lo, hi, steps),
        "loss_a": float(loss[alphas == 1][0]),
        "loss_b": float(loss[alphas == 0][0]),
        "metrics": {**curve_metrics(loss), "barrier": barrier(alphas, loss)},
        "finite": bool(np.isfinite(loss).all()),
        "device": str(probe_a.device),
        "seconds": time.perf_counter() - t0,
    }
    return Curve(alphas, loss, meta)
