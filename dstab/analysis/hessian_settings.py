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

# dstab's own; PyHessian as the paper used it; scipy ARPACK (eigsh) on dstab's own products, the oracle
HESSIAN_ENGINES = ("dstab", "pyhessian", "arpack")
# The revision of dstab's Lanczos stopping rule. It is in every dstab Hessian's cache key, so a result an
# older rule computed is never served as current; it changes whenever the numbers a rule returns for the
# same settings can change. checked-2 (issue 17): residual bounds, block start, deflation check.
# locked-3 (issue 26): thick restarts that lock converged Ritz pairs under a memory cap, a check that
# restarts thick, the block never wider than top-k, `verify`.
LANCZOS_RULE = "locked-3"


def rule_key(engine: str) -> dict:
    return {"lanczos_rule": LANCZOS_RULE} if engine in ("dstab", "arpack") else {}


@dataclass(frozen=True)
class HessianSettings:
    top_k: int = 3
    trace_samples: int = 20  # Hutchinson probes
    slq_runs: int = 2
    slq_steps: int = 40
    seed: int = 0  # of the random vectors (the batch has the probe's own)
    tol: float = 1e-4  # bound on the top eigenvalues' errors relative to the spectral radius
    max_steps: int = 200  # Hessian-vector products of the top-k Lanczos at most
    # Lanczos start vectors (at most top-k of them): clusters and multiplicities up to it are resolved
    block: int = 2
    lambda_min: bool = False  # run Lanczos for lambda_min to convergence (else an unconverged upper bound)
    # check the top-k by Lanczos on H deflated by them (False: no check, the values labelled "unverified")
    verify: bool = True
    per_block: bool = False  # also lambda_1 and the trace of each block's diagonal Hessian block

    def settings(self) -> dict:
        """The engine's keyword arguments."""
        names = (
            "top_k",
            "trace_samples",
            "slq_runs",
            "slq_steps",
            "seed",
            "tol",
            "max_steps",
            "block",
            "lambda_min",
            "verify",
            "per_block",
        )
        return {k: getattr(self, k) for k in names}


DEFAULT = HessianSettings()


def verification_text(meta: dict) -> str:
    """Whether the top-k converged, as every output labels it: "yes", "yes (unverified)" when no
    deflation check ran (`verify=False`), "no", or "n/a" where the engine has no such test."""
    converged = meta.get("lanczos_converged")
    if converged is None:
        return "n/a"
    if not converged:
        return "no"
    return "yes (unverified)" if meta.get("verification") == "unverified" else "yes"


def lambda_min_text(meta: dict) -> str:
    """lambda_min as a result's JSON states it: "v +- bound" when converged, "<= v (unconverged)"
    when it is only the smallest Ritz value of the top-k run, "n/a" where no engine computed it."""
    value = meta.get("lambda_min")
    if value is None:
        return "n/a"
    if meta.get("lambda_min_converged"):
        return f"{value:.4g} +- {meta['lambda_min_error_bound']:.2g}"
    return f"<= {value:.4g} (unconverged)"
