"""Budgets: sizes read from a header, an option or a file, checked before anything is allocated.

A shared lab server must not let one small crafted file (a header declaring a
100,000-wide MLP, T = 1e11, a zip that inflates to 64 GiB, a 30000 x 30000 PNG)
or one option (`--top-k 100000`, `sample -n 1e8`) take its memory. Every size
that decides an allocation is compared with a limit here first; the limits are
environment variables with defaults sized to the machine:

  DSTAB_MAX_MEMORY_GB     memory one computation may plan for (float GiB; default half the RAM)
  DSTAB_MAX_PARAMS        parameters of one network (default: what 16 bytes each, weights +
                          gradients + two Adam moments, fit in DSTAB_MAX_MEMORY_GB)
  DSTAB_MAX_TIMESTEPS     diffusion steps T (default 100,000; published models use <= 4,000)
  DSTAB_MAX_SAMPLES       images or points drawn in one call (default 100,000)
  DSTAB_MAX_BATCH         examples in one batch: probes, training (default 65,536)
  DSTAB_MAX_GRID_POINTS   points of a loss surface or an interpolation (default 40,401 = 201 x 201)
  DSTAB_MAX_TOP_K         Hessian eigenvalues, trace probes, SLQ runs / steps (default 1,000)
  DSTAB_MAX_IMAGE_PIXELS  pixels of one decoded image (default 2**26, e.g. 8192 x 8192)
  DSTAB_MAX_ARCHIVE_MEMBERS  members of a zip checkpoint (default 100,000), read from its directory's end record
  DSTAB_MAX_TENSORS       tensors a safetensors header lists (default 20,000; published models hold < 3,000),
                          counted while its JSON is parsed, before any tensor is read

A refusal is a `DstabError` naming the size, the limit and the variable that raises it.
"""

from __future__ import annotations

import os
from functools import cache

from .errors import DstabError

GIB = 2**30


@cache
def physical_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a modest 8 GiB machine
        return 8 * GIB


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise DstabError(f"{name} must be a number, got {text!r}; set it to a positive number or unset it") from None
    if not 0 < value < float("inf"):
        raise DstabError(f"{name}={text!r} must be positive; set it to a positive number or unset it")
    return value


def max_memory_bytes() -> int:
    """DSTAB_MAX_MEMORY_GB (float GiB), default half the physical memory."""
    return int(_env_number("DSTAB_MAX_MEMORY_GB", physical_memory_bytes() / 2 / GIB) * GIB)


def check_memory(n_bytes: int, what: str) -> None:
    """DstabError if `what` would need more than the memory budget."""
    limit = max_memory_bytes()
    if n_bytes > limit:
        raise DstabError(
            f"{what} needs ~{n_bytes / GIB:.3g} GiB, above the DSTAB_MAX_MEMORY_GB limit of {limit / GIB:.3g} GiB; "
            "use smaller settings or raise DSTAB_MAX_MEMORY_GB"
        )


# name -> (default, what it bounds); DSTAB_MAX_PARAMS's default follows the memory budget
LIMITS = {
    "DSTAB_MAX_TIMESTEPS": (100_000, "diffusion steps T"),
    "DSTAB_MAX_SAMPLES": (100_000, "samples"),
    "DSTAB_MAX_BATCH": (65_536, "batch size"),
    "DSTAB_MAX_GRID_POINTS": (201 * 201, "grid points"),
    "DSTAB_MAX_TOP_K": (1_000, "Hessian vectors or steps"),
    "DSTAB_MAX_IMAGE_PIXELS": (2**26, "image pixels"),
    "DSTAB_MAX_ARCHIVE_MEMBERS": (100_000, "archive members"),
    "DSTAB_MAX_TENSORS": (20_000, "tensors"),
}


def limit(name: str) -> int:
    if name == "DSTAB_MAX_PARAMS":
        return int(_env_number(name, max_memory_bytes() // 16))
    default, _ = LIMITS[name]
    return int(_env_number(name, default))


def check_count(value, name: str, what: str) -> int:
    """`value` as an int if it is a whole number within the limit `name`; else DstabError naming `what`
    (the option, or the file and field it came from)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DstabError(f"{what} must be a whole number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")) or number != int(number):
        raise DstabError(f"{what} must be a whole number, got {value!r}")
    cap = limit(name)
    if number > cap:
        noun = "parameters" if name == "DSTAB_MAX_PARAMS" else LIMITS[name][1]
        raise DstabError(
            f"{what} is {int(number):,}, above the {name} limit of {cap:,} {noun}; use a smaller value or raise {name}"
        )
    return int(number)


def check_params(n_params: int, what: str) -> None:
    """A network of `n_params` float32 parameters: within DSTAB_MAX_PARAMS and the memory budget."""
    check_count(n_params, "DSTAB_MAX_PARAMS", f"{what}: parameter count")
    check_memory(4 * int(n_params), f"{what} ({int(n_params):,} parameters)")
