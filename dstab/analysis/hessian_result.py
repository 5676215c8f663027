"""The result of a Hessian analysis: `HessianSpectrum`, its JSON summary and NPZ arrays (the cache record).

Moments and their definitions: `hessian` (the module docstring) and `lanczos.spectrum_moments`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lanczos import spectrum_moments


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

    @property
    def meta(self) -> dict:
        """What the numbers came with (the probe, timing, where the result came from): `info`, under the
        name every other result uses."""
        return self.info

    @property
    def blocks(self) -> list[dict]:
        """Per-block lambda_1 and trace (`per_block=True`), [] otherwise (`hessian_blocks`)."""
        return list(self.info.get("blocks", []))

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
