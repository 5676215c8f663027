"""Hessian spectra of a Probe's loss: top eigenvalues, trace, spectral density.

The paper (Sec. 3.2) measures the Hessian with PyHessian and reports the top
eigenvalue lambda_1 and a variance sigma^2 (DM 13.3 / 37.9, GAN 40.9 / 93.9).
dstab's engine of record computes the same quantities on flat vectors:

- top-k and bottom eigenvalues: Lanczos with full reorthogonalisation
  (Lanczos 1950; Golub & Van Loan, Matrix Computations, Sec. 10.1), stopped
  when the error bound min(r, r^2 / gap) of every wanted top Ritz value is
  below `tol` times the spectral radius estimate (r = |beta_m s_mi|, Parlett
  Sec. 11.7). lambda_min is the smallest Ritz value of the same run, reported
  with its own error bound. PyHessian uses power iteration
  with deflation instead, which needs many more Hessian-vector products for
  the same accuracy. A Krylov space from one start vector holds one copy of a
  repeated eigenvalue: exactly repeated eigenvalues are reported once.
- trace: Hutchinson's estimator tr(H) = E[z^T H z] with Rademacher z
  (Hutchinson 1989; Avron & Toledo 2011), with its standard error.
- density: stochastic Lanczos quadrature (Golub & Meurant; Ghorbani, Krishnan
  & Xiao 2019; Yao et al. 2020 "PyHessian"): per run a Rademacher start vector
  v, normalised, m Lanczos steps; the Ritz values theta_k are the nodes and
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

Hessian-vector products: ``hvp="reverse"`` differentiates a gradient graph
built once (double backward; 1.7-2.4x faster than forward-over-reverse on CPU
in bench/bench_hessian.py, 4x on the digits UNet), batching independent
products (Hutchinson probes, SLQ runs in lockstep) into one vmapped backward;
``hvp="forward"`` is torch.func forward-over-reverse jvp(grad(f)), which keeps
no graph between calls. Losses must write squares out: F.mse_loss breaks
forward-over-reverse in torch (pytorch#123996).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import budgets, cache
from ..errors import DstabError, require
from . import lanczos
from .landscape import CostWarning

HVP_MODES = ("reverse", "forward")
# Hessian-vector products batched into one autograd call (trace probes, SLQ runs in lockstep); memory
# grows with it: SLQ keeps BATCH * steps * n floats of Lanczos basis
BATCH = 4
# tol: bound on the top eigenvalues' errors relative to the spectral radius (see error_bounds)
# block: start vectors of the top-k Lanczos (clusters and multiplicities up to it are resolved)
DEFAULTS = {"top_k": 5, "trace_samples": 100, "slq_runs": 3, "slq_steps": 90, "seed": 0, "tol": 1e-4,
            "max_steps": 200, "block": 2, "lambda_min": False}  # fmt: skip


def check_finite(named: dict[str, torch.Tensor]) -> None:
    bad = [k for k, v in named.items() if not torch.isfinite(v).all()]
    require(not bad, f"parameters {bad[:5]} contain NaN or inf; the checkpoint is broken, use another one")


class HessianOperator:
    """v -> H v for a probe's loss at the probe's parameters, on flat float32 vectors.

    Works on detached copies: the probe (and any caller's model) is never touched.
    """

    def __init__(self, probe, hvp: str = "reverse"):
        require(hvp in HVP_MODES, f"unknown hvp mode {hvp!r}; choose one of {list(HVP_MODES)}")
        check_finite(probe.params)
        self.probe, self.mode = probe, hvp
        self.names = list(probe.params)
        require(self.names, "the probe has no parameters to analyse")
        base = [probe.params[k].detach().float() for k in self.names]
        self.shapes = [p.shape for p in base]
        self.sizes = [p.numel() for p in base]
        self.n = sum(self.sizes)
        self.device = base[0].device
        # one flat leaf with the parameters as views of it: gradients and products come out as one
        # flat vector, with no per-tensor copies to concatenate (half the memory of a product)
        self.flat = torch.cat([p.reshape(-1) for p in base]).requires_grad_(True)
        self.params = self.unflatten(self.flat)
        self.calls = 0
        loss = self._loss(self.params)
        self.loss = float(loss.detach())
        require(
            math.isfinite(self.loss),
            f"the probe's loss is {self.loss} at the analysed parameters; the Hessian is undefined there "
            "(check the checkpoint and the probe's batch)",
        )
        (grad,) = torch.autograd.grad(loss, self.flat, create_graph=True, allow_unused=True, materialize_grads=True)
        self.grad_norm = float(grad.detach().norm())
        self._flat_grad = grad if hvp == "reverse" else None

    def _loss(self, tensors) -> torch.Tensor:
        loss = self.probe.loss(dict(zip(self.names, tensors)))
        require(loss.dim() == 0, f"a probe's loss must be a scalar, got shape {tuple(loss.shape)}")
        return loss

    def unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [t.view(s) for t, s in zip(torch.split(v, self.sizes), self.shapes)]

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.mode == "forward":
            return self._forward_over_reverse(v)
        if not self._flat_grad.requires_grad:  # the loss is linear in the parameters: H = 0
            return torch.zeros_like(v)
        (hv,) = torch.autograd.grad(self._flat_grad, self.flat, grad_outputs=v, retain_graph=True, materialize_grads=True)
        return hv

    def batched(self, V: torch.Tensor) -> torch.Tensor:
        """H V^T for the rows of V (B, n), as one vmapped backward pass in reverse mode (on a CPU
        about 1.25x faster per product than B single calls, bench/bench_hessian.py)."""
        if self.mode == "reverse" and V.shape[0] == 1:
            return self(V[0])[None]
        if self.mode == "forward":
            return torch.stack([self(v) for v in V])
        self.calls += V.shape[0]
        if not self._flat_grad.requires_grad:
            return torch.zeros_like(V)
        (hv,) = torch.autograd.grad(
            self._flat_grad, self.flat, grad_outputs=V, retain_graph=True, is_grads_batched=True, allow_unused=True
        )
        return torch.zeros_like(V) if hv is None else hv

    def _forward_over_reverse(self, v: torch.Tensor) -> torch.Tensor:
        primals = tuple(p.detach() for p in self.params)
        _, hv = torch.func.jvp(
            torch.func.grad(lambda *ps: self._loss(ps), argnums=tuple(range(len(primals)))),
            primals,
            tuple(self.unflatten(v)),
        )
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    def gaussian(self, gen: torch.Generator) -> torch.Tensor:
        """A standard normal vector, drawn per parameter tensor in order on the CPU (device independent)."""
        return torch.cat([torch.randn(s, generator=gen).reshape(-1) for s in self.shapes]).to(self.device)

    def rademacher(self, gen: torch.Generator) -> torch.Tensor:
        """A +-1 vector drawn per parameter tensor in order, as PyHessian draws its own
        (randint(0, 2) then 0 -> -1): with the same seed both engines start from the same vector."""
        draws = [torch.randint(0, 2, s, generator=gen).reshape(-1) for s in self.shapes]
        return (torch.cat(draws).float() * 2 - 1).to(self.device)


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
    tol: float = DEFAULTS["tol"],
    max_steps: int = DEFAULTS["max_steps"],
    progress=None,
    block: int = DEFAULTS["block"],
    lambda_min: bool = False,
) -> Extremes:
    """The k largest eigenvalues by block Lanczos from `block` seeded Gaussian vectors, stopped when
    every one is within tol * spectral radius by its error bound (see `lanczos`), after at most
    `max_steps` Hessian-vector products. lambda_min is the smallest Ritz value of that run, or with
    `lambda_min=True` of its own run to the same tolerance."""
    require(isinstance(k, int) and k >= 1, f"top-k must be a positive integer, got {k!r}")
    require(k <= op.n, f"top-k = {k} exceeds the number of analysed parameters n = {op.n}; use --top-k <= {op.n}")
    require(isinstance(block, int) and 1 <= block <= 16, f"the Lanczos block size must be 1..16, got {block!r}")
    require(max_steps >= k + block or max_steps >= op.n, f"max_steps = {max_steps} must exceed top-k + block = {k + block}")
    gen = torch.Generator().manual_seed(seed)
    mv = as_matvec(op)
    top, steps = lanczos.verified_end(mv, gaussian_block(op, block, gen), k, "top", tol, max_steps, progress, seed)
    require(
        len(top.values) >= k,
        f"the Hessian's Krylov space has dimension {steps} < top-k = {k}: H has fewer distinct "
        "eigenvalues than asked for; lower --top-k",
    )
    if lambda_min:
        low, min_steps = lanczos.verified_end(mv, gaussian_block(op, block, gen), 1, "bottom", tol, max_steps, None, seed + 1)
    else:  # the smallest Ritz value of a run stopped for the top-k: an upper bound, not converged
        low = lanczos.EndValues(np.array([top.opposite]), np.array([np.inf]), top.radius, False)
        min_steps = 0
    return Extremes(top.values, float(low.values[0]), steps, top.converged, float(top.bounds.max()),
                    float(low.bounds[0]) if low.converged else None, top.bounds, low.converged, min_steps)  # fmt: skip


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


def spectrum_moments(nodes: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """SLQ estimates of the spectrum's mean tr(H)/n, second moment tr(H^2)/n and variance, plus the
    unweighted variance of the Ritz values (see the module docstring for why both)."""
    first = float(np.mean(np.sum(weights * nodes, axis=1)))
    second = float(np.mean(np.sum(weights * nodes**2, axis=1)))
    ritz_var = float(np.mean([np.var(row[w > 0]) for row, w in zip(nodes, weights)]))
    return {"mean": first, "second_moment": second, "sigma2": second - first**2, "ritz_variance": ritz_var}


def density(nodes: np.ndarray, weights: np.ndarray, points: int = 512, bandwidth: float = 0.01):
    """(grid, density): sum_k tau_k N(t; theta_k, s^2) averaged over runs, s = bandwidth * spectrum
    width (as the ESD plots of Ghorbani et al. 2019 / PyHessian), normalised to integrate to 1.
    The grid spans the Ritz values plus 3 s on each side."""
    require(points >= 16, f"density points must be >= 16, got {points}")
    require(bandwidth > 0, f"density bandwidth must be > 0, got {bandwidth}")
    lo, hi = float(nodes.min()), float(nodes.max())
    s = bandwidth * max(hi - lo, 1e-6 * max(abs(lo), abs(hi), 1.0))
    grid = np.linspace(lo - 3 * s, hi + 3 * s, points)
    z = (grid[None, None, :] - nodes[:, :, None]) / s
    curve = np.mean(np.sum(weights[:, :, None] * np.exp(-0.5 * z**2), axis=1), axis=0) / (s * math.sqrt(2 * math.pi))
    return grid, curve / np.trapezoid(curve, grid)


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
    top_k: int = DEFAULTS["top_k"],
    trace_samples: int = DEFAULTS["trace_samples"],
    slq_runs: int = DEFAULTS["slq_runs"],
    slq_steps: int = DEFAULTS["slq_steps"],
    seed: int = DEFAULTS["seed"],
    tol: float = DEFAULTS["tol"],
    max_steps: int = DEFAULTS["max_steps"],
    block: int = DEFAULTS["block"],
    lambda_min: bool = DEFAULTS["lambda_min"],
    hvp: str = "reverse",
    progress: Callable[[str, int, int], None] | None = None,
) -> HessianSpectrum:
    """The paper's Hessian numbers for a probe with dstab's engine. Seeded and deterministic;
    `progress(stage, done, total)` is called after every Hessian-vector product. The memory plan
    is logged (logger "dstab") and checked against DSTAB_MAX_MEMORY_GB before Lanczos starts."""
    before = lanczos.resident_bytes(probe.device)
    op = HessianOperator(probe, hvp)
    require(top_k <= op.n, f"top-k = {top_k} exceeds the number of analysed parameters n = {op.n}")
    max_steps = max(max_steps, top_k + block)
    need, text = memory_plan(op.n, max(lanczos.resident_bytes(op.device) - before, 0), max_steps, block, slq_steps)
    logging.getLogger("dstab").info("Hessian of %s: %s", probe.name, text)
    budgets.check_memory(need, f"the Hessian of {probe.name} ({text})")
    warn_if_costly(op, max_steps * (2 if lambda_min else 1) + trace_samples + slq_runs * min(slq_steps, op.n), probe.name)
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
        info["warning"] = f"Lanczos did not reach tol={tol} in {ext.steps} products; the top eigenvalues are lower bounds"
    if not ext.min_converged:
        info["lambda_min_note"] = (
            "unconverged: lambda_min <= this value (a Ritz value bounds it from above); "
            "use --lambda-min for a run to convergence"
        )
    return HessianSpectrum(
        op.n, op.loss, op.grad_norm, ext.top, ext.lambda_min, trace, stderr, nodes, weights, grid, curve, settings, info
    )


def lambda_min_text(meta: dict) -> str:
    """lambda_min as a result's JSON states it: "v +- bound" when converged, "<= v (unconverged)"
    when it is only the smallest Ritz value of the top-k run, "n/a" where no engine computed it."""
    value = meta.get("lambda_min")
    if value is None:
        return "n/a"
    if meta.get("lambda_min_converged"):
        return f"{value:.4g} +- {meta['lambda_min_error_bound']:.2g}"
    return f"<= {value:.4g} (unconverged)"


def warn_if_costly(op: HessianOperator, products: int, what: str) -> float:
    """Estimated seconds for `products` Hessian-vector products (timed on one); a CostWarning
    before starting anything expected to take over a minute."""
    t0 = time.perf_counter()
    op(torch.ones(op.n, device=op.device))
    per = time.perf_counter() - t0
    op.calls = 0
    estimate = products * per
    if estimate > 60:
        warnings.warn(
            f"Hessian of {what}: up to {products} Hessian-vector products at about {per:.2f} s each: roughly "
            f"{estimate / 60:.1f} min; lower --trace-samples/--slq-runs/--slq-steps or --batch-size, or use a GPU",
            CostWarning,
            stacklevel=3,
        )
    return estimate


ENGINES = ("dstab", "pyhessian")


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise DstabError(f"unknown Hessian engine {name!r}; choose one of {list(ENGINES)}")
    return name


def hessian_params(
    probe,
    engine: str = "dstab",
    top_k=DEFAULTS["top_k"],
    trace_samples=DEFAULTS["trace_samples"],
    slq_runs=DEFAULTS["slq_runs"],
    slq_steps=DEFAULTS["slq_steps"],
    seed=DEFAULTS["seed"],
    tol=DEFAULTS["tol"],
    max_steps=DEFAULTS["max_steps"],
    block=DEFAULTS["block"],
    lambda_min=DEFAULTS["lambda_min"],
) -> dict:
    """What a spectrum depends on besides the checkpoint: its cache parameters."""
    described = {k: v for k, v in probe.describe().items() if k not in ("name", "checkpoint", "checkpoint_sha256")}
    return {
        "probe": described,
        "engine": check_engine(engine),
        "top_k": int(top_k),
        "trace_samples": int(trace_samples),
        "slq_runs": int(slq_runs),
        "slq_steps": int(slq_steps),
        "seed": int(seed),
        "tol": float(tol),
        "max_steps": int(max_steps),
        "block": int(block),
        "lambda_min": bool(lambda_min),
        "slq_reorth": "full" if slq_full(sum(p.numel() for p in probe.params.values()), int(slq_steps)) else "local",
    }


def analyse(probe, engine: str = "dstab", progress=None, **settings) -> HessianSpectrum:
    """The spectrum by the named engine: dstab's own, or PyHessian as the paper used it."""
    if check_engine(engine) == "pyhessian":
        from . import hessian_ref  # imports pyhessian, which imports this module

        return hessian_ref.spectrum(probe, progress=progress, **settings)
    return spectrum(probe, progress=progress, **settings)


def cached(
    probe, engine: str = "dstab", refresh: bool = False, progress=None, root=None, **settings
) -> tuple[HessianSpectrum, str]:
    """(spectrum, where it came from: "shipped", "user" or "computed") through the results cache,
    keyed by the probe's checkpoint sha256 and every setting;
    computed results go to `root` (default: the user cache)."""
    params = hessian_params(probe, engine, **settings)
    sha = probe.describe().get("checkpoint_sha256")
    found = cache.get_or_compute(
        "hessian",
        params,
        [sha] if sha else [],
        lambda: analyse(probe, engine, progress, **settings).to_record(),
        refresh,
        root,
    )
    return HessianSpectrum.from_record(found.meta, found.arrays), found.source
