"""The k eigenvalues at one end of the spectrum: thick restarts that lock Ritz pairs, a capped basis,
and a check for what a Krylov space cannot see.

`verified_end` runs block Lanczos (`lanczos.krylov`, full reorthogonalisation) in cycles:

- Capped basis: the vectors kept at once (Ritz vectors carried over plus the cycle's basis) never
  exceed `cap`; Ritz vectors are formed in place over the basis (`lanczos.ritz_in_place`). That is
  what bounds the memory of a top-k at CIFAR scale (`hessian_memory.plan`).
- Thick restart with locking (Wu & Simon 2000, block form): a cycle that reaches the cap keeps its
  leading Ritz vectors Y with their values Theta and continues from its next block Q, with
  H Y = Y Theta + Q C^T exactly (C from the last off-diagonal block), so the next cycle's projected
  matrix is the arrowhead [[Theta, C], [C^T, T]] and no error enters the bounds. The kept pairs are
  locked: no product is spent on them again, the block iterates only on the new directions. With
  `lock=False` (the ablation the tests compare with) a cycle instead restarts from its k leading
  Ritz vectors as a block of k, iterating on converged and unconverged values alike.
- Stopping and bounds: as `lanczos.end_values` on the whole projected matrix: each wanted value
  within tol * spectral radius by its residual, Kato-Temple tightened with a gap to the other
  values.
- The check (`verify=True`): Lanczos on H deflated by the Ritz vectors at or beyond the k-th value,
  from a random vector orthogonal to them, until its top value converges to tol * radius or passes
  the k-th value minus its bound. One that passes is an eigenvalue the Krylov space missed (a further
  copy of a repeated eigenvalue, a cluster member): the run restarts thick from Y with the missed
  vector added to the next block, and is checked again. The check's value also caps the k-th value's
  gap. `verify=False` skips it: the values are then "unverified", their bounds resting on Ritz gaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import spill
from .lanczos import Basis, EndValues, Krylov, MatVec, end_values, handed, krylov, ritz_in_place

MAX_CYCLES = 64  # restarts of one call at most (each costs at least a block of products)


@dataclass
class _Head:
    """Ritz pairs carried into a cycle: rows Y (a Basis), values theta, couplings C to the cycle's start."""

    rows: Basis
    theta: np.ndarray
    C: np.ndarray  # (len(theta), p of the next start block)

    @property
    def size(self) -> int:
        return len(self.theta)


def _projected(head: _Head, run: Krylov) -> Krylov:
    """The cycle's projected matrix: the arrowhead of the kept pairs on top of the run's T."""
    if head.size == 0:
        return run
    s, m, p = head.size, len(run.T), head.C.shape[1]
    T = np.zeros((s + m, s + m))
    T[:s, :s] = np.diag(head.theta)
    T[s:, s:] = run.T
    C = head.C @ run.first.T  # couplings to the start block as krylov orthonormalised it
    T[:s, s : s + p] = C
    T[s : s + p, :s] = C.T
    return Krylov(T, run.B, run.p, run.exhausted, dense=True)


def _rows(head: _Head, run: Krylov) -> list[torch.Tensor]:
    kept = [c[i] for c, u in zip(head.rows.chunks, head.rows.used) for i in range(u)]
    return kept + run.rows()


def _carry(head: _Head, run: Krylov, columns: np.ndarray, like: torch.Tensor) -> _Head:
    """The Ritz pairs of `columns` as the next cycle's head (vectors formed in place)."""
    whole = _projected(head, run)
    vals, vecs = whole.ritz()
    rows = ritz_in_place(_rows(head, run), vecs[:, columns])
    kept = Basis(like.shape[1], 1, like)
    for r in rows:
        kept.adopt([r] if isinstance(r, spill.Row) else r[None])
    C = (run.B @ vecs[-run.p :, columns]).T if run.next is not None else np.zeros((len(columns), 0))
    return _Head(kept, vals[columns], C)


def _empty(like: torch.Tensor, p: int) -> _Head:
    return _Head(Basis(like.shape[1], 1, like), np.zeros(0), np.zeros((0, p)))


def _orthogonal_to(rows: Basis, Z: torch.Tensor) -> torch.Tensor:
    for _ in range(2):
        rows.project_out(Z)
    return Z


class _Both:
    """Two sets of orthonormal rows a run stays orthogonal to (the kept pairs, and a deflation)."""

    def __init__(self, a: Basis, b: Basis | None):
        self.a, self.b = a, b

    @property
    def count(self) -> int:
        return self.a.count + (self.b.count if self.b is not None else 0)

    def project_out(self, W: torch.Tensor) -> torch.Tensor:
        self.a.project_out(W)
        return self.b.project_out(W) if self.b is not None else W


@dataclass
class _Cycles:
    """What `_cycles` ends with: the values, the products, and the last cycle (to carry its pairs)."""

    ends: EndValues | None
    used: int
    head: _Head
    run: Krylov | None
    low: float


def _cycles(
    mv,
    block,
    head,
    k,
    tol,
    max_rows,
    cap,
    settle,
    seed,
    tick,
    lock,
    outside=None,
    radius=0.0,
    capped=False,
    scratch: spill.Scratch | None = None,
) -> _Cycles:
    """Thick-restarted block Lanczos for the k top values of H on the complement of `outside`, from
    `head` (pairs carried in) and the start `block` (handed over: `lanczos.handed`), until
    `settle(ends)` or the products run out; `scratch`: the bases spilled there (`spill`)."""
    block = handed(block)
    n = block.shape[1]
    like = block.new_empty((0, n))
    used, low, ends, run = 0, math.inf, None, None
    spare = n - (outside.count if outside is not None else 0)
    for cycle in range(MAX_CYCLES):
        room = min(max_rows - used, cap - head.size, spare - head.size)
        if room < len(block):
            break
        stop = lambda r: settle(end_values(_projected(head, r), k, "top", tol, radius))  # noqa: E731
        step = (lambda j, u=used: tick(u + j)) if tick else None
        whole_basis = _Both(head.rows, outside)
        box, block = [block], None  # handed over: krylov holds the only reference
        run = krylov(
            mv, box, room, stop, progress=step, seed=seed + cycle, locked=whole_basis, per_block=capped, scratch=scratch
        )
        used += len(run.T)
        whole = _projected(head, run)
        ends = end_values(whole, k, "top", tol, radius)
        radius, low = ends.radius, min(low, ends.opposite)
        if settle(ends) or used >= max_rows or run.exhausted or run.next is None:
            break
        top = len(whole.T) - 1 - np.arange(len(whole.T))
        if lock:  # thick restart: the leading pairs are kept, the block continues from Q_next
            keep = min(len(top), max(k, (cap + k) // 2 - len(run.next)))
            head, block = _carry(head, run, top[:keep], like), run.next
        else:  # explicit restart from the k leading Ritz vectors, all iterated again
            rows = _carry(head, run, top[: min(k, len(top))], like).rows
            head, block = _empty(like, k), torch.cat([spill.load(c) for c in rows.chunks])
        run = whole = None  # the basis goes now, not once the next cycle's krylov returns (the cap)
    return _Cycles(ends, used, head, run, low)


def verified_end(
    matvec: MatVec,
    start: torch.Tensor,
    k: int,
    which: str,
    tol: float,
    max_rows: int,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
    cap: int | None = None,
    verify: bool = True,
    lock: bool = True,
    scratch: spill.Scratch | None = None,
) -> tuple[EndValues, int]:
    """(the k end values, Hessian-vector products used), see the module docstring. `start` (p, n, or
    a list handing it over: `lanczos.handed`) is consumed; `max_rows`: products at most; `cap`:
    vectors of n kept at once (None: max_rows); `scratch`: the bases kept in that file (`spill`),
    RAM holding only the working blocks."""
    mv = matvec if which == "top" else (lambda Q: matvec(Q).neg_())
    block = handed(start)
    del start
    p, n = block.shape
    like = block.new_empty((0, n))
    capped = cap is not None
    cap = max_rows if cap is None else max(int(cap), k + 2 * p + 2)
    gen = torch.Generator().manual_seed(seed + 104729)
    head, used, low = _empty(like, p), 0, math.inf
    tick = (lambda j: progress(used + j)) if progress else None
    for _ in range(8):
        box, block = [block], None
        main = _cycles(
            mv, box, head, k, tol, max_rows - used, cap, _converged, seed, tick, lock, capped=capped, scratch=scratch
        )
        used, ends, low = used + main.used, main.ends, min(low, main.low)
        if ends is None:
            raise ValueError(f"cap {cap} and max_rows {max_rows} leave no room for a Lanczos step")
        if not ends.converged or not verify or main.run.next is None:
            break
        edge, margin = float(ends.values[-1]), float(ends.bounds[-1])
        vals = _projected(main.head, main.run).ritz()[0]
        ties = np.flatnonzero(vals >= edge - margin)[::-1]  # a repeated k-th value, once resolved, is no miss
        head, nxt = _carry(main.head, main.run, ties, like), main.run.next
        if scratch is not None:  # parked in the file while the check runs
            nxt = [scratch.row(r) for r in nxt]
        main = None  # its basis goes before the check's is built
        room = min(max_rows - used, cap - head.size - len(nxt))
        if room < 3:
            ends.converged = False  # no room left for the check: the values stand unchecked
            break
        step = (lambda j, u=used: tick(u + j)) if tick else None
        check = _check(
            mv, head, (edge, margin), tol, max_rows - used, room, ends.radius, gen, seed, step, capped, scratch
        )
        used, low = used + check.used, min(low, check.low)
        near = check.ends
        # the check's eigenvalue lies within its own (Kato-Temple) bound of its value: that caps the gaps
        ends = ends.with_neighbour(float(near.values[0]), float(near.bounds[0]), tol)
        if near.values[0] < edge - margin and (ends.converged or not near.converged):  # checked, or out of products
            ends.converged = ends.converged and near.converged
            ends.checked = near.converged
            break
        # a missed value, or one so close below the k-th that its gap spoils the bounds: restart thick
        # from the kept pairs, its vector joining the next block
        top = len(_projected(check.head, check.run).T) - 1
        found = spill.load(_carry(check.head, check.run, np.array([top]), like).rows.chunks[0])
        check = None
        nxt = spill.load(nxt)
        block = torch.cat([nxt, _orthogonal_to(_single(nxt), found)])
        nxt = found = None
        head.C = np.concatenate([head.C, np.zeros((head.size, 1))], axis=1)
    ends.opposite = low
    if which == "bottom":
        ends.values, ends.opposite = -ends.values, -ends.opposite
    return ends, used


def _check(mv, head: _Head, edge_margin, tol, products, room, radius, gen, seed, step, capped, scratch) -> _Cycles:
    """Lanczos on H deflated by the kept pairs, from a random vector orthogonal to them, until its top
    value passes the k-th minus its bound or converges to tol x H's spectral radius (not the deflated
    H's, which is smaller when lambda_2 << lambda_1)."""
    edge, margin = edge_margin
    z = _orthogonal_to(head.rows, torch.randn(1, head.rows.n, generator=gen).to(head.rows.like))
    beyond = lambda e: e.values[0] >= edge - margin or e.converged  # noqa: E731
    one = _empty(z, 1)
    box, z = [z], None
    args = (tol, products, room, beyond, seed + 1, step, True, head.rows, radius, capped)
    return _cycles(mv, box, one, 1, *args, scratch=scratch)


def _converged(ends: EndValues) -> bool:
    return ends.converged


def _single(rows: torch.Tensor) -> Basis:
    b = Basis(rows.shape[1], len(rows), rows)
    b.adopt(rows)
    return b
