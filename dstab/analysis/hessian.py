"""Hessian spectra of a Probe's loss: top eigenvalues, trace, spectral density.

The paper (Sec. 3.2) measures the Hessian with PyHessian and reports the top
eigenvalue lambda_1 and a variance sigma^2 (DM 13.3 / 37.9, GAN 40.9 / 93.9).
dstab's engine of record computes the same quantities on flat vectors:

- top-k eigenvalues: block Lanczos with full reorthogonalisation from `block`
  Gaussian vectors, stopped when the error bound of every wanted Ritz value
  (residual, tightened by Kato-Temple where a gap is known) is below `tol`
  times the spectral radius estimate, then checked by Lanczos on H deflated by
  the Ritz vectors, with a thick restart when that finds a value the first run
  missed (repeated eigenvalues, clusters): see `lanczos`. lambda_min is the
  smallest Ritz value of that run, an upper bound marked unconverged, or with
  `lambda_min=True` the result of its own checked run. PyHessian uses power
  iteration with deflation instead, which needs more Hessian-vector products
  for the same accuracy.
- trace: Hutchinson's estimator tr(H) = E[z^T H z] with Rademacher z
  (Hutchinson 1989; Avron & Toledo 2011), with its standard error.
- density: stochastic Lanczos quadrature (Golub & Meurant; Ghorbani, Krishnan
  & Xiao 2019; Yao et al. 2020 "PyHessian"): per run (one at a time, one basis
  in memory) a Rademacher start vector v, normalised, m Lanczos steps; the Ritz values theta_k are the nodes and
  the squared first components tau_k of T's eigenvectors the weights of a
  Gauss quadrature for the spectral measure v^T delta(H - t) v. The curve is
  the nodes broadened by a Gaussian kernel, averaged over runs.

Moments of the spectrum (n parameters, eigenvalues lambda_i):
- ``mean`` = tr(H) / n from the SLQ first moment (with normalised Rademacher
  v, sum_k tau_k theta_k = v^T H v, an unbiased estimate of tr(H)/n), and
  ``hutchinson_trace / n`` independently.
- ``sigma2`` = the variance of the eigenvalue distribution,
  tr(H^2)/n - (tr(H)/n)^2, from the SLQ moments:
  mean_runs(sum_k tau_k theta_k^2) - mean_runs(sum_k tau_k theta_k)^2.
  This is the variance of the spectrum, the quantity the paper names.
- ``ritz_variance`` = the unweighted variance of the Ritz values theta_k,
  averaged over runs. The paper does not define its sigma^2. For a network
  whose spectrum is a bulk at zero plus a few outliers the variance of the
  spectrum is far below lambda_1^2 / 10, while the paper's pairs (13.3, 37.9)
  and (40.9, 93.9) are not; ``numpy.var`` of PyHessian's density nodes gives
  numbers of the paper's size, so it is reported beside sigma2 for comparison.
Hessian-vector products: see `hvp`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import budgets
from ..errors import DstabError, require
from . import lanczos
from .cost import seconds_per_call, warn_if_slow
from .hessian_settings import DEFAULT as SPEC
from .hessian_settings import HESSIAN_ENGINES
from .hvp import HVP_MODES, HessianOperator  # noqa: F401  (the engine's API)
from .lanczos import density, spectrum_moments  # noqa: F401  (hessian_ref and callers use them here)

# Hutchinson probes per `op.batched` call (one vmapped backward on a GPU)
BATCH = 4
# tol: bound on the top eigenvalues' errors relative to the spectral radius (see error_bounds)
# the engines' defaults (SPEC) are hessian_settings' (what `dstab report` ships); tol bounds the top
# eigenvalues' errors relative to the spectral radius, block is the number of Lanczos start vectors
# (clusters and multiplicities up to it are resolved; see lanczos)


def as_matvec(op: HessianOperator) -> lanczos.MatVec:
    return op.batched


def gaussian_block(op: HessianOperator, p: int, gen: torch.Generator) -> torch.Tensor:
    return torch.stack([op.gaussian(gen) for _ in range(p)])


@dataclass
class Extremes:
    top: np.ndarray  # k largest eigenvalues, descending (Ritz values: lower bounds)
    lambda_min: float  # smallest Ritz value (an upper bound on lambda_min), from its own run if asked
    steps: int  # Hessian-vector products of the top-k run
    converged: bool  # every top-k value lies within its bound, and the bound within tol * radius
    top_error: float  # largest error bound among the top-k
    min_error: float | None  # error bound of lambda_min when converged, else None (only an upper bound)
    top_bounds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    min_converged: bool = False
    min_steps: int = 0  # Hessian-vector products of lambda_min's own run (0: from the top-k run)


def extreme_eigenvalues(
    op: HessianOperator,
    k: int,
    seed: int = 0,
    tol: float = SPEC.tol,
    max_steps: int = SPEC.max_steps,
    progress=None,
    block: int = SPEC.block,
    lambda_min: bool = False,
) -> Extremes:
    """The k largest eigenvalues by block Lanczos from `block` seeded Gaussian vectors, stopped when
    every one is within tol * spectral radius by its error bound (see `lanczos`), after at most
    `max_steps` Hessian-vector products. lambda_min is the smallest Ritz value of that run, or with
    `lambda_min=True` of its own run to the same tolerance."""
    require(isinstance(k, int) and k >= 1, f"top-k must be a positive integer, got {k!r}")
    require(k <= op.n, f"top-k = {k} exceeds the number of analysed parameters n = {op.n}; use --top-k <= {op.n}")
    require(isinstance(block, int) and 1 <= block <= 16, f"the Lanczos block size must be 1..16, got {block!r}")
    require(
        max_steps >= k + block or max_steps >= op.n, f"max_steps = {max_steps} must exceed top-k + block = {k + block}"
    )
    gen = torch.Generator().manual_seed(seed)
    mv = as_matvec(op)
    top, steps = lanczos.verified_end(mv, gaussian_block(op, block, gen), k, "top", tol, max_steps, progress, seed)
    require(
        len(top.values) >= k,
        f"the Hessian's Krylov space has dimension {steps} < top-k = {k}: H has fewer distinct "
        "eigenvalues than asked for; lower --top-k",
    )
    if lambda_min:
        start = gaussian_block(op, block, gen)
        low, min_steps = lanczos.verified_end(mv, start, 1, "bottom", tol, max_steps, None, seed + 1)
    else:  # the smallest Ritz value of a run stopped for the top-k: an upper bound, not converged
        low = lanczos.EndValues(np.array([top.opposite]), np.array([np.inf]), top.radius, False)
        min_steps = 0
    return Extremes(
        top.values,
        float(low.values[0]),
        steps,
        top.converged,
        float(top.bounds.max()),
        float(low.bounds[0]) if low.converged else None,
        top.bounds,
        low.converged,
        min_steps,
    )


def hutchinson_trace(op: HessianOperator, samples: int, seed: int = 0, progress=None) -> tuple[float, float]:
    """(trace estimate, its standard error) from `samples` Rademacher probes z^T H z."""
    require(isinstance(samples, int) and samples >= 1, f"trace samples must be a positive integer, got {samples!r}")
    gen = torch.Generator().manual_seed(seed)
    vals = []
    while len(vals) < samples:
        Z = torch.stack([op.rademacher(gen) for _ in range(min(BATCH, samples - len(vals)))])
        vals.extend((Z * op.batched(Z)).sum(dim=1).tolist())
        if progress:
            progress(len(vals))
    vals = np.array(vals)
    stderr = float(vals.std(ddof=1) / math.sqrt(samples)) if samples > 1 else float("nan")
    return float(vals.mean()), stderr


def slq_full(n: int, steps: int) -> bool:
    """Full reorthogonalisation when one run's whole basis fits in half the memory budget; else
    the local recurrence (O(n) memory; the quadrature's nodes and weights stay accurate, Meurant &
    Strakos 2006, but a node may appear twice with its weight split)."""
    return lanczos.krylov_bytes(n, steps, 1, True) <= budgets.max_memory_bytes() // 2


def slq(
    op: HessianOperator, runs: int, steps: int, seed: int = 0, progress=None, full: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: nodes and weights, (runs, steps) arrays, one run at a time
    (one basis in memory); a run whose Krylov space closed early pads with weight 0 (its quadrature
    is exact already). `full=None` chooses the reorthogonalisation by `slq_full`."""
    require(isinstance(runs, int) and runs >= 1, f"SLQ runs must be a positive integer, got {runs!r}")
    require(isinstance(steps, int) and steps >= 2, f"SLQ steps must be an integer >= 2, got {steps!r}")
    steps = min(steps, op.n)
    full = slq_full(op.n, steps) if full is None else full
    gen = torch.Generator().manual_seed(seed)
    nodes, weights = np.zeros((runs, steps)), np.zeros((runs, steps))
    for r in range(runs):
        v = op.rademacher(gen)[None]  # drawn in order, as PyHessian draws them
        tick = (lambda j, f=r: progress(f * steps + j)) if progress else None
        run = lanczos.krylov(as_matvec(op), v, steps, full=full, progress=tick)
        nodes[r], weights[r] = lanczos.quadrature(run, steps)
    return nodes, weights


@dataclass
class HessianSpectrum:
    """All numbers of one Hessian analysis; `summary()` is the JSON part, `arrays()` the NPZ part."""

    n: int
    loss: float
    grad_norm: float
    top_eigenvalues: np.ndarray
    lambda_min: float
    trace: float
    trace_stderr: float
    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    curve: np.ndarray
    settings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def lambda_1(self) -> float:
        return float(self.top_eigenvalues[0])

    def summary(self) -> dict:
        m = spectrum_moments(self.nodes, self.weights)
        return {
            "n_params": self.n,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "lambda_1": self.lambda_1,
            "top_eigenvalues": [float(x) for x in self.top_eigenvalues],
            "lambda_min": self.lambda_min,
            "trace": self.trace,
            "trace_stderr": self.trace_stderr,
            "mean_hutchinson": self.trace / self.n,
            "mean": m["mean"],
            "second_moment": m["second_moment"],
            "sigma2": m["sigma2"],
            "ritz_variance": m["ritz_variance"],
            "settings": self.settings,
            **self.info,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "top_eigenvalues": self.top_eigenvalues,
            "slq_nodes": self.nodes,
            "slq_weights": self.weights,
            "density_grid": self.grid,
            "density": self.curve,
        }

    def to_record(self) -> tuple[dict, dict]:
        return self.summary(), self.arrays()

    @classmethod
    def from_record(cls, meta: dict, arrays: dict) -> HessianSpectrum:
        own = set(SUMMARY_ONLY) | {"n_params", "loss", "grad_norm", "lambda_min", "trace", "trace_stderr", "settings"}
        return cls(
            meta["n_params"],
            meta["loss"],
            meta["grad_norm"],
            np.asarray(arrays["top_eigenvalues"]),
            meta["lambda_min"],
            meta["trace"],
            meta["trace_stderr"],
            np.asarray(arrays["slq_nodes"]),
            np.asarray(arrays["slq_weights"]),
            np.asarray(arrays["density_grid"]),
            np.asarray(arrays["density"]),
            meta["settings"],
            {k: v for k, v in meta.items() if k not in own},
        )


# keys of summary() derived from the arrays, not stored separately
SUMMARY_ONLY = ("lambda_1", "top_eigenvalues", "mean_hutchinson", "mean", "second_moment", "sigma2", "ritz_variance")


def memory_plan(n: int, operator_bytes: int, max_steps: int, block: int, slq_steps: int) -> tuple[int, str]:
    """(estimated peak bytes, a one-line account) of a spectrum: the operator (model copy and gradient
    graph, measured) plus the larger of the top-k basis and one SLQ run's basis (they run in turn)."""
    top = lanczos.krylov_bytes(n, max_steps, block, True)
    full = slq_full(n, min(slq_steps, n))
    run = lanczos.krylov_bytes(n, min(slq_steps, n), 1, full)
    total = operator_bytes + max(top, run)
    mib = 1 << 20
    text = (
        f"memory: ~{total / mib:.0f} MiB = operator {operator_bytes / mib:.0f} MiB (parameters + gradient graph) + "
        f"max(top-k basis <= {top / mib:.0f} MiB for {max_steps} products, one SLQ run {run / mib:.0f} MiB, "
        f"{'full' if full else 'local'} reorthogonalisation)"
    )
    return total, text


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
    hvp: str = "reverse",
    progress: Callable[[str, int, int], None] | None = None,
    seconds_per_hvp: float | None = None,
) -> HessianSpectrum:
    """The paper's Hessian numbers for a probe with dstab's engine. Seeded and deterministic;
    `progress(stage, done, total)` is called after every Hessian-vector product; `seconds_per_hvp`,
    when the caller timed one already, spares timing one here. The memory plan is logged (logger
    "dstab") and checked against DSTAB_MAX_MEMORY_GB before Lanczos starts."""
    before = lanczos.resident_bytes(probe.device)
    op = HessianOperator(probe, hvp)
    require(top_k <= op.n, f"top-k = {top_k} exceeds the number of analysed parameters n = {op.n}")
    max_steps = max(max_steps, top_k + block)
    need, text = memory_plan(op.n, max(lanczos.resident_bytes(op.device) - before, 0), max_steps, block, slq_steps)
    logging.getLogger("dstab").info("Hessian of %s: %s", probe.name, text)
    budgets.check_memory(need, f"the Hessian of {probe.name} ({text})")
    products = max_steps * (2 if lambda_min else 1) + trace_samples + slq_runs * min(slq_steps, op.n)
    hvp_seconds(op, products, probe.name, seconds_per_hvp)
    tick = (lambda stage, total: lambda i: progress(stage, i, total)) if progress else (lambda stage, total: None)
    ext = extreme_eigenvalues(op, top_k, seed, tol, max_steps, tick("lanczos", max_steps), block, lambda_min)
    trace, stderr = hutchinson_trace(op, trace_samples, seed + 1, tick("trace", trace_samples))
    full = slq_full(op.n, min(slq_steps, op.n))
    nodes, weights = slq(op, slq_runs, slq_steps, seed + 2, tick("slq", slq_runs * min(slq_steps, op.n)), full)
    grid, curve = density(nodes, weights)
    settings = {
        "engine": "dstab",
        "hvp": hvp,
        "top_k": top_k,
        "trace_samples": trace_samples,
        "slq_runs": slq_runs,
        "slq_steps": slq_steps,
        "seed": seed,
        "tol": tol,
        "max_steps": max_steps,
        "block": block,
        "lambda_min": lambda_min,
    }
    info = {
        "lanczos_steps": ext.steps,
        "lanczos_converged": ext.converged,
        "top_error_bound": ext.top_error,
        "top_error_bounds": [float(b) for b in ext.top_bounds],
        "lambda_min_converged": ext.min_converged,
        "lambda_min_error_bound": ext.min_error,
        "lambda_min_steps": ext.min_steps,
        "slq_reorthogonalisation": "full" if full else "local",
        "memory_estimate_bytes": int(need),
        "hvp_calls": op.calls,
    }
    if not ext.converged:
        info["warning"] = f"Lanczos did not reach tol={tol} in {ext.steps} products; the top values are lower bounds"
    if not ext.min_converged:
        info["lambda_min_note"] = (
            "unconverged: lambda_min <= this value (a Ritz value bounds it from above); "
            "use --lambda-min for a run to convergence"
        )
    return HessianSpectrum(
        op.n, op.loss, op.grad_norm, ext.top, ext.lambda_min, trace, stderr, nodes, weights, grid, curve, settings, info
    )


def hvp_seconds(op: HessianOperator, products: int, what: str, per: float | None = None) -> float:
    """Estimated seconds for `products` Hessian-vector products (one timed here unless `per` is given);
    a CostWarning before starting anything expected to take over a minute."""
    if per is None:
        v = torch.ones(op.n, device=op.device)
        per = seconds_per_call(lambda: op(v), repeats=1, warmup=False)
        op.calls = 0
    return warn_if_slow(
        products,
        per,
        f"Hessian of {what}",
        "lower --trace-samples/--slq-runs/--slq-steps or --batch-size, or use a GPU",
        "Hessian-vector products",
    )


def check_engine(name: str) -> str:
    if name not in HESSIAN_ENGINES:
        raise DstabError(f"unknown Hessian engine {name!r}; choose one of {list(HESSIAN_ENGINES)}")
    return name
