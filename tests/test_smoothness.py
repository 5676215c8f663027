"""Smoothness numbers on surfaces and curves whose values are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dstab.analysis import smoothness as sm

x = np.linspace(-1, 1, 9)
A, B = np.meshgrid(x, x, indexing="ij")


def test_bowl_is_convex_and_smooth_with_known_rise():
    L = 1.0 + A**2 + 2 * B**2
    m = sm.surface_metrics(L)
    assert m["convex_fraction"] == 1.0
    assert m["curvature_roughness"] == pytest.approx(0.0, abs=1e-9)
    ring = np.concatenate([L[0], L[-1], L[1:-1, 0], L[1:-1, -1]])
    assert m["relative_rise"] == pytest.approx(ring.mean() - 1.0)
    # ring of the 9x9 grid over [-1, 1]^2: mean of a^2 + 2 b^2 over its 32 points, by hand
    ring_sq = (2 * 9 * 1.0 + 2 * (x[1:-1] ** 2).sum()) / 32
    assert m["relative_rise"] == pytest.approx(3 * ring_sq)


def test_saddle_and_ridge_are_not_convex():
    assert sm.convex_fraction(A**2 - B**2) == 0.0
    assert sm.convex_fraction(A * B) == 0.0  # Lxx = Lyy = 0, Lxy != 0: indefinite
    assert sm.convex_fraction(A + B) == 1.0  # a plane is (weakly) convex


def test_roughness_of_a_checkerboard_laplacian():
    # L = (-1)^(i+j) has Laplacian -8 (-1)^(i+j) at the 7 x 7 interior points, 25 of one sign and 24
    # of the other: mean 8 / 49, so std / mean|.| = sqrt(1 - 1 / 49^2)
    i, j = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    assert sm.curvature_roughness((-1.0) ** (i + j)) == pytest.approx((1 - 1 / 49**2) ** 0.5)
    assert sm.curvature_roughness(A + 3 * B) == 0.0  # no curvature at all
    assert sm.curvature_roughness(5 * ((-1.0) ** (i + j)) + 7) == pytest.approx((1 - 1 / 49**2) ** 0.5)  # scale-free


def test_curve_roughness_is_excess_variation_over_the_monotone_envelope():
    y = np.array([0.0, 2.0, 1.0, 3.0])  # TV 5, envelope (0 - 0) + (3 - 0) = 3, range 3
    m = sm.curve_metrics(y)
    assert (m["total_variation"], m["monotone_envelope"]) == (5.0, 3.0)
    assert m["roughness"] == pytest.approx(2.0 / 3.0)
    assert sm.curve_roughness(np.array([3.0, 1.0, 0.5, 2.0])) == 0.0  # a valley
    assert sm.curve_roughness(np.array([1.0, 2.0, 4.0])) == 0.0  # monotone
    assert sm.curve_roughness(np.ones(5)) == 0.0
    assert sm.curve_roughness(np.array([2.0, 0.0, 1.0, 0.0, 2.0])) == pytest.approx(1.0)  # one bump of 1 / range 2
