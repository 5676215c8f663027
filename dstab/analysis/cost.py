"""The one cost estimator: time one unit of work here, multiply by the number of units.

A unit is one probe loss (surfaces, interpolations; a Hessian-vector product
costs about three), or one model call (sampling). Timing it on this machine
and device makes the estimate honest on a laptop, a shared 2-core box or a
GPU alike. Timings are remembered per process under a caller's key, so a page
that estimates before it computes, and the engine it then runs, time the
unit once between them. Importable without PyTorch (the home page needs the
CostWarning class only through the engines).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Hashable

WARN_SECONDS = 60.0  # estimated cost above which a CostWarning is raised before starting
_TIMINGS: dict[Hashable, float] = {}


class CostWarning(UserWarning):
    """An analysis about to start is estimated to take more than a minute."""


def seconds_per_call(
    fn: Callable[[], object], key: Hashable | None = None, repeats: int = 2, warmup: bool = True
) -> float:
    """The best wall time of fn() over `repeats` calls after one warm-up call (unless `warmup` is False:
    for units costly enough that one call is the measurement), without autograd; remembered under `key`
    (None: timed afresh every time)."""
    if key is not None and key in _TIMINGS:
        return _TIMINGS[key]
    import torch

    with torch.no_grad():
        if warmup:
            fn()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            if isinstance(out, torch.Tensor) and out.device.type == "cuda":
                torch.cuda.synchronize(out.device)
            best = min(best, time.perf_counter() - t0)
    if key is not None:
        _TIMINGS[key] = best
    return best


def warn_if_slow(
    units: int, per_unit: float, what: str, advice: str = "use a smaller grid or a GPU", unit: str = "loss evaluations"
) -> float:
    """units * per_unit seconds; a CostWarning first when that exceeds WARN_SECONDS."""
    estimate = units * per_unit
    if estimate > WARN_SECONDS:
        warnings.warn(
            f"{what}: {units} {unit} at about {per_unit * 1e3:.0f} ms each: roughly {estimate / 60:.1f} min; "
            f"{advice} to go faster",
            CostWarning,
            stacklevel=3,
        )
    return estimate


def forget() -> None:
    """Drop every remembered timing (tests; a device whose load changed)."""
    _TIMINGS.clear()
