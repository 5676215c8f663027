"""The results cache as the Hessian and consistency analyses use it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import cache


def through_cache(
    name: str, params: dict, shas: list, compute: Callable[[], tuple[dict, dict]], refresh: bool, root: Path | None
) -> cache.Result:
    """cache.get_or_compute; with `root` (the shipped cache, when precomputing) a result that only the
    user cache holds is copied there too, so the shipped cache ends up complete."""
    found = cache.get_or_compute(name, params, shas, compute, refresh=refresh, root=root)
    if root is not None and found.source == "user":
        cache.store(name, params, shas, found.meta, found.arrays, root)
    return found
