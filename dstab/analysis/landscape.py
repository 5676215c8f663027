"""2-D loss surfaces (Li et al. 2018) and the engine that evaluates a probe on a plane.

surface(probe, grid, radius, seed) evaluates L(theta + a d1 + b d2) on the
regular grid a, b in {-r, ..., 0, ..., r} (grid odd, so the centre is a grid
point exactly), d1 and d2 from `directions.plane_directions`. Evaluation runs
without autograd on the probe's device, in one of two strategies:

- "sequential": one forward per grid point, parameters written in place into
  a private copy of the module (`Probe.module_at`). Chosen on CPU: measured on zoo-size models (2 shared CPU
  cores, 2026-11-26), vmap was 1.1-2.4x slower than this except for the
  smallest MLP generator (see bench/RESULTS.md).
- "vmap": `chunk` grid points at once through torch.func.vmap over a batch
  of parameter sets, memory bounded by `memory_budget` bytes of stacked
  parameters. Chosen on CUDA, where one forward of a zoo-size model leaves
  the GPU mostly idle and batching grid points is the lever (not measured in
  this session: no GPU was available).

Rows of the grid (fixed a) are independent, which is what `rows=` and the
torchrun split in `dstab.analysis.rowsplit` use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import vmap

from .. import budgets
from ..errors import DstabError, require
from ..probes import Probe
from .cost import CostWarning, seconds_per_call, warn_if_slow
from .directions import BIAS_MODES, Direction, plane_directions
from .smoothness import rise_over_centre, surface_metrics

__all__ = ["CostWarning", "Surface", "surface", "plane_losses", "grid_coordinates", "rise_over_centre"]

STRATEGIES = ("sequential", "vmap", "graph")
MAX_GRID = 401  # beyond this a surface is a mistake, not a plot (161k forward passes)
MAX_RADIUS = 3.4028234663852886e38  # float32's largest value: the plane's coordinates are float32 steps
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of stacked parameters per vmap chunk
MAX_CHUNK = 64


def grid_coordinates(grid: int, radius: float) -> np.ndarray:
    """grid values from -radius to radius with 0 (and both ends) exactly on the grid."""
    require(isinstance(grid, int) and grid >= 3, f"grid must be an integer >= 3, got {grid!r}")
    require(grid <= MAX_GRID, f"grid {grid} is absurd ({grid * grid} forward passes); use at most {MAX_GRID}")
    require(grid % 2 == 1, f"grid must be odd so that the centre is a grid point; use {grid + 1}")
    budgets.check_count(grid * grid, "DSTAB_MAX_GRID_POINTS", f"grid {grid} (grid points)")
    require(math.isfinite(radius) and radius > 0, f"radius must be a positive number, got {radius!r}")
    require(
        radius <= MAX_RADIUS,
        f"radius {radius:g} is beyond float32's range (the surface is computed in float32, at most {MAX_RADIUS:.3g}); "
        "use a radius of the order of 1 (the directions are scaled like the weights)",
    )
    m = (grid - 1) // 2
    return (np.arange(grid) - m) / m * radius  # ends are exactly -radius and radius


def default_strategy(device: torch.device) -> str:
    return "graph" if torch.device(device).type == "cuda" else "sequential"


def _moving(d1: Direction, d2: Direction) -> list[str]:
    """Parameters the plane moves (1-D ones are frozen when their direction is zero)."""
    return [k for k in d1 if bool(d1[k].any()) or bool(d2[k].any())]


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


LOW_PRECISION_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The lower precision an active torch.autocast runs matmuls and convolutions in, else None."""
    kind = torch.device(device).type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else None


def _low_precision(module: nn.Module, names: set[str]) -> set[str]:
    """The moving parameters autocast would cast at every call: weights and biases of matmuls and
    convolutions (norm layers' parameters stay float32, as autocast runs those ops in float32)."""
    return {
        f"{m_name}.{p_name}" if m_name else p_name
        for m_name, m in module.named_modules()
        if isinstance(m, LOW_PRECISION_MODULES)
        for p_name, _ in m.named_parameters(recurse=False)
    } & names


class _Plane:
    """theta + a d1 + b d2 written into a module's parameters, which are views of flat buffers: one
    float32 buffer, and under autocast a second in its lower precision for the matmul and convolution
    weights, cast once per point as one vector (autocast would otherwise cast every weight at every
    call: 318 casts per forward of the CIFAR UNet)."""

    def __init__(self, probe: Probe, module: nn.Module, d1, d2, low: torch.dtype | None):
        names = set(_moving(d1, d2))
        every = dict(module.named_parameters())
        cast = _low_precision(module, set(every)) if low is not None else set()
        for k in cast - names:  # fixed weights (biases, zero directions): cast once for the surface
            every[k].data = every[k].data.to(low)
        cast &= names
        params = [(k, p) for k, p in every.items() if k in names]
        self.groups = []
        for group, dtype in ((sorted(names - cast), None), (sorted(cast), low)):
            chosen = [(k, p) for k, p in params if k in set(group)]
            if not chosen:
                continue
            theta, u, v = (_flat([src[k] for k, _ in chosen]) for src in (probe.params, d1, d2))
            work = theta.clone()
            store = work if dtype is None else work.to(dtype)
            offset = 0
            for _, p in chosen:
                p.data = store[offset : offset + p.numel()].view_as(p)
                offset += p.numel()
            self.groups.append((theta, u, v, work, store))

    def move_to(self, a: float, b: float) -> None:
        for theta, u, v, work, store in self.groups:
            torch.add(theta, u, alpha=a, out=work)
            work.add_(v, alpha=b)
            if store is not work:
                store.copy_(work)

    def move_to_tensor(self, ab: torch.Tensor) -> None:
        """The same with (a, b) read from a device tensor: no host value, so a CUDA graph can hold it."""
        for theta, u, v, work, store in self.groups:
            torch.addcmul(theta, u, ab[0:1], out=work)
            work.addcmul_(v, ab[1:2])
            if store is not work:
                store.copy_(work)


class PointLoss:
    """(a, b) -> L(theta + a d1 + b d2) through a private copy of the probe's module (`.module`), as
    `_sequential` evaluates it (under the autocast active when it is made, whose lower precision the
    matmul weights are then stored in)."""

    def __init__(self, probe: Probe, d1, d2):
        self.probe, self.module = probe, probe.module_at()
        self.plane = _Plane(probe, self.module, d1, d2, autocast_dtype(probe.device))

    def __call__(self, a: float, b: float) -> torch.Tensor:
        self.plane.move_to(float(a), float(b))
        return self.probe.loss_of(self.module).reshape(())


def _sequential(probe: Probe, d1, d2, coords, progress) -> torch.Tensor:
    """One point at a time, written in place into a private copy of the module and called
    directly: functional_call's re-parametrisation per call costs as much as a forward
    of a small MLP (under cProfile: 1.4 ms vs 1.9 ms per point for the toy DM). The moving
    parameters are views of flat buffers (`_Plane`), so a point costs a few vector operations."""
    at = PointLoss(probe, d1, d2)
    out = []
    for a, b in coords:
        out.append(at(a, b))
        progress(len(out))
    return torch.stack(out) if out else torch.empty(0)


def vmap_chunk(probe: Probe, names: list[str], memory_budget: int) -> int:
    per_point = sum(probe.params[k].numel() * probe.params[k].element_size() for k in names)
    return int(max(1, min(MAX_CHUNK, memory_budget // max(per_point, 1))))


def _vmapped(probe: Probe, d1, d2, coords, progress, memory_budget) -> torch.Tensor:
    """`chunk` points per batched call; the budget counts stacked parameters only, so when
    activations overflow the device the chunk is halved and the same points retried."""
    names = _moving(d1, d2)
    chunk = vmap_chunk(probe, names, memory_budget)
    require(
        autocast_dtype(probe.device) is None,
        "the vmap strategy cannot run under bf16 autocast (PyTorch's vmap skips autocast where an unbatched "
        "weight meets a batched input: 'Input type (BFloat16) and bias type (float)'); use strategy "
        "'sequential' or 'graph'",
    )
    batched_loss = vmap(lambda p: probe.loss(p).reshape(()))
    out, start = [], 0
    while start < len(coords):
        c = torch.as_tensor(coords[start : start + chunk], dtype=torch.float32, device=probe.device)
        stacked = {}
        for k in names:
            shape = (-1, *[1] * probe.params[k].dim())
            stacked[k] = probe.params[k] + c[:, 0].reshape(shape) * d1[k] + c[:, 1].reshape(shape) * d2[k]
        try:
            out.append(batched_loss(stacked))
        except torch.OutOfMemoryError:
            del stacked
            if len(c) == 1:
                raise DstabError(
                    f"{probe.name}: one grid point does not fit in {probe.device} memory; "
                    "use a smaller probe batch or strategy 'sequential'"
                ) from None
            chunk = len(c) // 2
            continue
        start += len(c)
        progress(start)
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def plane_losses(
    probe: Probe,
    d1: Direction,
    d2: Direction,
    coords: np.ndarray,
    strategy: str | None = None,
    progress: Callable[[int], object] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> np.ndarray:
    """L(theta + a d1 + b d2) for each row (a, b) of `coords`, float64 numpy; `progress(done)` with the points
    done so far, as every engine's inner callback counts."""
    strategy = strategy or default_strategy(probe.device)
    require(strategy in STRATEGIES, f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    require(
        _moving(d1, d2),
        f"{probe.name}: the directions move no parameter (only 1-D parameters, all ignored); use bias_mode='weight'",
    )
    step = progress or (lambda n: None)
    if strategy == "sequential":
        values = _sequential(probe, d1, d2, coords, step)
    elif strategy == "graph":
        from .surface_graph import graphed_losses

        eager = lambda: _sequential(probe, d1, d2, coords, step)  # noqa: E731
        values = graphed_losses(probe, PointLoss(probe, d1, d2), coords, step, eager)
    else:
        values = _vmapped(probe, d1, d2, coords, step, memory_budget)
    return values.double().cpu().numpy()


def reporting(progress: Callable[[str, int, int], object] | None, stage: str, total: int) -> Callable[[int], None]:
    """An engine's inner callback, `tick(done)` with the units done so far (as the Hessian engine's count
    products), reported as dstab's one protocol `progress(stage, done, total)`."""
    return (lambda done: None) if progress is None else (lambda done: progress(stage, done, total))


def loss_seconds(probe: Probe, per_point: float | None, points: int, what: str) -> float:
    """Seconds per loss evaluation (timed here unless the caller timed it already), and a CostWarning
    when `points` of them would take over a minute."""
    per_point = seconds_per_call(probe.loss) if per_point is None else per_point
    warn_if_slow(points, per_point, what, "use a smaller grid or a GPU (--device cuda)")
    return per_point


@dataclass
class Surface:
    alphas: np.ndarray  # coordinates along d1 (rows)
    betas: np.ndarray  # coordinates along d2 (columns)
    loss: np.ndarray  # (len(alphas), len(betas)); NaN where not computed (other ranks' rows)
    meta: dict = field(default_factory=dict)  # probe, seed, radius, cosines, metrics, engine, timing

    @property
    def centre_loss(self) -> float:
        return float(self.loss[len(self.alphas) // 2, len(self.betas) // 2])

    def to_record(self) -> tuple[dict, dict]:
        return self.meta, {"alphas": self.alphas, "betas": self.betas, "loss": self.loss}

    @classmethod
    def from_record(cls, meta: dict, arrays: dict) -> Surface:
        return cls(arrays["alphas"], arrays["betas"], arrays["loss"], meta)


def surface_params(grid: int, radius: float, seed: int, bias_mode: str, engine: str = "dstab") -> dict:
    """A surface's settings as its meta records them (its cache key is `specs.SurfaceSpec.params`)."""
    return {"grid": int(grid), "radius": float(radius), "seed": int(seed), "bias_mode": bias_mode, "engine": engine}


def surface(
    probe: Probe,
    grid: int = 21,
    radius: float = 1.0,
    seed: int = 0,
    bias_mode: str = "ignore",
    strategy: str | None = None,
    rows: list[int] | None = None,
    progress: Callable[[str, int, int], object] | None = None,
    per_point: float | None = None,
) -> Surface:
    """The loss on a grid x grid plane around the probe's weights (all rows, or only `rows`);
    `progress("surface", done, total)` after each point; `per_point`: seconds per loss, if known."""
    coords = grid_coordinates(grid, radius)
    require(bias_mode in BIAS_MODES, f"unknown bias mode {bias_mode!r}; choose one of {BIAS_MODES}")
    rows = list(range(grid)) if rows is None else [int(r) for r in rows]
    if any(not 0 <= r < grid for r in rows):
        raise DstabError(f"rows must lie in 0..{grid - 1}")
    centre = float(probe.loss().detach())
    require(
        math.isfinite(centre),
        f"surface of {probe.name}: the loss at the analysed weights is {centre}, so the surface is undefined "
        "around them; check the model, its loss and its batch",
    )
    per_point = loss_seconds(probe, per_point, len(rows) * grid, f"surface of {probe.name}")
    d1, d2, cosines = plane_directions(probe.params, seed, bias_mode)
    points = np.array([(coords[i], b) for i in rows for b in coords])
    t0 = time.perf_counter()
    values = plane_losses(probe, d1, d2, points, strategy, reporting(progress, "surface", len(points)))
    loss = np.full((grid, grid), np.nan)
    loss[rows] = values.reshape(len(rows), grid)
    meta = {
        "analysis": "surface",
        "rows": rows,
        "probe": probe.describe(),
        **surface_params(grid, radius, seed, bias_mode),
        **cosines,
        "strategy": strategy or default_strategy(probe.device),
        "device": str(probe.device),
        "seconds": time.perf_counter() - t0,
        "seconds_per_loss": per_point,
    }
    result = Surface(coords, coords.copy(), loss, meta)
    return with_metrics(result) if len(rows) == grid else result


def nonfinite_note(name: str, loss: np.ndarray) -> str | None:
    """The warning a surface with NaN or inf points carries (None when all are finite): the loss overflows
    away from the weights, where the smoothness numbers then mean little."""
    bad = int((~np.isfinite(loss)).sum())
    if not bad:
        return None
    return (
        f"surface of {name}: {bad} of {loss.size} points are NaN or inf (the loss overflows away from the "
        "weights), and numbers over the whole surface are NaN with them; use a smaller radius"
    )


def with_metrics(result: Surface) -> Surface:
    """Add the smoothness numbers once every row is present (meta["rows"] lists those computed)."""
    missing = sorted(set(range(len(result.alphas))) - set(result.meta["rows"]))
    require(not missing, f"the surface lacks rows {missing[:5]}; gather every rank's rows first")
    result.meta.update(
        metrics=surface_metrics(result.loss),
        centre_loss=result.centre_loss,
        finite=bool(np.isfinite(result.loss).all()),
    )
    return result
