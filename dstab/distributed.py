"""Multiple processes through torchrun / torch.distributed (never a home-made launcher), for
training and for surfaces alike. torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them
everything runs as a single process and this module does nothing."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .errors import DstabError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This process's equal share of a global batch of n examples."""
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)


def from_env() -> Context:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    return Context(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def device_for(ctx: Context, device: torch.device) -> torch.device:
    """This rank's device: under torchrun on CUDA one GPU per rank (cuda:LOCAL_RANK); the CPU is shared."""
    if ctx.world > 1 and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def init(ctx: Context, device: torch.device) -> torch.device:
    """Join the process group (NCCL on CUDA, gloo on CPU); returns this rank's device."""
    if ctx.world == 1:
        return device
    device = device_for(ctx, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=collective_timeout())
        # left to the interpreter's teardown, gloo's worker threads aborted a rank now and then after its
        # work was done ("terminate called without an active exception", pytorch#190489): the group ends
        # at exit while Python is whole, unless the caller ended it first (a run does, runner.py); within
        # the process it stays up, so one process can compute several surfaces
        atexit.register(finish, ctx)
    return device


def collective_timeout() -> timedelta:
    """How long a rank waits at a collective: rank 0 evaluates alone (FID-10k by DDIM-100 of a CIFAR-10
    UNet: minutes; FID-50k over all 4000 steps: hours) while the others wait at their next step, so
    the default is $DSTAB_COLLECTIVE_TIMEOUT_H hours (6), not NCCL's 10 minutes."""
    raw = os.environ.get("DSTAB_COLLECTIVE_TIMEOUT_H", "6")
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not hours > 0:
        raise DstabError(f"DSTAB_COLLECTIVE_TIMEOUT_H must be a positive number of hours, got {raw!r}")
    return timedelta(hours=hours)


def gather(ctx: Context, x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's x in rank order (for logging and loss-aware samplers)."""
    if ctx.world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(ctx.world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def agree(ctx: Context, flag: bool, device: torch.device) -> bool:
    """True on every rank when any rank says True (e.g. a SIGTERM reached one of them)."""
    if ctx.world == 1:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def finish(ctx: Context) -> None:
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
