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

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from ..errors import DstabError, require
from .cost import seconds_per_call, warn_if_slow
from .hessian_settings import DEFAULT as SPEC
from .hessian_settings import HESSIAN_ENGINES

HVP_MODES = ("reverse", "forward")
# Hessian-vector products batched into one autograd call (trace probes, SLQ runs in lockstep); memory
# grows with it: SLQ keeps BATCH * steps * n floats of Lanczos basis
BATCH = 4
# the engines' defaults (SPEC) are hessian_settings' (what `dstab report` ships); tol bounds the top
# eigenvalues' errors relative to the spectral radius (see error_bounds)


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
        self.params = [p.clone().requires_grad_(True) for p in base]
        self.calls = 0
        loss = self._loss(self.params)
        self.loss = float(loss.detach())
        require(
            math.isfinite(self.loss),
            f"the probe's loss is {self.loss} at the analysed parameters; the Hessian is undefined there "
            "(check the checkpoint and the probe's batch)",
        )
        grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True, materialize_grads=True)
        self.grad_norm = float(torch.cat([g.detach().reshape(-1) for g in grads]).norm())
        self._flat_grad = torch.cat([g.reshape(-1) for g in grads]) if hvp == "reverse" else None

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
        hv = torch.autograd.grad(
            self._flat_grad, self.params, grad_outputs=v, retain_graph=True, allow_unused=True, materialize_grads=True
        )
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    def batched(self, V: torch.Tensor) -> torch.Tensor:
        """H V^T for the rows of V (B, n), as one vmapped backward pass in reverse mode (on a CPU
        about 1.25x faster per product than B single calls, bench/bench_hessian.py)."""
        if self.mode == "forward" or V.shape[0] == 1:
            return torch.stack([self(v) for v in V])
        self.calls += V.shape[0]
        if not self._flat_grad.requires_grad:
            return torch.zeros_like(V)
        hv = torch.autograd.grad(
            self._flat_grad, self.params, grad_outputs=V, retain_graph=True, is_grads_batched=True, allow_unused=True
        )
        B = V.shape[0]
        # unused parameters (None) have zero Hessian rows; materialize_grads would not batch them
        parts = [h.reshape(B, -1) if h is not None else V.new_zeros(B, size) for h, size in zip(hv, self.sizes)]
        return torch.cat(parts, dim=1).detach()

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


@dataclass
class LanczosRun:
    alpha: np.ndarray  # diagonal of T (float64)
    beta: np.ndarray  # off-diagonal of T, len(alpha) - 1
    exhausted: bool  # the Krylov space became invariant: T's eigenvalues are exact eigenvalues of H
    residual: float = 0.0  # norm of the next Lanczos vector before normalisation (beta_m)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the eigenvectors of T as columns."""
        if len(self.alpha) == 1:
            return self.alpha.copy(), np.ones((1, 1))
        return eigh_tridiagonal(self.alpha, self.beta)


def lanczos(
    op: HessianOperator,
    v0: torch.Tensor,
    steps: int,
    stop: Callable[[np.ndarray, np.ndarray, float], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> LanczosRun:
    """One Lanczos run from v0 (see `lanczos_runs`); `stop(alpha, beta, next_beta)` may end it early."""
    return lanczos_runs(op, v0[None], steps, stop, progress)[0]


def lanczos_runs(
    op: HessianOperator,
    starts: torch.Tensor,
    steps: int,
    stop: Callable[[np.ndarray, np.ndarray, float], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[LanczosRun]:
    """Independent Lanczos runs from the rows of `starts` (R, n), in lockstep so that each step's R
    Hessian-vector products go through autograd as one batch; full reorthogonalisation (two
    Gram-Schmidt passes, "twice is enough") against each run's basis, kept in one (R, steps, n) block.
    A run whose Krylov space closes is frozen; `stop` (single runs only) may end early."""
    R, n = starts.shape
    steps = min(steps, n)
    basis = torch.zeros(R, steps, n, dtype=starts.dtype, device=starts.device)
    basis[:, 0] = starts / starts.norm(dim=1, keepdim=True)
    alpha, beta = [[] for _ in range(R)], [[] for _ in range(R)]
    scale, runs = [0.0] * R, [None] * R
    for j in range(steps):
        w = op.batched(basis[:, j])
        for r in range(R):
            alpha[r].append(float(w[r] @ basis[r, j]))
        for _ in range(2):
            w = w - torch.einsum("rkn,rk->rn", basis[:, : j + 1], torch.einsum("rkn,rn->rk", basis[:, : j + 1], w))
        b = w.norm(dim=1).tolist()
        if progress:
            progress(j + 1)
        for r in range(R):
            if runs[r] is not None:
                continue
            scale[r] = max(scale[r], abs(alpha[r][-1]), b[r])
            # b ~ 0: the Krylov space is invariant and T's eigenvalues are exact. PyHessian restarts from a
            # random vector here, which breaks the quadrature: v's spectral measure lives on these nodes.
            exhausted = b[r] <= 1e-6 * max(scale[r], 1e-30) or j + 1 == n
            a_arr, b_arr = np.array(alpha[r]), np.array(beta[r])
            if exhausted or j + 1 == steps or (stop is not None and stop(a_arr, b_arr, b[r])):
                runs[r] = LanczosRun(a_arr, b_arr, exhausted, 0.0 if exhausted else b[r])
                continue
            beta[r].append(b[r])
            basis[r, j + 1] = w[r] / b[r]
        if all(run is not None for run in runs):
            return runs
    raise AssertionError("unreachable: every run ends at j + 1 == steps")


def error_bounds(alpha: np.ndarray, beta: np.ndarray, next_beta: float) -> tuple[np.ndarray, np.ndarray]:
    """(Ritz values ascending, a bound on each one's distance to an eigenvalue of H): with residual
    r_i = |beta_m s_mi| and gap_i the distance to the nearest other Ritz value, min(r_i, r_i^2 / gap_i)
    (Parlett, The Symmetric Eigenvalue Problem, Sec. 11.7; the Ritz gap stands in for the true gap)."""
    vals, vecs = LanczosRun(alpha, beta, False).ritz()
    resid = next_beta * np.abs(vecs[-1])
    if len(vals) == 1:
        return vals, resid
    diffs = np.abs(vals[:, None] - vals[None, :]) + np.diag(np.full(len(vals), np.inf))
    return vals, np.minimum(resid, resid**2 / np.maximum(diffs.min(axis=1), 1e-300))


def _top_converged(k: int, tol: float) -> Callable[[np.ndarray, np.ndarray, float], bool]:
    """Stop when the k largest Ritz values are within tol * spectral radius estimate of eigenvalues."""

    def stop(alpha: np.ndarray, beta: np.ndarray, next_beta: float) -> bool:
        if len(alpha) < k + 1:
            return False
        vals, bound = error_bounds(alpha, beta, next_beta)
        return bool(np.all(bound[-k:] <= tol * max(abs(vals[0]), abs(vals[-1]), 1e-30)))

    return stop


@dataclass
class Extremes:
    top: np.ndarray  # k largest eigenvalues, descending (Ritz values: lower bounds)
    lambda_min: float  # smallest Ritz value of the same run (an upper bound on lambda_min)
    steps: int
    converged: bool  # the top-k reached tol
    top_error: float  # largest error bound among the top-k
    min_error: float  # error bound of lambda_min (not a stopping criterion: it may be loose)


def extreme_eigenvalues(
    op: HessianOperator,
    k: int,
    seed: int = 0,
    tol: float = SPEC.tol,
    max_steps: int = SPEC.max_steps,
    progress=None,
) -> Extremes:
    """The k largest eigenvalues and the smallest one, by Lanczos from a seeded Gaussian vector."""
    require(isinstance(k, int) and k >= 1, f"top-k must be a positive integer, got {k!r}")
    require(k <= op.n, f"top-k = {k} exceeds the number of analysed parameters n = {op.n}; use --top-k <= {op.n}")
    require(max_steps >= k + 1 or max_steps >= op.n, f"max_steps = {max_steps} must exceed top-k = {k}")
    gen = torch.Generator().manual_seed(seed)
    run = lanczos(op, op.gaussian(gen), max_steps, stop=_top_converged(k, tol), progress=progress)
    require(
        len(run.alpha) >= k,
        f"the Hessian's Krylov space has dimension {len(run.alpha)} < top-k = {k}: H has fewer distinct "
        "eigenvalues than asked for; lower --top-k",
    )
    vals, bound = error_bounds(run.alpha, run.beta, run.residual)
    radius = max(abs(vals[0]), abs(vals[-1]), 1e-30)
    converged = bool(run.exhausted or np.all(bound[-k:] <= tol * radius))
    return Extremes(vals[::-1][:k].copy(), float(vals[0]), len(run.alpha), converged, float(bound[-k:].max()),
                    float(bound[0]))  # fmt: skip


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


def slq(op: HessianOperator, runs: int, steps: int, seed: int = 0, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: nodes and weights, (runs, steps) arrays; a run whose
    Krylov space closed early pads with weight 0 (its quadrature is exact already)."""
    require(isinstance(runs, int) and runs >= 1, f"SLQ runs must be a positive integer, got {runs!r}")
    require(isinstance(steps, int) and steps >= 2, f"SLQ steps must be an integer >= 2, got {steps!r}")
    steps = min(steps, op.n)
    gen = torch.Generator().manual_seed(seed)
    starts = [op.rademacher(gen) for _ in range(runs)]  # drawn in order, as PyHessian draws them
    nodes, weights = np.zeros((runs, steps)), np.zeros((runs, steps))
    for first in range(0, runs, BATCH):
        block = torch.stack(starts[first : first + BATCH])
        width = len(block)
        tick = (lambda j, f=first, b=width: progress(f * steps + j * b)) if progress else None
        for r, run in enumerate(lanczos_runs(op, block, steps, progress=tick), start=first):
            vals, vecs = run.ritz()
            m = len(vals)
            nodes[r, :m], weights[r, :m] = vals, vecs[0] ** 2
            nodes[r, m:] = vals[-1]
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


def spectrum(
    probe,
    top_k: int = SPEC.top_k,
    trace_samples: int = SPEC.trace_samples,
    slq_runs: int = SPEC.slq_runs,
    slq_steps: int = SPEC.slq_steps,
    seed: int = SPEC.seed,
    tol: float = SPEC.tol,
    max_steps: int = SPEC.max_steps,
    hvp: str = "reverse",
    progress: Callable[[str, int, int], None] | None = None,
    seconds_per_hvp: float | None = None,
) -> HessianSpectrum:
    """The paper's Hessian numbers for a probe with dstab's engine. Seeded and deterministic;
    `progress(stage, done, total)` is called after every Hessian-vector product; `seconds_per_hvp`,
    when the caller timed one already, spares timing one here."""
    op = HessianOperator(probe, hvp)
    require(top_k <= op.n, f"top-k = {top_k} exceeds the number of analysed parameters n = {op.n}")
    hvp_seconds(op, max_steps + trace_samples + slq_runs * min(slq_steps, op.n), probe.name, seconds_per_hvp)
    tick = (lambda stage, total: lambda i: progress(stage, i, total)) if progress else (lambda stage, total: None)
    max_steps = max(max_steps, top_k + 1)
    ext = extreme_eigenvalues(op, top_k, seed, tol, max_steps, tick("lanczos", max_steps))
    trace, stderr = hutchinson_trace(op, trace_samples, seed + 1, tick("trace", trace_samples))
    nodes, weights = slq(op, slq_runs, slq_steps, seed + 2, tick("slq", slq_runs * min(slq_steps, op.n)))
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
    }
    info = {
        "lanczos_steps": ext.steps,
        "lanczos_converged": ext.converged,
        "top_error_bound": ext.top_error,
        "lambda_min_error_bound": ext.min_error,
        "hvp_calls": op.calls,
    }
    if not ext.converged:
        info["warning"] = f"Lanczos did not reach tol={tol} in {ext.steps} steps; the top eigenvalues are lower bounds"
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
    return warn_if_slow(products, per, f"Hessian of {what}", "lower --trace-samples/--slq-runs/--slq-steps or "
                        "--batch-size, or use a GPU", "Hessian-vector products")  # fmt: skip


def check_engine(name: str) -> str:
    if name not in HESSIAN_ENGINES:
        raise DstabError(f"unknown Hessian engine {name!r}; choose one of {list(HESSIAN_ENGINES)}")
    return name


def hessian_params(
    probe,
    engine: str = "dstab",
    top_k=SPEC.top_k,
    trace_samples=SPEC.trace_samples,
    slq_runs=SPEC.slq_runs,
    slq_steps=SPEC.slq_steps,
    seed=SPEC.seed,
    tol=SPEC.tol,
    max_steps=SPEC.max_steps,
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
    }
