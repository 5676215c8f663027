"""The Hessian engines' settings and their defaults, importable without PyTorch.

The defaults are what `dstab report` ships for the zoo (about 200
Hessian-vector products per probe, minutes on a CPU): top-3 eigenvalues to
1e-4 of the spectral radius, 20 Hutchinson probes, 2 SLQ runs of 40 steps.
`specs.HessianSpec` extends these with the probe and the engine; the engines
(`hessian`, `hessian_ref`) take their keyword defaults from here, so there is
one source of them.
"""

from __future__ import annotations

from dataclasses import dataclass

HESSIAN_ENGINES = ("dstab", "pyhessian")
# The revision of dstab's Lanczos stopping rule (residual bounds, block start, deflation check: issue 17).
# It is in every dstab Hessian's cache key, so a result an older rule computed (one that could claim a
# false convergence, or a lambda_min bound 22x too small) is never served as current; bump it whenever
# what the engine reports for the same settings changes.
LANCZOS_RULE = "checked-2"


def rule_key(engine: str) -> dict:
    return {"lanczos_rule": LANCZOS_RULE} if engine == "dstab" else {}


@dataclass(frozen=True)
class HessianSettings:
    top_k: int = 3
    trace_samples: int = 20  # Hutchinson probes
    slq_runs: int = 2
    slq_steps: int = 40
    seed: int = 0  # of the random vectors (the batch has the probe's own)
    tol: float = 1e-4  # bound on the top eigenvalues' errors relative to the spectral radius
    max_steps: int = 200  # Hessian-vector products of the top-k Lanczos at most
    block: int = 2  # Lanczos start vectors: clusters and multiplicities up to it are resolved
    lambda_min: bool = False  # run Lanczos for lambda_min to convergence (else an unconverged upper bound)

    def settings(self) -> dict:
        """The engine's keyword arguments."""
        names = ("top_k", "trace_samples", "slq_runs", "slq_steps", "seed", "tol", "max_steps", "block", "lambda_min")
        return {k: getattr(self, k) for k in names}


DEFAULT = HessianSettings()


def lambda_min_text(meta: dict) -> str:
    """lambda_min as a result's JSON states it: "v +- bound" when converged, "<= v (unconverged)"
    when it is only the smallest Ritz value of the top-k run, "n/a" where no engine computed it."""
    value = meta.get("lambda_min")
    if value is None:
        return "n/a"
    if meta.get("lambda_min_converged"):
        return f"{value:.4g} +- {meta['lambda_min_error_bound']:.2g}"
    return f"<= {value:.4g} (unconverged)"
