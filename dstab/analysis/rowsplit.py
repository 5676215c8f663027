"""Splitting a surface's rows across torchrun ranks and gathering them.

Under `torchrun --nproc_per_node=K -m dstab surface ...` every rank builds
the same probe and the same directions (both are pure functions of their
seeds), evaluates a contiguous block of grid rows, and all ranks gather the
blocks (gloo on CPU, NCCL on CUDA). Each grid point is computed exactly as a
single process would compute it, so the gathered grid equals the
single-process one. Rank 0 writes the files and the cache entry. Joining the
process group and the rank's device are `dstab.distributed`'s.
"""

from __future__ import annotations

import numpy as np
import torch.distributed as dist

from .landscape import Surface, with_metrics


def rows_for(grid: int, rank: int, size: int) -> list[int]:
    """A contiguous block of rows per rank; block sizes differ by at most one."""
    return [int(r) for r in np.array_split(np.arange(grid), size)[rank]]


def gather(part: Surface) -> Surface:
    """Every rank's rows merged into one complete surface (on every rank)."""
    pieces = [None] * dist.get_world_size()
    mine = (part.meta["rows"], part.loss[part.meta["rows"]], part.meta["seconds"])
    dist.all_gather_object(pieces, mine)
    loss = np.full_like(part.loss, np.nan)
    rows = []
    for r, values, _ in pieces:
        loss[r] = values
        rows.extend(r)
    meta = {
        **part.meta,
        "rows": sorted(rows),
        "seconds": max(s for _, _, s in pieces),
        "world_size": dist.get_world_size(),
    }
    return with_metrics(Surface(part.alphas, part.betas, loss, meta))
