"""The same 2-D surface through `loss-landscapes` 3.0.6, the reference engine ("loss-landscapes").

dstab's own engine (`landscape.surface`) is the engine of record; this one
exists as a test oracle and for users who want the package's numbers. It
feeds dstab's directions to `loss_landscapes.planar_interpolation`, which
takes explicit end points, and maps its output back to true coordinates.

Known defects of loss-landscapes 3.0.6, measured on its source, and what dstab does:
1. Zig-zag rows. Its planar loops walk every odd row backwards, stepping
   before each evaluation, so odd rows sit one step lower along the second
   direction than even rows: element [i][j] lies at (i, j + 1) steps for even
   i and (i, j) for odd i. dstab runs it with N + 1 steps from a corner chosen
   so that rows 1..N, columns 0..N-1 (even) and 1..N (odd) are exactly the
   regular N x N grid, and reports `true_coordinates` for the full output.
2. `random_plane` draws directions from U[0, 1) (not Gaussian, Li et al.),
   from the global torch RNG (no seed), makes the second orthogonal to the
   first and only then filter-normalises both, which destroys the
   orthogonality (two all-positive vectors stay far from orthogonal). dstab
   does not use its directions: it passes its own seeded, filter-normalised,
   orthogonal ones, so both engines evaluate the same plane.
3. Its `filter_normalize_` treats a 1-D parameter as filters of one element,
   so every bias entry gets the magnitude of the weight's entry, and an
   all-zero bias (any BatchNorm shift at initialisation) divides a Python
   float by zero: `random_plane` raises ZeroDivisionError. Avoided by (2):
   dstab's bias handling (Li et al.'s "ignore" or "weight") applies to both
   engines.
4. `random_plane` scales its steps by ||theta|| / distance, so a larger
   `distance` gives a smaller plane. Avoided by (2): steps are given exactly.
5. It moves the model it is given in place (parameters end at the plane's far
   corner) and sets requires_grad off on it. dstab only ever hands it fresh
   copies made by the probe (`Probe.module_at`).
6. Accumulated in-place additions: the point after k steps is
   start + step + ... + step in float32, not start + k * step. This moves
   values by float32 rounding only (the cross-check allows 1e-5 relative).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import numpy as np
import torch

from ..errors import require
from ..probes import Probe
from .directions import BIAS_MODES, Direction, plane_directions
from .landscape import Surface, grid_coordinates, loss_seconds, reporting, surface_params, with_metrics

ENGINE = "loss-landscapes"


def true_coordinates(steps: int, corner: tuple[float, float], step: float) -> np.ndarray:
    """(steps, steps, 2): the (a, b) each element of `planar_interpolation`'s output was evaluated at."""
    i = np.arange(steps)[:, None]
    j = np.arange(steps)[None, :]
    b_index = np.where(i % 2 == 0, j + 1, j)
    a = corner[0] + step * np.broadcast_to(i, (steps, steps))
    return np.stack([a, corner[1] + step * b_index], axis=-1)


def regular_part(values: np.ndarray) -> np.ndarray:
    """The N x N regular grid inside the (N + 1) x (N + 1) output of `planar_with_directions`."""
    n = values.shape[0] - 1
    rows = [values[i, 0:n] if i % 2 == 0 else values[i, 1 : n + 1] for i in range(1, n + 1)]
    return np.stack(rows)


def _metric(probe: Probe, progress: Callable[[int], object]):
    from loss_landscapes.metrics.metric import Metric

    calls = itertools.count(1)

    class ProbeLoss(Metric):
        def __call__(self, model_wrapper) -> float:
            progress(next(calls))  # losses done so far
            with torch.no_grad():
                return float(probe.loss_of(model_wrapper.modules[0]))

    return ProbeLoss()


def planar_with_directions(
    probe: Probe,
    d1: Direction,
    d2: Direction,
    steps: int,
    corner: tuple[float, float],
    step: float,
    progress: Callable[[int], object] | None = None,
) -> np.ndarray:
    """loss_landscapes.planar_interpolation over theta + corner + (0..steps) * step along d1, d2."""
    from loss_landscapes import planar_interpolation

    a0, b0 = corner
    theta = probe.params
    start = {k: theta[k] + a0 * d1[k] + b0 * d2[k] for k in theta}
    end_one = {k: start[k] + (steps * step) * d1[k] for k in theta}
    end_two = {k: start[k] + (steps * step) * d2[k] for k in theta}
    models = [probe.module_at(p) for p in (start, end_one, end_two)]
    metric = _metric(probe, progress or (lambda n: None))
    return np.asarray(planar_interpolation(*models, metric, steps=steps), dtype=np.float64)


def surface_ll(
    probe: Probe,
    grid: int = 21,
    radius: float = 1.0,
    seed: int = 0,
    bias_mode: str = "ignore",
    progress: Callable[[str, int, int], object] | None = None,
    per_point: float | None = None,
) -> Surface:
    """dstab's surface (same grid, same directions) computed by loss-landscapes."""
    coords = grid_coordinates(grid, radius)
    require(bias_mode in BIAS_MODES, f"unknown bias mode {bias_mode!r}; choose one of {BIAS_MODES}")
    per_point = loss_seconds(probe, per_point, (grid + 1) ** 2, f"loss-landscapes surface of {probe.name}")
    d1, d2, cosines = plane_directions(probe.params, seed, bias_mode)
    h = coords[1] - coords[0]
    m = (grid - 1) // 2
    corner = (-(m + 1) * h, -(m + 1) * h)
    t0 = time.perf_counter()
    tick = reporting(progress, "surface", (grid + 1) ** 2)
    raw = planar_with_directions(probe, d1, d2, grid + 1, corner, h, tick)
    meta = {
        "analysis": "surface",
        "rows": list(range(grid)),
        "probe": probe.describe(),
        **surface_params(grid, radius, seed, bias_mode, ENGINE),
        **cosines,
        "strategy": f"loss-landscapes planar_interpolation, {grid + 1}x{grid + 1} points",
        "device": str(probe.device),
        "seconds": time.perf_counter() - t0,
        "seconds_per_loss": per_point,
    }
    return with_metrics(Surface(coords, coords.copy(), regular_part(raw), meta))
