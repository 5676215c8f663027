"""Where PyTorch computes: the device and the CPU thread count, one rule for the CLI, runs and dashboard.

Threads: `DSTAB_THREADS`, default half the cores (at most 4). OpenMP threads
spin for cores they do not get: measured on a loaded 2-core machine
(2026-11-26), a probe loss took 3.6 s with 2 threads against 0.056 s with 1,
and a 2-thread surface ran 60x slower than a 1-thread one.

Importing this module does not import torch (Home and `--help` stay fast);
the functions that need it import it.
"""

from __future__ import annotations

import os

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
        raise DstabError("CUDA was requested but no CUDA device is available; use --device cpu")
    return dev
