"""scipy's ARPACK (`eigsh`, implicitly restarted Lanczos) on dstab's own Hessian-vector products: the
oracle the tests hold dstab's Lanczos to, and engine "arpack" of `dstab hessian` / `dstab.hessian`.

ARPACK works in float64 on the float32 products of `hvp.HessianOperator`; its `tol` is a relative
accuracy of the Ritz values (it stops when each residual is below tol * |value|). What it returns is
checked here, not trusted: each pair's residual ||H y - theta y|| is computed with one more product,
and the result carries these residual norms (some eigenvalue lies within each of its value). Trace and
density come from dstab's own Hutchinson and SLQ on the same operator.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from ..errors import require

FLOAT32_FLOOR = 1e-6  # below this relative accuracy the float32 products cannot support ARPACK's test


def _operator(op, counter: list[int], progress=None) -> LinearOperator:
    def matvec(x: np.ndarray) -> np.ndarray:
        counter[0] += 1
        if progress:
            progress(counter[0])
        v = torch.as_tensor(np.ascontiguousarray(x).reshape(-1), dtype=torch.float32, device=op.device)
        return op(v).double().cpu().numpy()

    return LinearOperator((op.n, op.n), matvec=matvec, dtype=np.float64)


def _residuals(op, values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    out = []
    for theta, y in zip(values, vectors.T):
        v = torch.as_tensor(y, dtype=torch.float32, device=op.device)
        out.append(float(torch.linalg.vector_norm(op(v).double() - theta * v.double())))
    return np.array(out)


def end_pairs(op, k: int, which: str, seed: int, tol: float, max_steps: int, progress=None):
    """(values from the end inwards, their residual norms, products, converged) of the k eigenvalues at
    one end ("LA" largest, "SA" smallest), ARPACK from a seeded Gaussian start."""
    require(k < op.n, f"ARPACK needs top-k < n = {op.n}, got {k}")
    counter = [0]
    v0 = torch.randn(op.n, generator=torch.Generator().manual_seed(seed)).double().numpy()
    ncv = min(op.n, max(2 * k + 1, 20))
    try:
        vals, vecs = eigsh(
            _operator(op, counter, progress),
            k=k,
            which=which,
            v0=v0,
            ncv=ncv,
            tol=max(tol, FLOAT32_FLOOR),
            maxiter=max(1, max_steps // ncv + 1),
        )
        converged = True
    except ArpackNoConvergence as exc:
        vals, vecs, converged = exc.eigenvalues, exc.eigenvectors, False
    order = np.argsort(vals)[::-1] if which == "LA" else np.argsort(vals)
    vals, vecs = vals[order], vecs[:, order]
    used = counter[0]
    resid = _residuals(op, vals, vecs)
    return vals, resid, used + len(vals), converged and len(vals) == k
