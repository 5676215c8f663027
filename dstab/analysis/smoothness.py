"""Smoothness numbers of loss surfaces and interpolation curves, each scale-free.

Surface L[i, j] on a regular grid (i along the first direction, j along the
second) with spacing h, centre L0:
- relative rise at radius r: (mean of L over the outer ring of the grid,
  where max(|a|, |b|) = r) minus L0, divided by |L0|. How much the loss grows
  a distance r away; large means a narrow basin.
- curvature roughness: the 5-point discrete Laplacian at every interior
  point, std / mean of its absolute value. Any quadratic surface has a
  constant Laplacian and scores 0; bumps and ripples raise it. It does not
  change when L is scaled or shifted. 0 when the Laplacian vanishes.
- convex fraction: share of interior points where the discrete Hessian
  (central second differences Lxx, Lyy and the cross difference Lxy) is
  positive semidefinite: Lxx >= 0, Lyy >= 0, Lxx Lyy - Lxy^2 >= 0.

Curve L(alpha_0 .. alpha_n), alphas increasing:
- total variation TV = sum |L_{k+1} - L_k|.
- monotone envelope: the least TV any curve with the same two ends and the
  same minimum can have, one that falls monotonically to its minimum and then
  rises monotonically: (L_0 - min L) + (L_n - min L).
- roughness = (TV - envelope) / (max L - min L): 0 exactly for a unimodal
  (valley-shaped or monotone) curve; each extra bump of height b adds
  2b / range. 0 for a constant curve.
"""

from __future__ import annotations

import numpy as np

CONVEX_TOL = 1e-12  # rounding slack, relative to the largest second difference


def _second_differences(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lxx, Lyy, Lxy times h^2 at the interior points."""
    lxx = L[2:, 1:-1] - 2 * L[1:-1, 1:-1] + L[:-2, 1:-1]
    lyy = L[1:-1, 2:] - 2 * L[1:-1, 1:-1] + L[1:-1, :-2]
    lxy = (L[2:, 2:] - L[2:, :-2] - L[:-2, 2:] + L[:-2, :-2]) / 4.0
    return lxx, lyy, lxy


def rise_over_centre(loss: np.ndarray) -> np.ndarray:
    """(L - L0) / |L0| at every grid point, L0 the centre: surfaces of different models on one scale."""
    centre = loss[loss.shape[0] // 2, loss.shape[1] // 2]
    return (loss - centre) / abs(centre) if centre != 0 else loss - centre


def relative_rise(L: np.ndarray) -> float:
    centre = L[L.shape[0] // 2, L.shape[1] // 2]
    ring = np.concatenate([L[0, :], L[-1, :], L[1:-1, 0], L[1:-1, -1]])
    return float((ring.mean() - centre) / abs(centre)) if centre != 0 else float("inf")


def curvature_roughness(L: np.ndarray) -> float:
    lxx, lyy, _ = _second_differences(L.astype(np.float64))
    lap = lxx + lyy
    scale = np.abs(lap).mean()
    return float(lap.std() / scale) if scale > 0 else 0.0


def convex_fraction(L: np.ndarray) -> float:
    lxx, lyy, lxy = _second_differences(L.astype(np.float64))
    tol = CONVEX_TOL * max(np.abs(lxx).max(), np.abs(lyy).max(), 1e-300)
    psd = (lxx >= -tol) & (lyy >= -tol) & (lxx * lyy - lxy**2 >= -tol * tol)
    return float(psd.mean())


def surface_metrics(L: np.ndarray) -> dict:
    return {
        "relative_rise": relative_rise(L),
        "curvature_roughness": curvature_roughness(L),
        "convex_fraction": convex_fraction(L),
    }


def total_variation(y: np.ndarray) -> float:
    return float(np.abs(np.diff(np.asarray(y, dtype=np.float64))).sum())


def monotone_envelope_variation(y: np.ndarray) -> float:
    y = np.asarray(y, dtype=np.float64)
    return float((y[0] - y.min()) + (y[-1] - y.min()))


def curve_roughness(y: np.ndarray) -> float:
    y = np.asarray(y, dtype=np.float64)
    span = y.max() - y.min()
    return float((total_variation(y) - monotone_envelope_variation(y)) / span) if span > 0 else 0.0


def curve_metrics(y: np.ndarray) -> dict:
    return {
        "total_variation": total_variation(y),
        "monotone_envelope": monotone_envelope_variation(y),
        "roughness": curve_roughness(y),
    }
