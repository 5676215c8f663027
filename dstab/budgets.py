"""Memory budget shared by every engine that allocates in proportion to its input.

`DSTAB_MAX_MEMORY_GB` (a float, GiB) caps what one analysis may allocate; by default half the
machine's physical memory. Engines estimate their peak before allocating and call `check_memory`.
"""

from __future__ import annotations

import os

from .errors import DstabError

GIB = 1 << 30


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GiB
        return 8 * GIB


def max_memory_bytes() -> int:
    """The budget in bytes: DSTAB_MAX_MEMORY_GB (float GiB), else 0.5 x physical RAM."""
    text = os.environ.get("DSTAB_MAX_MEMORY_GB", "").strip()
    if not text:
        return int(0.5 * _physical_memory())
    try:
        gib = float(text)
    except ValueError:
        raise DstabError(f"DSTAB_MAX_MEMORY_GB must be a number of GiB such as 4 or 0.5, got {text!r}") from None
    if not gib > 0 or gib != gib or gib == float("inf"):
        raise DstabError(f"DSTAB_MAX_MEMORY_GB must be a positive finite number of GiB, got {text!r}")
    return int(gib * GIB)


def check_memory(n_bytes: int, what: str) -> None:
    """Raise a DstabError when `what` would need more than the budget."""
    limit = max_memory_bytes()
    if n_bytes > limit:
        raise DstabError(
            f"{what} needs ~{n_bytes / GIB:.2f} GiB, above the DSTAB_MAX_MEMORY_GB limit of {limit / GIB:.2f} GiB; "
            "make the job smaller or raise DSTAB_MAX_MEMORY_GB"
        )
