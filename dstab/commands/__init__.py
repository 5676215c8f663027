"""CLI command groups; see dstab.cli."""

from __future__ import annotations

import torch

from ..errors import DstabError


def resolve_device(name: str | None) -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DstabError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DstabError("CUDA was requested but no CUDA device is available; use --device cpu")
    return dev


def add_device_arg(parser) -> None:
    parser.add_argument("--device", default="auto", help="auto (default: CUDA if present), cpu, cuda, cuda:N")
