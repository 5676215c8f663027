"""Names of sample-quality metrics as runs store them ("fd_local@500x50ddim") and as people read them.

Torch-free, for the dashboard's tables as well as the evaluators in `analysis.fid`.
"""

from __future__ import annotations

import os

from .errors import DstabError

LABELS = {
    "fid": "FID",
    "fd_local": "FD (local features)",
    "fd_points": "FD (raw 2-D points)",
    "mmd2": "MMD^2 (RBF, 2-D points)",
    "sw2": "sliced W2 (2-D points)",
    "mode_coverage": "modes covered",
    "mode_precision": "mode precision",
    "kid": "KID (Inception features)",
    "kid_se": "KID standard error (Inception features)",
    "kid_local": "KID (local features)",
    "kid_local_se": "KID standard error (local features)",
    **{
        f"{m}{tail}": f"{m} (k = 5, {where} features)"
        for m in ("precision", "recall", "density", "coverage")
        for tail, where in (("", "Inception"), ("_local", "local"))
    },
}
HIGHER_IS_BETTER = (
    "mode_coverage",
    "mode_precision",
    "precision",
    "recall",
    "density",
    "coverage",
    "precision_local",
    "recall_local",
    "density_local",
    "coverage_local",
)
REPEAT = "#2"  # marks the second evaluation of the same model with other noise seeds (the metric's own noise)


SAMPLERS = ("ddim", "ddpm")  # DDIM with eta 0 over a subsequence of steps; ancestral sampling over all T
FID_MIN_SAMPLES = 10_000  # below ~10k samples the FID estimate is biased upward (researchers report FID-10k/50k)
FID_MIN_ENV = "DSTAB_FID_MIN_SAMPLES"  # lowers the minimum for smoke tests; the name still carries the count


def fid_min_samples() -> int:
    """The fewest samples an evaluation may call FID: FID_MIN_SAMPLES, or $DSTAB_FID_MIN_SAMPLES."""
    raw = os.environ.get(FID_MIN_ENV, "").strip()
    if not raw:
        return FID_MIN_SAMPLES
    if not raw.isdigit() or int(raw) < 2:
        raise DstabError(f"{FID_MIN_ENV} must be an integer >= 2, got {raw!r}")
    return int(raw)


def check_fid_samples(n: int) -> None:
    """Refuse an FID evaluation on fewer samples than `fid_min_samples()`."""
    least = fid_min_samples()
    if not (isinstance(n, int) and n >= least):
        raise DstabError(
            f"FID needs at least {least} samples, got eval_samples={n!r}: below that the estimate is biased upward; "
            f"set eval_samples >= {least} (the evaluation time grows with it: --dry-run shows it)"
        )


def metric_name(metric: str, n: int, sampler_steps: int | None, seeds: int = 1, sampler: str = "ddim") -> str:
    """e.g. fd_local@500x50ddim (DM samples by 50 DDIM steps), fid@50000x4000ddpm (ancestral
    sampling over all 4000 steps), fid@500 (GAN samples), and mmd2@500x50ddim~3 for the mean over
    3 evaluation noise seeds."""
    steps = f"x{sampler_steps}{sampler}" if sampler_steps else ""
    return f"{metric}@{n}{steps}" + (f"~{seeds}" if seeds > 1 else "")


def repeat_name(name: str) -> str:
    """'fd_local@1000x10ddim' -> 'fd_local@1000x10ddim#2': the same metric from the repeat evaluation."""
    return name + REPEAT


def is_repeat(name: str) -> bool:
    return name.endswith(REPEAT)


def metric_label(name: str, short: bool = False) -> str:
    """'fd_local@500x50ddim' -> 'FD (local features), 500 samples, 50 DDIM steps', or with `short`
    (legends, table cells) 'FD (local features), 500x50ddim'. FID only when it is InceptionV3 FID."""
    name, repeat = name.removesuffix(REPEAT), " (repeat, other noise seeds)" if is_repeat(name) else ""
    metric, _, rest = name.partition("@")
    if short:
        return (f"{LABELS.get(metric, metric)}, {rest}" if rest else LABELS.get(metric, metric)) + repeat
    rest, _, seeds = rest.partition("~")
    n, _, steps = rest.partition("x")
    out = f"{LABELS.get(metric, metric)}, {n} samples"
    for sampler in SAMPLERS:
        if steps.endswith(sampler):
            out += f", {steps.removesuffix(sampler)} {sampler.upper()} steps"
    return out + (f", mean of {seeds} noise seeds" if seeds else "") + repeat
