"""The trainer's exact resume state on disk: `resume.pt` beside its checkpoints (raw weights, EMA,
optimisers, RNG and sampler state, step), and `resume.prev.pt`, the one before.

The trainer writes it after every checkpoint (`Trainer.checkpoint`); `dstab train --resume` (the
run manager's runner) reads it back. Torch-free at import: the run manager only checks that these
files exist.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import DstabError
from ..fileio import atomic_write_bytes

RESUME = "resume.pt"
PREVIOUS_RESUME = "resume.prev.pt"


def save_resume_state(checkpoint_dir: Path, state: dict) -> None:
    """resume.pt, atomically; the one it replaces is kept as resume.prev.pt, so a newest file damaged
    later (a disk error, a bad copy) still leaves an exact resume point one checkpoint back."""
    import torch  # here, not at the top: the run manager checks for these files without PyTorch

    buf = io.BytesIO()
    torch.save(state, buf)
    current, staged = checkpoint_dir / RESUME, checkpoint_dir / f".{RESUME}.next.tmp"
    atomic_write_bytes(staged, buf.getvalue())  # a full disk fails here, with both states untouched
    if current.exists():
        os.replace(current, checkpoint_dir / PREVIOUS_RESUME)
    os.replace(staged, current)


def _readable_state(path: Path) -> tuple[dict | None, str | None]:
    if not path.exists():
        return None, f"{path.name} is missing"
    from ..bundle import safe_torch_load  # PyTorch, only to read a resume state

    try:
        state = safe_torch_load(path)
    except DstabError as exc:
        return None, f"{path.name} is damaged ({exc})"
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        return None, f"{path.name} is damaged (no step in it)"
    return state, None


def load_resume_state(checkpoint_dir: Path, note=print) -> dict | None:
    """The resume state (tensors and plain containers only), or None before the first checkpoint.

    A damaged or missing resume.pt falls back to resume.prev.pt (one checkpoint back), saying so through
    `note`. With neither, a run that has checkpoints is refused rather than silently restarted from
    step 0 (which would throw away its metrics)."""
    state, problem = _readable_state(checkpoint_dir / RESUME)
    if state is not None:
        return state
    previous, _ = _readable_state(checkpoint_dir / PREVIOUS_RESUME)
    if previous is not None:
        note(f"note: {problem}; resuming from {PREVIOUS_RESUME} at step {previous['step']} instead")
        return previous
    steps = sorted(int(p.stem[4:]) for p in checkpoint_dir.glob("step*.safetensors")) if checkpoint_dir.is_dir() else []
    if not steps:
        return None
    raise DstabError(
        f"{checkpoint_dir}: {problem} although checkpoints up to step {steps[-1]} exist, so the run cannot "
        "continue exactly; start a new run (this run's checkpoints and metrics are left as they are)"
    )
