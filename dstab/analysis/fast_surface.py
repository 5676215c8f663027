"""Loss surfaces at a chosen arithmetic precision, with achieved FLOP/s against the device's peak.

The surface engines of `landscape` (one point per forward with the perturbed weights written in
place, or vmap over chunks of grid points) run here under one of three precisions:

- "fp32": full float32; TF32 tensor cores are switched off for the call.
- "tf32": float32 storage, matmuls and convolutions on TF32 tensor cores (10-bit mantissa inputs,
  float32 accumulation). CUDA only.
- "bf16": `torch.autocast` to bfloat16 (float32 weights, bf16 matmul/conv inputs, float32
  reductions). CUDA; on a CPU too, though slower there than fp32 on most chips.

Work is counted, not assumed: `torch.utils.flop_counter.FlopCounterMode` counts the FLOPs of one
probe loss (matmuls and convolutions, 2 per multiply-add), and the achieved rate is that times the
points evaluated over the wall time; the share of the device's dense peak for the precision comes
from the vendor data sheets in `PEAK_TFLOPS` (unknown devices: no share). A 35.7M-parameter DDPM
CIFAR-10 UNet costs 12.11 GFLOP per image forward: a 51 x 51 surface at batch 64 is 2.02 PFLOP.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..errors import require
from . import landscape

# dense (no sparsity) peak TFLOP/s per precision, from NVIDIA's data sheets; matched by name
PEAK_TFLOPS = {
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0},
    "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
    "L40S": {"fp32": 91.6, "tf32": 183.0, "bf16": 366.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0},
    "A10": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0},
}
# the precisions the table knows; specs.SURFACE_PRECISIONS (torch-free, for the CLI) names the same
# (tests/test_fast_surface.py), and this module does not import specs, which imports it
PRECISIONS = tuple(PEAK_TFLOPS["H100"])


def check_precision(name: str, device) -> str:
    require(name in PRECISIONS, f"unknown precision {name!r}; choose one of {list(PRECISIONS)}")
    require(
        name != "tf32" or torch.device(device).type == "cuda",
        "precision tf32 needs a CUDA device (TF32 is a tensor-core format); use fp32 or bf16 on a CPU",
    )
    return name


@contextlib.contextmanager
def precision(name: str, device):
    """Run the body at precision `name` on `device`; global TF32 switches are restored after."""
    check_precision(name, device)
    dev = torch.device(device)
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        if name == "bf16":
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def flops_per_loss(probe, name: str = "fp32") -> int:
    """FLOPs of one evaluation of the probe's loss (matmuls and convolutions), counted."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), precision(name, probe.device), counter:
        probe.loss()
    return int(counter.get_total_flops())


def peak_for(card: str, name: str) -> float | None:
    """Dense peak FLOP/s of a card (by its CUDA name) at a precision, or None when not in the table."""
    for key, peaks in PEAK_TFLOPS.items():  # "H100 PCIe" is listed before "H100": first match wins
        if key in card:
            return peaks[name] * 1e12
    return None


def device_peak(device, name: str) -> float | None:
    dev = torch.device(device)
    return peak_for(torch.cuda.get_device_name(dev), name) if dev.type == "cuda" else None


def _op_counter(shapes: set[tuple[int, ...]]):
    """A dispatch mode counting the aten ops dispatched (each a kernel launch on a GPU), and the casts
    of a tensor shaped as a weight (`shapes`: the parameters' shapes, alone or stacked in a chunk of
    points). Imported here: torch.utils' dispatch and flop-counter modules pull in triton (0.37 s)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpCounter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops, self.casts = 0, 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            first = args[0] if args else None
            if func is torch.ops.aten._to_copy.default and isinstance(first, torch.Tensor):
                self.casts += tuple(first.shape) in shapes
            return func(*args, **(kwargs or {}))

    return OpCounter()


def ops_per_point(probe, precision_name: str = "fp32", strategy: str = "sequential", chunk: int = 4) -> dict:
    """{"ops", "weight_casts"} per grid point of the surface engine, the weight update included: what
    the GPU bench prints (on a GPU every op is a launch, and a point of a small model is launch-bound).
    A weight cast is a dtype conversion of a tensor shaped as a moving parameter (autocast's per-call
    casts of float32 weights); one cast of the whole flat weight vector per point is not one."""
    from .directions import plane_directions

    d1, d2, _ = plane_directions(probe.params, 0, "ignore")
    shapes = {tuple(p.shape) for p in probe.params.values() if p.dim() >= 2}
    shapes |= {(chunk, *s) for s in shapes}
    with torch.no_grad(), precision(precision_name, probe.device):
        if strategy == "sequential":
            at = landscape.PointLoss(probe, d1, d2)
            at(0.5, 0.5)  # the first call allocates; count a steady-state point
            with _op_counter(shapes) as counter:
                at(0.25, -0.25)
            points = 1
        else:
            coords = [(0.25 * i, -0.25 * i) for i in range(chunk)]
            with _op_counter(shapes) as counter:
                landscape.plane_losses(probe, d1, d2, coords, "vmap")
            points = chunk
    return {"ops": counter.ops / points, "weight_casts": counter.casts / points}


@dataclass
class Throughput:
    points: int
    seconds: float
    flops_per_point: int
    peak: float | None  # FLOP/s

    @property
    def achieved(self) -> float:
        return self.points * self.flops_per_point / max(self.seconds, 1e-12)

    @property
    def share(self) -> float | None:
        return None if self.peak is None else self.achieved / self.peak

    def line(self) -> str:
        share = "peak unknown" if self.share is None else f"{100 * self.share:.1f}% of the device's dense peak"
        return (
            f"{self.points} points in {self.seconds:.2f} s, {self.flops_per_point / 1e9:.2f} GFLOP per point: "
            f"{self.achieved / 1e12:.2f} TFLOP/s achieved ({share})"
        )


def surface(probe, grid: int, radius: float, seed: int = 0, precision_name: str = "fp32", strategy=None, **kw):
    """(landscape.Surface, Throughput): `landscape.surface` at the given precision, timed (CUDA
    synchronised) and its work counted."""
    check_precision(precision_name, probe.device)
    flops = flops_per_loss(probe, precision_name)
    with precision(precision_name, probe.device):
        result = landscape.surface(probe, grid, radius, seed, strategy=strategy, **kw)
    # meta["seconds"]: the grid's evaluation alone (its numpy copy synchronises CUDA)
    seconds = result.meta["seconds"]
    return result, Throughput(grid * grid, seconds, flops, device_peak(probe.device, precision_name))
