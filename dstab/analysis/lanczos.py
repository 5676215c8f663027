"""Lanczos numerics on flat vectors: block Lanczos, Ritz error bounds, the stopping rule, SLQ runs.

- `krylov`: block Lanczos (Golub & Underwood 1977; Golub & Van Loan, Matrix Computations,
  Sec. 10.3) from a (p, n) start block, p = 1 being plain Lanczos. The basis is kept in chunks
  allocated as steps are taken (memory grows with the steps actually taken), and either all of it
  is kept for full reorthogonalisation (two Gram-Schmidt passes by matmul, "twice is enough") or
  only the last two blocks (`full=False`: the three-term recurrence plus a local pass, O(p n)
  memory whatever the number of steps). The small projected matrix T = Q^T H Q is float64.
- Error bounds (Parlett, The Symmetric Eigenvalue Problem, Sec. 11.5-11.7): a Ritz pair
  (theta_i, y_i) has residual r_i = ||H y_i - theta_i y_i|| = ||B_m S_{last block, i}||, and some
  eigenvalue of H lies within r_i of theta_i. Where the distance from theta_i to every other
  eigenvalue is known to exceed a gap g_i > r_i, the Kato-Temple inequality tightens this to
  r_i^2 / g_i. The gap is estimated conservatively: the distance to each other Ritz value minus
  that value's own residual (an eigenvalue near theta_j may lie anywhere within r_j of it).
- What no Krylov method can see: an eigenvector (nearly) orthogonal to the start block, and so
  more copies of a repeated eigenvalue, or more members of a cluster narrower than the tolerance,
  than the block has vectors. A start block of p random vectors resolves multiplicities and
  clusters up to p; dstab's default p = 2 covers the pairs seen in practice (the digits DM's
  lambda_3 / lambda_4). Ritz values are lower bounds of the top eigenvalues and upper bounds of
  the bottom ones (Cauchy interlacing), so an unconverged value is still a one-sided bound.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from ..errors import require
from . import spill

MatVec = Callable[[torch.Tensor], torch.Tensor]  # (p, n) rows -> the rows of H applied to each
CHUNK_BYTES = 64 << 20  # basis storage is allocated this much at a time (at least one row)
ITEMSIZE = 4  # float32 vectors
SLAB_BYTES = 16 << 20  # in-place Ritz vectors: columns of the basis transformed this much at a time


def chunk_rows(n: int, p: int = 1) -> int:
    """Rows per allocation: up to CHUNK_BYTES, a whole number of p-blocks (a block never straddles)."""
    rows = max(1, min(16, CHUNK_BYTES // (n * ITEMSIZE)))
    return p * max(1, rows // p)


class Basis:
    """Orthonormal rows, appended one p-block at a time. Kept whole (full reorthogonalisation) in
    chunks allocated as they fill, or (`local`) only the last two blocks, by reference. With a
    `scratch` (`spill`), rows are written to its file instead and a chunk is a list of `spill.Row`."""

    def __init__(
        self,
        n: int,
        p: int,
        like: torch.Tensor,
        local: bool = False,
        per_block: bool = False,
        scratch: spill.Scratch | None = None,
    ):
        self.n, self.p, self.local, self.scratch = n, p, local, scratch
        self.like = like.new_empty((0, n))  # dtype and device only: no reference to a vector of n
        self.chunks: list[torch.Tensor] = []
        self.used: list[int] = []
        # one block per chunk under a cap: a Ritz vector kept across a restart then holds only its own row
        self.per_block = per_block
        self.rows = p if per_block else chunk_rows(n, p)

    def append(self, block: torch.Tensor) -> torch.Tensor:
        """Store a (p, n) block; returns the stored rows (a view for a kept basis; spilled rows with a
        scratch file, the block itself staying the caller's)."""
        if self.scratch is not None:
            rows = [self.scratch.row(b) for b in block]
            if self.local:
                self.chunks, self.used = (self.chunks + [rows])[-2:], (self.used + [len(rows)])[-2:]
            else:
                self.chunks.append(rows)
                self.used.append(len(rows))
            return rows
        if self.local:
            self.chunks, self.used = (self.chunks + [block])[-2:], (self.used + [len(block)])[-2:]
            return block
        if not self.chunks or self.used[-1] >= self.rows:
            self.rows = self.p if self.per_block else chunk_rows(self.n, self.p)
            self.chunks.append(self.like.new_empty(self.rows, self.n))
            self.used.append(0)
        a = self.used[-1]
        self.chunks[-1][a : a + len(block)] = block
        self.used[-1] += len(block)
        return self.chunks[-1][a : a + len(block)]

    @property
    def count(self) -> int:
        return sum(self.used)

    def adopt(self, rows) -> None:
        """Keep `rows` (orthonormal, orthogonal to the kept ones; a (p, n) tensor or spilled rows) as
        they are, without a copy."""
        self.chunks.append(rows)
        self.used.append(len(rows))
        self.rows = 0  # the next append starts a chunk of its own

    def project_out(self, W: torch.Tensor) -> torch.Tensor:
        """W minus its components along the kept rows, in place, by two matmuls per chunk."""
        for Q, used in zip(self.chunks, self.used):
            Q = Q[:used]
            if spill.is_spilled(Q):
                spill.project_out(Q, W)
            else:
                W.addmm_(W @ Q.T, Q, alpha=-1.0)
        return W


@dataclass
class Krylov:
    """A block Lanczos run: H Q = Q T + Q_next B E_m^T with Q orthonormal (n, m), m = steps * p."""

    T: np.ndarray  # (m, m) float64
    B: np.ndarray  # (p, p) float64, the last off-diagonal block (zeros when exhausted)
    p: int
    exhausted: bool  # the Krylov space became invariant: its Ritz values are exact eigenvalues
    basis: Basis | None = None  # kept for Ritz vectors (full reorthogonalisation only)
    next: torch.Tensor | None = None  # the next block Q_next (what a thick restart continues from)
    dense: bool = False  # T is not block tridiagonal (a thick restart's arrowhead): dense eigh
    first: np.ndarray | None = None  # B_0 of start^T = Q_1^T B_0 (how the start block was orthonormalised)

    @property
    def steps(self) -> int:
        return len(self.T) // self.p

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the eigenvectors of T as columns."""
        if self.p == 1 and not self.dense:
            d = np.diag(self.T).copy()
            if len(d) == 1:
                return d, np.ones((1, 1))
            return eigh_tridiagonal(d, np.diag(self.T, -1).copy())
        return np.linalg.eigh(self.T)

    def rows(self) -> list:
        """The basis vectors, each a view (or a `spill.Row`)."""
        return [c[i] for c, u in zip(self.basis.chunks, self.basis.used) for i in range(u)]

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Ritz values ascending, residual norms r_i, gap estimates g_i)."""
        vals, vecs = self.ritz()
        resid = np.linalg.norm(self.B @ vecs[-self.p :], axis=0)
        if len(vals) == 1:
            return vals, resid, np.zeros(1)
        apart = np.abs(vals[:, None] - vals[None, :]) - resid[None, :]
        np.fill_diagonal(apart, np.inf)
        return vals, resid, apart.min(axis=1)


def ritz_in_place(rows: list, S: np.ndarray) -> list:
    """Overwrite the first S.shape[1] of `rows` (orthonormal vectors, views or spilled rows) with the
    combinations rows^T S, a slab of columns at a time: Ritz vectors formed without allocating
    another vector of n (what keeps a capped basis within its cap). Returns those rows."""
    if spill.is_spilled(rows):
        spill.combine_in_place(rows, torch.as_tensor(S.T.copy(), dtype=torch.float32))
        return rows[: S.shape[1]]
    St = torch.as_tensor(S.T.copy(), dtype=rows[0].dtype, device=rows[0].device)
    slab = max(1, SLAB_BYTES // (len(rows) * ITEMSIZE))
    for a in range(0, len(rows[0]), slab):
        out = St @ torch.stack([r[a : a + slab] for r in rows])
        for r, o in zip(rows, out):
            r[a : a + slab] = o
    return rows[: S.shape[1]]


def kato_temple(resid: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """min(r, r^2 / g) where the gap exceeds the residual, else r."""
    return np.where(gap > resid, np.minimum(resid, resid**2 / np.maximum(gap, 1e-300)), resid)


def _orthonormal(W: torch.Tensor, tiny: float, fill: Callable[[], torch.Tensor]):
    """(Q rows, B) with W^T = Q^T B for W (p, n), from the eigen-decomposition of the float64 Gram
    matrix; directions with singular value <= tiny are replaced by `fill()` vectors (orthogonal to
    everything kept) and get zero rows in B. Returns (Q, B, how many were replaced)."""
    s2, V = np.linalg.eigh((W @ W.T).double().cpu().numpy())
    sigma = np.sqrt(np.clip(s2, 0.0, None))
    keep = sigma > tiny
    B = (V * sigma).T
    B[~keep] = 0.0
    scale = torch.as_tensor(V[:, keep] / sigma[keep], dtype=W.dtype, device=W.device)
    Q = W.mul_(scale) if W.shape[0] == 1 and keep.all() else scale.T @ W  # p = 1: normalise in place
    for _ in range(int((~keep).sum())):
        z = fill()
        for _ in range(2):
            z = z - (z @ Q.T) @ Q if len(Q) else z
        Q = torch.cat([Q, (z / z.norm())[None]])
    order = np.concatenate([np.flatnonzero(keep), np.flatnonzero(~keep)])
    return Q, B[order], int((~keep).sum())


def handed(start) -> torch.Tensor:
    """The start block of a call that consumes it: a tensor, or a one-element list the caller hands it
    over in (emptied here, so that no frame above keeps a vector of n alive for the whole run)."""
    return start.pop() if isinstance(start, list) else start


def krylov(
    matvec: MatVec,
    start,
    max_rows: int,
    stop: Callable[[Krylov], bool] | None = None,
    full: bool = True,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
    locked: Basis | None = None,
    per_block: bool = False,
    scratch: spill.Scratch | None = None,
) -> Krylov:
    """Block Lanczos from the rows of `start` (p, n, or a list holding it: see `handed`; consumed:
    normalised in place, so that no copy of it is held) for at most `max_rows` basis vectors
    (rounded down to whole blocks); `stop(run)` is asked after every step (every few steps once the
    basis is large) and may end it early. `progress(products)` after each step. `locked`:
    orthonormal rows the run stays orthogonal to (the operator deflated by them: `start` must be
    orthogonal to them already). `per_block`: the basis allocated one block at a time (a capped
    run), not in chunks of up to CHUNK_BYTES. `scratch`: the basis (or, local, the previous block)
    kept in that scratch file (`spill`), only the block being multiplied and its product in RAM."""
    start = handed(start)
    p, n = start.shape
    free = n - (locked.count if locked is not None else 0)
    max_steps = max(1, min(max_rows, free) // p)
    gen = torch.Generator().manual_seed(seed + 7919)
    basis = Basis(n, p, start, local=not full, per_block=per_block, scratch=scratch)
    dtype, device = start.dtype, start.device

    def away(W: torch.Tensor) -> torch.Tensor:
        for _ in range(2):  # twice is enough
            basis.project_out(W)
            if locked is not None:
                locked.project_out(W)
        return W

    fill = lambda: away(torch.randn(1, n, generator=gen).to(device, dtype))[0]  # noqa: E731
    Q, first, _ = _orthonormal(start, 0.0, fill)
    del start
    prev, prev_B = None, None
    blocks_A: list[np.ndarray] = []
    blocks_B: list[np.ndarray] = []
    scale = 0.0
    for j in range(max_steps):
        stored = basis.append(Q)
        Q = Q if scratch is not None else stored
        W = matvec(Q)
        A = (W @ Q.T).double().cpu().numpy()
        A = (A + A.T) / 2
        blocks_A.append(A)
        W.addmm_(torch.as_tensor(A, dtype=W.dtype, device=W.device), Q, alpha=-1.0)
        if prev is not None and scratch is not None:
            spill.subtract(W, prev_B.T, prev)
        elif prev is not None:
            W.addmm_(torch.as_tensor(prev_B.T, dtype=W.dtype, device=W.device), prev, alpha=-1.0)
        W = away(W)
        scale = max(scale, float(np.abs(np.linalg.eigvalsh(A)).max()))
        # a residual below 1e-6 of the spectral scale is rounding: the Krylov space is invariant
        Qn, B, replaced = _orthonormal(W, 1e-6 * max(scale, 1e-30), fill)
        if full:  # the new block must also be orthogonal to the whole basis to working precision
            Qn2, B2, _ = _orthonormal(basis.project_out(Qn), 0.0, fill)
            Qn, B = Qn2, B2 @ B
        exhausted = replaced == p or (j + 1) * p >= free
        if progress:
            progress((j + 1) * p)
        T = _assemble(blocks_A, blocks_B + [B])
        run = Krylov(T, np.zeros((p, p)) if exhausted else B, p, exhausted, basis if full else None, first=first)
        if exhausted or j + 1 == max_steps or (stop is not None and _due(j + 1) and stop(run)):
            run.next = None if exhausted else Qn
            return run
        blocks_B.append(B)
        prev, prev_B, Q = (stored if scratch is not None else Q), B, Qn
    raise AssertionError("unreachable: the loop returns at j + 1 == max_steps")


def _due(steps: int) -> bool:
    """Ask the stopping rule every step up to 32, then every steps // 16 (cost of the small eigh)."""
    return steps <= 32 or steps % max(1, steps // 16) == 0


def _assemble(blocks_A: list[np.ndarray], blocks_B: list[np.ndarray]) -> np.ndarray:
    """The block tridiagonal T from its diagonal blocks and the len(A) - 1 first off-diagonal ones."""
    p, m = len(blocks_A[0]), len(blocks_A)
    T = np.zeros((m * p, m * p))
    for j, A in enumerate(blocks_A):
        T[j * p : (j + 1) * p, j * p : (j + 1) * p] = A
        if j + 1 < m:
            B = blocks_B[j]
            T[(j + 1) * p : (j + 2) * p, j * p : (j + 1) * p] = B
            T[j * p : (j + 1) * p, (j + 1) * p : (j + 2) * p] = B.T
    return T


@dataclass
class EndValues:
    """The k eigenvalues at one end of the spectrum from one Krylov run."""

    values: np.ndarray  # ordered from the end inwards (descending for "top", ascending for "bottom")
    bounds: np.ndarray  # error bound of each
    radius: float  # spectral radius estimate: max |Ritz value|
    converged: bool  # every value within tol * radius by its bound (or the space is exhausted)
    opposite: float = math.nan  # the Ritz value at the other end of the run (a one-sided bound there)
    resid: np.ndarray | None = None  # residual norms r_i
    gap: np.ndarray | None = None  # gap estimates g_i (distance to the nearest other eigenvalue)
    checked: bool = False  # a deflation check found nothing beyond the k-th value (locking.verified_end)

    def with_neighbour(self, value: float, resid: float, tol: float) -> EndValues:
        """The bounds once an eigenvalue is known within `resid` of `value`: it caps every gap."""
        gap = np.minimum(self.gap, np.abs(self.values - value) - resid)
        bounds = kato_temple(self.resid, gap)
        ok = bool(self.converged and np.all(bounds <= tol * self.radius))
        return EndValues(self.values, bounds, self.radius, ok, self.opposite, self.resid, gap, self.checked)


def end_values(run: Krylov, k: int, which: str, tol: float, radius: float = 0.0) -> EndValues:
    """The k values at one end of a run; `radius`: a known lower bound of the spectral radius (a run
    on a deflated H sees a smaller one than H's, which the tolerance is relative to)."""
    vals, resid, gap = run.bounds()
    sl = slice(None, None, -1) if which == "top" else slice(None)
    values, resid, gap = vals[sl][:k], resid[sl][:k], gap[sl][:k]
    bounds = kato_temple(resid, gap)
    radius = float(max(abs(vals[0]), abs(vals[-1]), radius, 1e-30))
    # a value needs a neighbour inside the run for its gap: at least k + 1 Ritz values
    enough = len(vals) >= k + 1 or run.exhausted
    converged = bool(len(values) == k and enough and np.all(bounds <= tol * radius))
    opposite = float(vals[0] if which == "top" else vals[-1])
    return EndValues(values.copy(), bounds.copy(), radius, converged, opposite, resid.copy(), gap.copy())


def until_converged(k: int, which: str, tol: float) -> Callable[[Krylov], bool]:
    return lambda run: end_values(run, k, which, tol).converged


def quadrature(run: Krylov, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature of a single-vector run (p = 1): nodes = Ritz values, weights = squared first
    components of T's eigenvectors, padded to `steps` with weight 0 when the run ended early."""
    vals, vecs = run.ritz()
    nodes, weights = np.full(steps, vals[-1]), np.zeros(steps)
    nodes[: len(vals)], weights[: len(vals)] = vals, vecs[0] ** 2
    return nodes, weights


def spectrum_moments(nodes: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """SLQ estimates of the spectrum's mean tr(H)/n, second moment tr(H^2)/n and variance, plus the
    unweighted variance of the Ritz values (see the module docstring for why both)."""
    first = float(np.mean(np.sum(weights * nodes, axis=1)))
    second = float(np.mean(np.sum(weights * nodes**2, axis=1)))
    ritz_var = float(np.mean([np.var(row[w > 0]) for row, w in zip(nodes, weights)]))
    return {"mean": first, "second_moment": second, "sigma2": second - first**2, "ritz_variance": ritz_var}


def density(nodes: np.ndarray, weights: np.ndarray, points: int = 512, bandwidth: float = 0.01):
    """(grid, density): sum_k tau_k N(t; theta_k, s^2) averaged over runs, s = bandwidth * spectrum
    width (as the ESD plots of Ghorbani et al. 2019 / PyHessian), normalised to integrate to 1.
    The grid spans the Ritz values plus 3 s on each side."""
    require(points >= 16, f"density points must be >= 16, got {points}")
    require(bandwidth > 0, f"density bandwidth must be > 0, got {bandwidth}")
    lo, hi = float(nodes.min()), float(nodes.max())
    s = bandwidth * max(hi - lo, 1e-6 * max(abs(lo), abs(hi), 1.0))
    grid = np.linspace(lo - 3 * s, hi + 3 * s, points)
    z = (grid[None, None, :] - nodes[:, :, None]) / s
    curve = np.mean(np.sum(weights[:, :, None] * np.exp(-0.5 * z**2), axis=1), axis=0) / (s * math.sqrt(2 * math.pi))
    return grid, curve / np.trapezoid(curve, grid)


def krylov_bytes(n: int, rows: int, p: int, full: bool) -> int:
    """Peak bytes `krylov` allocates for up to `rows` basis vectors besides the products' own
    temporaries: the basis in whole chunks plus three blocks of working vectors (the product W, the
    next block, a second orthonormalisation pass); local: the last two blocks plus W (a single
    vector is normalised in place; a block needs one more for its next block)."""
    if not full:
        return (3 * p + (p if p > 1 else 0)) * n * ITEMSIZE
    step = chunk_rows(n, p)
    return (math.ceil(min(rows, n) / step) * step + 3 * p) * n * ITEMSIZE


def resident_bytes(device: torch.device | str = "cpu") -> int:
    """Memory in use now where the vectors live: CUDA's allocated bytes on a GPU, else this
    process's resident set (Linux /proc; 0 where unavailable)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.memory_allocated(device)
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def peak_bytes(device: torch.device | str = "cpu") -> int:
    """The peak so far where the vectors live: CUDA's peak allocated bytes, else this process's peak
    resident set (never reset here: callers may be measuring their own window)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return peak_resident_bytes()


def peak_resident_bytes(reset: bool = False) -> int:
    """This process's peak resident set since the last reset (Linux VmHWM; `reset` starts a new
    window by writing 5 to /proc/self/clear_refs); 0 where unavailable."""
    try:
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        return 0
