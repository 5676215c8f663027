"""Where PyTorch computes: the device and the CPU thread count, one rule for the CLI, runs and dashboard.

Threads: `DSTAB_THREADS`, default half the cores (at most 4). OpenMP threads
spin for cores they do not get: measured on a loaded 2-core machine
(2026-11-26), a probe loss took 3.6 s with 2 threads against 0.056 s with 1,
and a 2-thread surface ran 60x slower than a 1-thread one.

Importing this module does not import torch (Home and `--help` stay fast);
the functions that need it import it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

from .errors import DstabError

THREADS_ENV = "DSTAB_THREADS"


def default_threads() -> int:
    """`DSTAB_THREADS` when set, else half the cores, at least 1 and at most 4."""
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return min(4, max(1, (os.cpu_count() or 2) // 2))
    try:
        n = int(text)
    except ValueError:
        raise DstabError(f"{THREADS_ENV}={text!r} is not a whole number; set it to a thread count such as 1") from None
    if n < 1:
        raise DstabError(f"{THREADS_ENV}={n} must be >= 1; set it to a thread count such as 1")
    return n


def set_threads(n: int | None = None) -> int:
    """Sets torch's CPU threads to `n` (default: `default_threads()`); returns the count set."""
    if n is None:
        n = default_threads()
    if n < 1:
        raise DstabError(f"--threads must be >= 1, got {n}")
    import torch

    torch.set_num_threads(n)
    return n


def resolve_device(name: str | None):
    """A torch.device from 'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    import torch

    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DstabError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DstabError(NO_CUDA)
    return dev


NO_CUDA = "CUDA was requested but no CUDA device is available; use --device cpu"


def cuda_ruled_out() -> bool:
    """True when PyTorch certainly finds no CUDA device, known without importing it: PyTorch is a
    CPU-only build (its version.py names no CUDA or HIP), or, on Linux, no GPU driver's device node
    exists (/dev/nvidia*, WSL's /dev/dxg, ROCm's /dev/kfd), without which no kernel can launch.
    False means "ask PyTorch", not "CUDA is there"."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return False  # no PyTorch: let its import say so
    try:
        text = Path(spec.origin).with_name("version.py").read_text()
    except OSError:
        return False
    builds = [re.search(rf"^{key}\b[^=]*=\s*(.+)$", text, re.M) for key in ("cuda", "hip")]
    if not any(m and m.group(1).strip() != "None" for m in builds):
        return True
    if sys.platform.startswith("linux"):
        dev = Path("/dev")
        return not any(dev.glob("nvidia*")) and not (dev / "dxg").exists() and not (dev / "kfd").exists()
    return False


def concrete_name(name: str | None) -> str:
    """The concrete device name ("cpu", "cuda:0") that `name` resolves to, so that run slots are counted
    per real device; a CUDA request without CUDA is refused. PyTorch is imported only when CUDA is not
    ruled out (`cuda_ruled_out`): the run manager queues CPU runs without it."""
    if name == "cpu":
        return "cpu"
    if (name in (None, "auto") or str(name).startswith("cuda")) and cuda_ruled_out():
        if name in (None, "auto"):
            return "cpu"
        raise DstabError(NO_CUDA)
    dev = resolve_device(name)
    return f"cuda:{dev.index or 0}" if dev.type == "cuda" else str(dev)
