"""How a run folder's trainer is started: `dstab train`'s arguments and command (one process or
torchrun), its environment, and the status file a new launch sets aside. Shared by the local
queue (runs/__init__.py) and the Slurm launcher (runs/slurm.py)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from . import rundir
from .runstate import RUN

REPO_ROOT = Path(__file__).resolve().parents[2]


def trainer_args(path: Path, launch: dict, mode: str) -> list[str]:
    """`dstab train`'s arguments for run folder `path`: a new run from request.json, or a resume."""
    rd = str(path / RUN)
    args = ["--resume", rd] if mode == "resume" else ["--out", rd, "--config", str(path / "request.json")]
    threads = ["--threads", str(launch["threads"])] if launch.get("threads") else []
    device = (launch.get("launcher") or {}).get("device", launch["device"])
    return args + threads + ["--device", device, "--quiet"]


def trainer_command(launch: dict) -> str:
    """The shell words that start the trainer: `python -m dstab train`, under torchrun for a run of
    `nproc` > 1 processes (one node; DDP keeps the global batch), or $DSTAB_TRAIN_COMMAND (tests)."""
    if fake := os.environ.get("DSTAB_TRAIN_COMMAND"):
        return fake
    python = shlex.quote(sys.executable)
    n = int(launch.get("nproc") or 1)
    if n > 1:
        return f"{python} -m torch.distributed.run --standalone --nproc_per_node {n} -m dstab train"
    return f"{python} -m dstab train"


def trainer_env() -> dict:
    """The trainer's environment: this checkout first on PYTHONPATH."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))


def set_aside_status(path: Path) -> None:
    """The previous launch's status.json (e.g. 'stopped') must not describe the next launch; a resume
    that starts within the 1 s mtime slack of `_current_status` would otherwise inherit it."""
    stale = path / RUN / rundir.STATUS
    if stale.exists():
        os.replace(stale, stale.with_name("status.previous.json"))
