"""The reference Hessian engine: PyHessian 0.1 (Yao et al. 2020), selectable as engine "pyhessian".

The paper measured its spectra with PyHessian, so dstab can run it on any Probe
and return the same `HessianSpectrum` as dstab's own engine. PyHessian wants
(model, criterion, data=(inputs, targets)); a Probe becomes a wrapper module
whose parameters are fresh copies of the probe's and whose forward returns the
probe's loss, and a criterion that passes it through.

Known defects of pyhessian 0.1, measured, and what this module does about each
without changing PyHessian's numbers:
- `density()` calls `torch.eig`, removed in torch 2.x: a shim built on
  `torch.linalg.eigh` (T is symmetric) is installed on `torch` only for the
  duration of the call, returning torch.eig's (values as (m, 2) real/imag,
  eigenvectors as columns) layout.
- `hessian(..., cuda=True)` is the default and moves the batch with `.cuda()`:
  the flag is set from the probe's device.
- its constructor calls `model.eval()`: it only ever sees the wrapper, never
  the caller's model or the probe's private module, whose modes stay as they were.
- it never zeroes `.grad`: its constructor's `backward(create_graph=True)`
  accumulates into `.grad`, so building it twice on one model doubles the
  Hessian. Every call builds a fresh wrapper whose `.grad` starts empty.
- parameters without a gradient (unused by the loss) become the float 0. in
  its gradient list and `torch.autograd.grad` then fails: the wrapper adds
  0 * sum(p^2) for every parameter, which gives them zero gradient and zero
  Hessian rows, exactly their true values.
- randomness comes from the global torch RNG: each stage runs under
  `torch.random.fork_rng` seeded as dstab's engine seeds the same stage, so the
  caller's RNG is untouched and (on the CPU) both engines draw the same
  Rademacher vectors for the trace and SLQ.
- `trace(tol=...)` stops early on a relative test that misbehaves for negative
  traces: tol = -inf makes it take exactly `trace_samples` samples.
- `eigenvalues()` is power iteration: it finds the eigenvalues of largest
  *magnitude* (a large negative eigenvalue would be returned as "top"), stops
  on a relative change of `tol` (1e-3 by default, which is not 1e-3 accuracy),
  and gives no lambda_min (reported as None).
- on exhausting the Krylov space in `density()` it restarts from a random
  vector, which adds spurious nodes; `slq_steps` is capped at n here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import require
from ..probes import finite_or_error
from .hessian import SPEC, HessianSpectrum, density
from .hvp import second_order


class ProbeAsModel(nn.Module):
    """A module whose forward(_) is the probe's loss at this module's own parameters."""

    def __init__(self, probe):
        super().__init__()
        self._probe = [probe]  # a list, so the probe's modules are not registered as submodules
        self.names = list(probe.params)
        self.weights = nn.ParameterList([nn.Parameter(probe.params[k].detach().clone().float()) for k in self.names])

    def forward(self, _inputs: torch.Tensor) -> torch.Tensor:
        loss = self._probe[0].loss(dict(zip(self.names, self.weights)))
        # ties every parameter to the graph to second order: unused ones get a zero gradient that
        # itself has a graph (not None, not a constant), so PyHessian's autograd.grad accepts them
        return loss + sum(0.0 * (w * w).sum() for w in self.weights)


def _pass_through(outputs: torch.Tensor, _targets: torch.Tensor) -> torch.Tensor:
    return outputs


def _eig_shim(T: torch.Tensor, eigenvectors: bool = False):
    vals, vecs = torch.linalg.eigh(T)
    return torch.stack([vals, torch.zeros_like(vals)], dim=1), vecs if eigenvectors else torch.empty(0)


@contextlib.contextmanager
def _torch_eig_restored():
    had = hasattr(torch, "eig")
    old = getattr(torch, "eig", None)
    torch.eig = _eig_shim
    try:
        yield
    finally:
        if had:
            torch.eig = old
        else:
            del torch.eig


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _pyhessian(probe, device: torch.device):
    from pyhessian import hessian

    model = ProbeAsModel(probe).to(device)
    dummy = torch.zeros(1, device=device)
    return hessian(model, _pass_through, data=(dummy, dummy), cuda=device.type == "cuda")


def spectrum(
    probe,
    top_k: int = SPEC.top_k,
    trace_samples: int = SPEC.trace_samples,
    slq_runs: int = SPEC.slq_runs,
    slq_steps: int = SPEC.slq_steps,
    seed: int = SPEC.seed,
    tol: float = SPEC.tol,
    max_steps: int = SPEC.max_steps,
    block: int = SPEC.block,
    lambda_min: bool = SPEC.lambda_min,
    verify: bool = SPEC.verify,
    per_block: bool = SPEC.per_block,
    progress: Callable[[str, int, int], None] | None = None,
) -> HessianSpectrum:
    """The same numbers as `dstab.analysis.hessian.spectrum`, computed by PyHessian. `block`,
    `lambda_min` and `verify` are settings of dstab's Lanczos with no PyHessian counterpart (its
    lambda_min is None; nothing checks its values); per-block spectra are dstab's engine's only.
    `tol` and `max_steps` go to its power iteration (tol, maxIter per eigenvalue): its tol bounds the
    relative change between iterations, not the error, which stays larger when lambda_2 ~ lambda_1."""
    require(not per_block, "per-block spectra come from dstab's engine; drop --per-block or use --engine dstab")
    finite_or_error(probe.params, probe.name)
    with second_order():  # attention through the math kernel: PyHessian differentiates twice too
        return _spectrum(probe, top_k, trace_samples, slq_runs, slq_steps, seed, tol, max_steps, progress)


def _spectrum(probe, top_k, trace_samples, slq_runs, slq_steps, seed, tol, max_steps, progress) -> HessianSpectrum:
    n = sum(p.numel() for p in probe.params.values())
    require(isinstance(top_k, int) and 1 <= top_k <= n, f"top-k must lie in [1, n = {n}], got {top_k!r}")
    require(isinstance(trace_samples, int) and trace_samples >= 1, "trace samples must be a positive integer")
    require(isinstance(slq_runs, int) and slq_runs >= 1, "SLQ runs must be a positive integer")
    device = next(iter(probe.params.values())).device
    steps = min(slq_steps, n)
    with _seeded(seed, device):
        engine = _pyhessian(probe, device)
        loss = float(engine.model(torch.zeros(1, device=device)).detach())
        require(
            np.isfinite(loss), f"the probe's loss is {loss} at the analysed parameters; the Hessian is undefined there"
        )
        top, _ = engine.eigenvalues(maxIter=max_steps, tol=tol, top_n=top_k)
    if progress:
        progress("lanczos", top_k, top_k)
    with _seeded(seed + 1, device):
        vhv = np.array(engine.trace(maxIter=trace_samples, tol=float("-inf")))
    if progress:
        progress("trace", trace_samples, trace_samples)
    with _seeded(seed + 2, device), _torch_eig_restored():
        nodes, weights = engine.density(iter=steps, n_v=slq_runs)
    if progress:
        progress("slq", slq_runs * steps, slq_runs * steps)
    nodes, weights = np.array(nodes, dtype=np.float64), np.array(weights, dtype=np.float64)
    grid, curve = density(nodes, weights)
    stderr = float(vhv.std(ddof=1) / np.sqrt(len(vhv))) if len(vhv) > 1 else float("nan")
    settings = {
        "engine": "pyhessian",
        "top_k": top_k,
        "trace_samples": trace_samples,
        "slq_runs": slq_runs,
        "slq_steps": steps,
        "seed": seed,
        "tol": tol,
        "max_steps": max_steps,
    }
    grad_norm = float(torch.cat([g.detach().reshape(-1) for g in engine.gradsH]).norm())
    order = np.argsort(top)[::-1]
    return HessianSpectrum(
        n, loss, grad_norm, np.array(top)[order], None, float(vhv.mean()), stderr, nodes, weights, grid, curve, settings
    )
