"""Hessian spectra of a Probe's loss: top eigenvalues, trace, spectral density.

The paper (Sec. 3.2) measures the Hessian with PyHessian and reports the top
eigenvalue lambda_1 and a variance sigma^2 (DM 13.3 / 37.9, GAN 40.9 / 93.9).
dstab's engine of record computes the same quantities on flat vectors:

- top-k and bottom eigenvalues: Lanczos with full reorthogonalisation
  (Lanczos 1950; Golub & Van Loan, Matrix Computations, Sec. 10.1), stopped
  when the residual bound |beta_m s_mi| of every wanted Ritz value is below
  `tol` times the spectral radius estimate. PyHessian uses power iteration
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
built once (double backward; the fastest on CPU in bench/bench_hessian.py),
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

HVP_MODES = ("reverse", "forward")


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

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the eigenvectors of T as columns."""
        if len(self.alpha) == 1:
            return self.alpha.copy(), np.ones((1, 1))
        return eigh_tridiagonal(self.alpha, self.beta)


def lanczos(
    op: Callable[[torch.Tensor], torch.Tensor],
    v0: torch.Tensor,
    steps: int,
    stop: Callable[[np.ndarray, np.ndarray, float], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> LanczosRun:
    """Up to `steps` Lanczos iterations from v0 with full reorthogonalisation (two Gram-Schmidt
    passes, "twice is enough"), keeping the basis in one (steps, n) block on v0's device.
    `stop(alpha, beta, next_beta)` may end the run early."""
    n = v0.numel()
    steps = min(steps, n)
    basis = torch.empty(steps, n, dtype=v0.dtype, device=v0.device)
    basis[0] = v0 / v0.norm()
    alpha, beta = [], []
    scale = 0.0
    for j in range(steps):
        w = op(basis[j])
        alpha.append(float(w @ basis[j]))
        for _ in range(2):
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        b = float(w.norm())
        scale = max(scale, abs(alpha[-1]), b)
        if progress:
            progress(j + 1)
        # b ~ 0: the Krylov space is invariant and T's eigenvalues are exact. PyHessian restarts
        # from a random vector here, which breaks the quadrature; v's spectral measure lives on these.
        exhausted = b <= 1e-6 * max(scale, 1e-30) or j + 1 == n
        a_arr, b_arr = np.array(alpha), np.array(beta)
        if exhausted or j + 1 == steps or (stop is not None and stop(a_arr, b_arr, b)):
            return LanczosRun(a_arr, b_arr, exhausted)
        beta.append(b)
        basis[j + 1] = w / b
    raise AssertionError("unreachable: the loop returns at j + 1 == steps")


def _converged(k: int, tol: float) -> Callable[[np.ndarray, np.ndarray, float], bool]:
    """Stop when the k largest and the smallest Ritz values have residual bounds
    |beta_m s_{m,i}| <= tol * spectral radius estimate (Golub & Van Loan, Sec. 10.1.4)."""

    def stop(alpha: np.ndarray, beta: np.ndarray, next_beta: float) -> bool:
        if len(alpha) < k + 1:
            return False
        vals, vecs = LanczosRun(alpha, beta, False).ritz()
        resid = next_beta * np.abs(vecs[-1])
        radius = max(abs(vals[0]), abs(vals[-1]), 1e-30)
        return bool(np.all(resid[-k:] <= tol * radius) and resid[0] <= tol * radius)

    return stop


def extreme_eigenvalues(
    op: HessianOperator, k: int, seed: int = 0, tol: float = 1e-5, max_steps: int = 300, progress=None
):
    """(top-k eigenvalues descending, lambda_min, number of Lanczos steps, converged)."""
    require(isinstance(k, int) and k >= 1, f"top-k must be a positive integer, got {k!r}")
    require(k <= op.n, f"top-k = {k} exceeds the number of analysed parameters n = {op.n}; use --top-k <= {op.n}")
    require(max_steps >= k + 1 or max_steps >= op.n, f"max_steps = {max_steps} must exceed top-k = {k}")
    gen = torch.Generator().manual_seed(seed)
    run = lanczos(op, op.gaussian(gen), max_steps, stop=_converged(k, tol), progress=progress)
    vals, _ = run.ritz()
    converged = run.exhausted or len(run.alpha) < min(max_steps, op.n)
    require(
        len(vals) >= k,
        f"the Hessian's Krylov space has dimension {len(vals)} < top-k = {k}: H has fewer distinct "
        "eigenvalues than asked for; lower --top-k",
    )
    return vals[::-1][:k].copy(), float(vals[0]), len(run.alpha), converged


def hutchinson_trace(op: HessianOperator, samples: int, seed: int = 0, progress=None) -> tuple[float, float]:
    """(trace estimate, its standard error) from `samples` Rademacher probes z^T H z."""
    require(isinstance(samples, int) and samples >= 1, f"trace samples must be a positive integer, got {samples!r}")
    gen = torch.Generator().manual_seed(seed)
    vals = []
    for i in range(samples):
        z = op.rademacher(gen)
        vals.append(float(z @ op(z)))
        if progress:
            progress(i + 1)
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
    nodes, weights = np.zeros((runs, steps)), np.zeros((runs, steps))
    for r in range(runs):
        run = lanczos(
            op, op.rademacher(gen), steps, progress=(lambda j, r=r: progress(r * steps + j)) if progress else None
        )
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

DEFAULTS = {"top_k": 5, "trace_samples": 100, "slq_runs": 3, "slq_steps": 90, "seed": 0, "tol": 1e-5}


def spectrum(
    probe,
    top_k: int = DEFAULTS["top_k"],
    trace_samples: int = DEFAULTS["trace_samples"],
    slq_runs: int = DEFAULTS["slq_runs"],
    slq_steps: int = DEFAULTS["slq_steps"],
    seed: int = DEFAULTS["seed"],
    tol: float = DEFAULTS["tol"],
    hvp: str = "reverse",
    progress: Callable[[str, int, int], None] | None = None,
) -> HessianSpectrum:
    """The paper's Hessian numbers for a probe with dstab's engine. Seeded and deterministic;
    `progress(stage, done, total)` is called after every Hessian-vector product."""
    op = HessianOperator(probe, hvp)
    require(top_k <= op.n, f"top-k = {top_k} exceeds the number of analysed parameters n = {op.n}")
    tick = (lambda stage, total: lambda i: progress(stage, i, total)) if progress else (lambda stage, total: None)
    max_steps = max(300, 3 * top_k)
    top, lam_min, steps, converged = extreme_eigenvalues(op, top_k, seed, tol, max_steps, tick("lanczos", max_steps))
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
    }
    info = {"lanczos_steps": steps, "lanczos_converged": converged, "hvp_calls": op.calls}
    if not converged:
        info["warning"] = f"Lanczos did not reach tol={tol} in {steps} steps; the top eigenvalues are lower bounds"
    return HessianSpectrum(
        op.n, op.loss, op.grad_norm, top, lam_min, trace, stderr, nodes, weights, grid, curve, settings, info
    )


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
    from .. import cache

    params = hessian_params(probe, engine, **settings)
    sha = probe.describe().get("checkpoint_sha256")
    found = cache.get_or_compute(
        "hessian",
        params,
        [sha] if sha else [],
        lambda: analyse(probe, engine, progress, **settings).to_record(),
        refresh=refresh,
        root=root,
    )
    return HessianSpectrum.from_record(found.meta, found.arrays), found.source
