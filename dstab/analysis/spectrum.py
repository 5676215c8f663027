"""The numbers of one Hessian analysis: the spectrum's moments, its density, and the result type.

Shared by dstab's engine (`hessian`) and PyHessian's (`hessian_ref`), so both
report the same quantities the same way; what they mean (sigma2 vs the
unweighted Ritz-value variance) is explained in `hessian`'s docstring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import require


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
