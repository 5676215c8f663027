"""The memory plan of a Hessian spectrum: what it will hold, printed before Lanczos starts.

What takes memory (bench/RESULTS.md measures each on the 35.7M-parameter CIFAR UNet):
- the operator: the probe's weights, the gradient graph kept for double backward, and one
  product's transients; measured once the operator is built and has taken one product;
- the Krylov vectors, 4 n bytes each: a top-k run's basis, the Ritz vectors it carries across a
  restart and its 3 p working vectors; one SLQ run's basis (or its 3 vectors).

Bounded by default: the Krylov vectors of a run may take 1 / KRYLOV_SHARE of DSTAB_MAX_MEMORY_GB.
Where a full basis would take more,
- SLQ runs the local recurrence: the three-term recurrence plus a pass against the previous two
  vectors (a window of 2), O(n) memory whatever the steps (accuracy: `lanczos`, `slq_accuracy` in
  tests/test_hessian_memory.py);
- top-k runs with one start vector and its basis capped at what the share holds (at least k + 4
  vectors): thick restarts that lock converged Ritz pairs (`locking.verified_end`);
- and on the CPU both keep those vectors in a scratch file (`spill`: $DSTAB_SCRATCH, else the user
  cache), RAM holding only the block being multiplied and its product: the whole run then needs
  about what one product needs (on the 35.7M UNet, bench/RESULTS.md). Where no usable scratch folder
  exists (none writable, on tmpfs, or too full) the vectors stay in RAM and the plan says why.
A plan is refused only when the operator plus these bounded vectors exceed DSTAB_MAX_MEMORY_GB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import budgets
from . import lanczos, spill

KRYLOV_SHARE = 8  # the Krylov vectors of one run may take 1/8 of DSTAB_MAX_MEMORY_GB
MIB = 1 << 20


def krylov_share() -> int:
    return budgets.max_memory_bytes() // KRYLOV_SHARE


def slq_full(n: int, steps: int) -> bool:
    """Full reorthogonalisation when one SLQ run's whole basis fits in the Krylov share; else the
    local recurrence (the quadrature's nodes and weights stay accurate, Meurant & Strakos 2006, but a
    node may appear twice with its weight split)."""
    return lanczos.krylov_bytes(n, steps, 1, True) <= krylov_share()


@dataclass(frozen=True)
class MemoryPlan:
    n: int
    operator: int  # bytes: weights, gradient graph, one product (measured)
    block: int  # start vectors of the top-k run
    cap: int | None  # the top-k's basis cap in vectors of n (None: uncapped, up to max_steps)
    top: int  # bytes of the top-k run's vectors at most
    slq_full: bool
    slq: int  # bytes of one SLQ run's vectors in RAM
    scratch: Path | None = None  # where the bounded runs' vectors are spilled (None: kept in RAM)
    disk: int = 0  # bytes of them in the scratch file at most
    no_spill: str = ""  # why a bounded plan keeps its vectors in RAM
    micro_batch: int | None = None  # samples per product pass (None: the whole batch, its graph kept)

    @property
    def total(self) -> int:
        return self.operator + max(self.top, self.slq)

    def text(self) -> str:
        top = f"top-k basis capped at {self.cap} vectors (thick restarts)" if self.cap else "top-k basis"
        return (
            f"memory: ~{self.total / MIB:.0f} MiB = operator {self.operator / MIB:.0f} MiB (weights, gradient graph, "
            f"one product) + max({top} <= {self.top / MIB:.0f} MiB, one SLQ run {self.slq / MIB:.0f} MiB, "
            f"{'full' if self.slq_full else 'local'} reorthogonalisation); vectors of n = {self.n:,} take "
            f"{4 * self.n / MIB:.1f} MiB each, at most {krylov_share() / MIB:.0f} MiB of them per run "
            f"(1/{KRYLOV_SHARE} of DSTAB_MAX_MEMORY_GB)" + self.spill_text() + self.micro_text()
        )

    def micro_text(self) -> str:
        if not self.micro_batch:
            return ""
        return (
            f"; products taken {self.micro_batch} sample{'s' if self.micro_batch > 1 else ''} at a time "
            "(the gradient graph of a micro-batch in memory, its forward and backward recomputed per product)"
        )

    def spill_text(self) -> str:
        if self.scratch is not None:
            return (
                f"; the basis kept in a scratch file in {self.scratch} (up to {self.disk / MIB:.0f} MiB on disk, "
                f"deleted when the run ends; set {spill.SCRATCH_ENV} to move it)"
            )
        return f"; the basis kept in RAM: {self.no_spill}" if self.no_spill else ""

    def derived(self) -> dict:
        """What the result records of the plan's choices (and its cache key, since they change numbers)."""
        return {
            "slq_reorthogonalisation": "full" if self.slq_full else "local",
            "lanczos_cap": self.cap,
            "lanczos_block": self.block,
        }


def plan(
    n: int,
    operator_bytes: int,
    top_k: int,
    max_steps: int,
    block: int,
    slq_steps: int,
    device: str = "cpu",
    micro_batch: int | None = None,
) -> MemoryPlan:
    """The plan for a spectrum of n parameters (see the module docstring); `device`: where the vectors
    live, a device type (spilling is for the CPU's memory)."""
    block = min(block, top_k)
    uncapped = lanczos.krylov_bytes(n, max_steps, block, True)
    cap = None
    if uncapped > krylov_share():
        block = 1
        cap = max(top_k + 4, krylov_share() // (lanczos.ITEMSIZE * n) - 3 * block)
        if cap >= max_steps:
            cap = None
    top = uncapped if cap is None else (cap + 3 * block) * lanczos.ITEMSIZE * n
    steps = min(slq_steps, n)
    full = slq_full(n, steps)
    slq = lanczos.krylov_bytes(n, steps, 1, full)
    if cap is None and full:
        return MemoryPlan(n, operator_bytes, block, cap, top, full, slq, micro_batch=micro_batch)
    vec = lanczos.ITEMSIZE * n
    disk = max(top, slq) if device == "cpu" else 0
    where, why = spill.usable_dir(disk) if disk else (None, "")
    if where is None:
        return MemoryPlan(n, operator_bytes, block, cap, top, full, slq, None, 0, why, micro_batch)
    # in RAM: the block multiplied and its product (3 blocks while a block > 1 is orthonormalised), the slabs
    slabs = 2 * min(spill.SLAB_BYTES, disk)
    work = (2 if block == 1 else 3) * block * vec + slabs
    top_ram = top if cap is None else work
    slq_ram = slq if full else 2 * vec + slabs
    return MemoryPlan(n, operator_bytes, block, cap, top_ram, full, slq_ram, where, disk, "", micro_batch)


def cap_of(n: int, top_k: int, max_steps: int, block: int) -> tuple[int, int | None]:
    """(start vectors, basis cap) a top-k of n parameters runs with under the plan (before any
    operator is built: the cap depends on n and the budget only)."""
    p = plan(n, 0, top_k, max_steps, block, 2)
    return p.block, p.cap
