"""Hessian spectra of a Probe's loss: top eigenvalues, trace, spectral density.

The paper (Sec. 3.2) measures the Hessian with PyHessian and reports the top
eigenvalue lambda_1 and a variance sigma^2 (DM 13.3 / 37.9, GAN 40.9 / 93.9).
dstab's engine of record computes the same quantities on flat vectors:

- top-k eigenvalues: block Lanczos with full reorthogonalisation from
  min(`block`, k) Gaussian vectors, stopped when the error bound of every
  wanted Ritz value (residual, tightened by Kato-Temple where a gap is known)
  is below `tol` times the spectral radius estimate, then (`verify`) checked by
  Lanczos on H deflated by the Ritz vectors, with a thick restart when that
  finds a value the first run missed (repeated eigenvalues, clusters); under a
  memory cap, thick restarts that lock converged pairs (`locking`, the plan:
  `hessian_memory`); engine "arpack" runs scipy's eigsh instead. lambda_min is the
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

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import budgets
from ..errors import DstabError, require
from . import hessian_arpack, hessian_blocks, hessian_memory, lanczos, locking, spill
from .cost import seconds_per_call, warn_if_slow
from .hessian_memory import slq_full
from .hessian_result import SUMMARY_ONLY, HessianSpectrum  # noqa: F401  (the engine's API)
from .hessian_settings import DEFAULT as SPEC
from .hessian_settings import HESSIAN_ENGINES
from .hvp import HVP_MODES, HessianOperator, NotAMean  # noqa: F401  (the engine's API)
from .lanczos import density, spectrum_moments  # noqa: F401  (hessian_ref and callers use them here)

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
    verified: bool = False  # the deflation check ran and found nothing beyond the k-th value


def extreme_eigenvalues(
    op: HessianOperator,
    k: int,
    seed: int = 0,
    tol: float = SPEC.tol,
    max_steps: int = SPEC.max_steps,
    progress=None,
    block: int = SPEC.block,
    lambda_min: bool = False,
    verify: bool = SPEC.verify,
    cap: int | None = None,
    scratch: Path | str | None = None,
) -> Extremes:
    """The k largest eigenvalues by block Lanczos from min(block, k) seeded Gaussian vectors (more
    start vectors than wanted values change no reported value: a further copy of the k-th is the
    check's to find), stopped when every one is within tol * spectral radius by its error bound,
    after at most `max_steps` Hessian-vector products, checked unless `verify=False`; `cap`: vectors
    of n kept at once (`locking`); `scratch`: a folder where the bases are kept in a file (`spill`).
    lambda_min is the smallest Ritz value of that run, or with `lambda_min=True` of its own run to
    the same tolerance."""
    require(isinstance(k, int) and k >= 1, f"top-k must be a positive integer, got {k!r}")
    require(k <= op.n, f"top-k = {k} exceeds the number of analysed parameters n = {op.n}; use --top-k <= {op.n}")
    require(isinstance(block, int) and 1 <= block <= 16, f"the Lanczos block size must be 1..16, got {block!r}")
    p = min(block, k)
    require(max_steps >= k + p or max_steps >= op.n, f"max_steps = {max_steps} must exceed top-k + block = {k + p}")
    gen = torch.Generator().manual_seed(seed)
    mv = as_matvec(op)
    with _scratch(op, scratch) as file:
        # the start handed over in a list: no frame here keeps a vector of n alive for the run
        args = ("top", tol, max_steps, progress, seed, cap, verify)
        top, steps = locking.verified_end(mv, [gaussian_block(op, p, gen)], k, *args, scratch=file)
        if lambda_min:
            args = ("bottom", tol, max_steps, None, seed + 1, cap)
            low, min_steps = locking.verified_end(mv, [gaussian_block(op, 1, gen)], 1, *args, scratch=file)
    require(
        len(top.values) >= k,
        f"the Hessian's Krylov space has dimension {steps} < top-k = {k}: H has fewer distinct "
        "eigenvalues than asked for; lower --top-k",
    )
    if not lambda_min:  # the smallest Ritz value of a run stopped for the top-k: an upper bound, not converged
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
        top.checked,
    )


def _scratch(op: HessianOperator, where) -> contextlib.AbstractContextManager:
    """A scratch file in `where` for the run's vectors, or nothing (None, or not on the CPU: they stay in RAM)."""
    return spill.opened(op.n, where if op.device.type == "cpu" else None)


def hutchinson_trace(op: HessianOperator, samples: int, seed: int = 0, progress=None) -> tuple[float, float]:
    """(trace estimate, its standard error) from `samples` Rademacher probes z^T H z."""
    require(isinstance(samples, int) and samples >= 1, f"trace samples must be a positive integer, got {samples!r}")
    return hessian_blocks.hutchinson_parts(op, samples, seed, [], progress)[0]


def slq(
    op: HessianOperator,
    runs: int,
    steps: int,
    seed: int = 0,
    progress=None,
    full: bool | None = None,
    scratch: Path | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: nodes and weights, (runs, steps) arrays, one run at a time
    (one basis in memory); a run whose Krylov space closed early pads with weight 0 (its quadrature
    is exact already). `full=None` chooses the reorthogonalisation by `slq_full`; `scratch`: a folder
    where the basis (or, local, the previous vector) is kept in a file (`spill`)."""
    require(isinstance(runs, int) and runs >= 1, f"SLQ runs must be a positive integer, got {runs!r}")
    require(isinstance(steps, int) and steps >= 2, f"SLQ steps must be an integer >= 2, got {steps!r}")
    steps = min(steps, op.n)
    full = slq_full(op.n, steps) if full is None else full
    gen = torch.Generator().manual_seed(seed)
    nodes, weights = np.zeros((runs, steps)), np.zeros((runs, steps))
    for r in range(runs):
        tick = (lambda j, f=r: progress(f * steps + j)) if progress else None
        # drawn in order, as PyHessian draws them; handed over, not held (a vector of n fewer)
        with _scratch(op, scratch) as file:
            start = [op.rademacher(gen)[None]]
            run = lanczos.krylov(as_matvec(op), start, steps, full=full, progress=tick, scratch=file)
            nodes[r], weights[r] = lanczos.quadrature(run, steps)
            run = None
    return nodes, weights


MICRO_PARTS = 8  # the automatic micro-batches of a product: the graph of 1/8 of the batch, 8 passes
MICRO_ENV = "DSTAB_MICRO_BATCH"  # samples per product pass for every Hessian (0: the whole batch)


def micro_batch_env() -> int | None:
    """$DSTAB_MICRO_BATCH (None when unset): how the CLI and the page choose micro-batches, a setting of
    memory and time like DSTAB_MAX_MEMORY_GB (it changes values only at float32 rounding, so it is no
    part of a result's key)."""
    raw = os.environ.get(MICRO_ENV, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise DstabError(f"{MICRO_ENV} must be a whole number of samples (0: the whole batch), got {raw!r}")
    return value


def micro_batch_of(probe, hvp: str, top_k: int, max_steps: int, block: int, slq_steps: int) -> int | None:
    """The automatic micro-batch on the CPU where the plan bounds the Krylov vectors (a capped top-k or
    a local SLQ: the model is large against DSTAB_MAX_MEMORY_GB): the batch in MICRO_PARTS parts (one
    sample each for a batch of at most MICRO_PARTS), so that the gradient's graph, the largest thing a
    product holds, is a part's, for at most MICRO_PARTS passes a product; else the whole batch."""
    batch = getattr(probe, "batch_size", lambda: None)()
    if hvp != "reverse" or probe.device.type != "cpu" or not batch or batch < 2:
        return None
    n = sum(v.numel() for v in probe.params.values())
    _, cap = hessian_memory.cap_of(n, top_k, max_steps, block)
    return -(-batch // MICRO_PARTS) if cap is not None or not slq_full(n, min(slq_steps, n)) else None


def operator_with_plan(
    probe, hvp: str, top_k: int, max_steps: int, block: int, slq_steps: int, per=None, micro_batch: int | None = None
):
    """(operator, memory plan, seconds per product): the operator built and one product taken (timed
    unless `per` is given), the memory both took measured; the plan logged (logger "dstab") and
    checked against DSTAB_MAX_MEMORY_GB before any Lanczos vector exists. `micro_batch`: samples per
    product pass (`hvp`), 0 the whole batch, None $DSTAB_MICRO_BATCH or else chosen by
    `micro_batch_of` (the whole batch where the loss is not a mean over samples)."""
    before, peak_before = lanczos.resident_bytes(probe.device), lanczos.peak_bytes(probe.device)
    if micro_batch is None:
        micro_batch = micro_batch_env()
    auto = micro_batch is None
    if auto:
        micro_batch = micro_batch_of(probe, hvp, top_k, max_steps, block, slq_steps)
    try:
        op = HessianOperator(probe, hvp, micro_batch or None)
    except NotAMean as exc:
        if not auto:
            raise
        logging.getLogger("dstab").info("%s; taking products on the whole batch", exc)
        op = HessianOperator(probe, hvp)
    require(top_k <= op.n, f"top-k = {top_k} exceeds the number of analysed parameters n = {op.n}")
    timed = seconds_per_call(lambda: op(torch.ones(op.n, device=op.device)), repeats=1, warmup=False)
    op.calls = 0
    after, peak_after = lanczos.resident_bytes(op.device), lanczos.peak_bytes(op.device)
    # the peak of the build and one product when it fell in this window (else what stays resident); the
    # product's input and output are Krylov vectors, which the plan counts apart
    grown = (peak_after if peak_after > max(peak_before, after) else after) - before
    used = max(grown - 2 * lanczos.ITEMSIZE * op.n, after - before, 0)
    plan = hessian_memory.plan(
        op.n, used, top_k, max(max_steps, top_k + block), block, slq_steps, op.device.type, op.micro_batch
    )
    text = plan.text()
    logging.getLogger("dstab").info("Hessian of %s: %s", probe.name, text)
    budgets.check_memory(plan.total, f"the Hessian of {probe.name} ({text})")
    return op, plan, timed if per is None else per


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
    hvp: str = "reverse",
    progress: Callable[[str, int, int], None] | None = None,
    seconds_per_hvp: float | None = None,
    engine: str = "dstab",
    micro_batch: int | None = None,
) -> HessianSpectrum:
    """The paper's Hessian numbers for a probe with dstab's engine. Seeded and deterministic;
    `progress(stage, done, total)` is called after every Hessian-vector product; `seconds_per_hvp`,
    when the caller timed one already, is used for the cost estimate. The memory plan
    (`hessian_memory`) is logged and checked against DSTAB_MAX_MEMORY_GB before Lanczos starts.
    `micro_batch`: samples per product pass (`hvp`; 0 the whole batch, None automatic: `micro_batch_of`);
    it changes no value beyond rounding."""
    max_steps = max(max_steps, top_k + block)
    args = (probe, hvp, top_k, max_steps, block, slq_steps, seconds_per_hvp, micro_batch)
    op, plan, per = operator_with_plan(*args)
    blocks = hessian_blocks.partition(probe) if per_block else []
    products = max_steps * (2 if lambda_min else 1) + trace_samples + slq_runs * min(slq_steps, op.n)
    products += sum(max_steps + trace_samples for _ in blocks)
    hvp_seconds(op, products, probe.name, per)
    tick = (lambda stage, total: lambda i: progress(stage, i, total)) if progress else (lambda stage, total: None)
    lanczos_tick = tick("lanczos", max_steps)
    if engine == "arpack":
        ext = arpack_extremes(op, top_k, seed, tol, max_steps, lanczos_tick, lambda_min)
    else:
        lanczos_args = (tol, max_steps, lanczos_tick, plan.block, lambda_min, verify, plan.cap, plan.scratch)
        ext = extreme_eigenvalues(op, top_k, seed, *lanczos_args)
    require(trace_samples >= 1, f"trace samples must be a positive integer, got {trace_samples!r}")
    whole, parts = hessian_blocks.hutchinson_parts(op, trace_samples, seed + 1, blocks, tick("trace", trace_samples))
    trace, stderr = whole
    steps = min(slq_steps, op.n)
    nodes, weights = slq(op, slq_runs, slq_steps, seed + 2, tick("slq", slq_runs * steps), plan.slq_full, plan.scratch)
    grid, curve = density(nodes, weights)
    settings = {
        "engine": engine,
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
        "verify": verify,
        "per_block": per_block,
    }
    info = {
        "lanczos_steps": ext.steps,
        "lanczos_converged": ext.converged,
        "verification": verification(ext, verify, engine),
        "top_error_bound": ext.top_error,
        "top_error_bounds": [float(b) for b in ext.top_bounds],
        "lambda_min_converged": ext.min_converged,
        "lambda_min_error_bound": ext.min_error,
        "lambda_min_steps": ext.min_steps,
        **plan.derived(),
        "memory_estimate_bytes": int(plan.total),
        "memory_plan": plan.text(),
        "micro_batch": op.micro_batch,
    }
    if not ext.converged:
        info["warning"] = f"Lanczos did not reach tol={tol} in {ext.steps} products; the top values are lower bounds"
    elif not verify:
        info["warning"] = "unverified: no deflation check ran (verify=False); the bounds rest on Ritz gaps alone"
    if not ext.min_converged:
        info["lambda_min_note"] = (
            "unconverged: lambda_min <= this value (a Ritz value bounds it from above); "
            "use --lambda-min for a run to convergence"
        )
    if blocks:
        info["blocks"] = hessian_blocks.block_spectra(op, blocks, parts, seed, tol, max_steps, verify, plan.scratch)
    info["hvp_calls"] = op.calls
    return HessianSpectrum(
        op.n, op.loss, op.grad_norm, ext.top, ext.lambda_min, trace, stderr, nodes, weights, grid, curve, settings, info
    )


def arpack_extremes(op, k, seed, tol, max_steps, progress, lambda_min) -> Extremes:
    """The top-k (and lambda_min) by ARPACK on the same products; the error bounds are the measured
    residual norms (`hessian_arpack`)."""
    top, resid, steps, converged = hessian_arpack.end_pairs(op, k, "LA", seed, tol, max_steps, progress)
    radius = float(np.abs(top).max())
    converged = converged and bool(np.all(resid <= tol * max(radius, 1e-30)))
    low, low_resid, min_steps, low_ok = np.array([np.nan]), np.array([np.nan]), 0, False
    if lambda_min:
        low, low_resid, min_steps, low_ok = hessian_arpack.end_pairs(op, 1, "SA", seed + 1, tol, max_steps)
    low_ok = low_ok and bool(low_resid[0] <= tol * max(radius, 1e-30))
    value = float(low[0]) if lambda_min else float("nan")
    bound = float(low_resid[0]) if low_ok else None
    return Extremes(top, value, steps, converged, float(resid.max()), bound, resid, low_ok, min_steps, False)


def verification(ext: Extremes, verify: bool, engine: str) -> str:
    """How the top-k was confirmed, as every output labels it."""
    if engine == "arpack":
        return "residuals (arpack)"
    return "verified" if ext.verified else ("unverified" if not verify else "unchecked")


def hvp_seconds(op: HessianOperator, products: int, what: str, per: float | None = None) -> float:
    """Estimated seconds for `products` Hessian-vector products (one timed here unless `per` is given);
    a CostWarning before starting anything expected to take over a minute."""
    if per is None:
        per = seconds_per_call(lambda: op(torch.ones(op.n, device=op.device)), repeats=1, warmup=False)
        op.calls = 0
    slower = "lower --trace-samples/--slq-runs/--slq-steps or --batch-size, or use a GPU"
    return warn_if_slow(products, per, f"Hessian of {what}", slower, "Hessian-vector products")


def check_engine(name: str) -> str:
    if name not in HESSIAN_ENGINES:
        raise DstabError(f"unknown Hessian engine {name!r}; choose one of {list(HESSIAN_ENGINES)}")
    return name
