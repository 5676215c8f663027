"""Lanczos honesty: `converged=True` implies every reported value within its stated bound, on
spectra built to break a naive stopping rule (clusters, repeated values, a negative end); the
basis memory grows with the steps taken and its estimate matches a measured peak."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dstab import budgets
from dstab.analysis import hessian, lanczos, locking
from dstab.errors import DstabError
from tests.hessian_fixtures import ModuleProbe, QuadraticProbe, TinyConvNet, dense_hessian

BULK = np.random.default_rng(0).uniform(-1, 3, 120)
SPECTRA = {
    # (eigenvalues, which end, tol): pairs 1e-3 apart, a 4-cluster with gaps 1e-3, the digits DM's
    # lambda_3 / lambda_4 pair, eigenvalues repeated 2 and 3 times, and a clustered negative end
    "pair-1e-3": (np.concatenate([[5.0, 4.999, 4.5], BULK]), "top", 1e-4),
    "cluster-1e-3": (np.concatenate([5.0 - 1e-3 * np.arange(4), BULK]), "top", 1e-5),
    "dm-like": (np.concatenate([[12.0, 7.5, 4.9084, 4.870, 4.80], BULK]), "top", 1e-4),
    "repeated-2": (np.concatenate([[5.0, 5.0, 4.5, 4.5, 4.2], BULK]), "top", 1e-4),
    "repeated-3": (np.concatenate([[5.0, 5.0, 5.0, 4.5], BULK]), "top", 1e-4),
    "negative-end": (np.concatenate([[-3.0, -2.999, -2.998, 4.0], BULK]), "bottom", 1e-4),
    # a well separated lambda_1 (as the digits DM's, lambda_2 / lambda_1 = 0.12) before a cluster:
    # the check works on a deflated H whose radius is 10x smaller than H's
    "separated-cluster": (np.concatenate([[50.0, 5.0, 4.999, 4.998, 4.5], BULK]), "top", 1e-4),
}


def matrix(eigs: np.ndarray, rotate: bool) -> torch.Tensor:
    if not rotate:
        return torch.diag(torch.tensor(eigs, dtype=torch.float32))
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(len(eigs),) * 2))
    return torch.tensor((q * eigs) @ q.T, dtype=torch.float32)


@pytest.mark.parametrize("rotate", [False, True], ids=["diagonal", "rotated"])
@pytest.mark.parametrize("name", list(SPECTRA))
@pytest.mark.parametrize("block", [1, 2])
def test_converged_means_within_bound(name, rotate, block):
    eigs, which, tol = SPECTRA[name]
    A = matrix(eigs, rotate)
    true = np.sort(eigs)[::-1][:3] if which == "top" else np.sort(eigs)[:3]
    claimed = 0
    for seed in range(8):
        start = torch.randn(block, len(eigs), generator=torch.Generator().manual_seed(seed))
        ends, used = locking.verified_end(lambda Q: Q @ A, start, 3, which, tol, 600, seed=seed)
        assert used <= 600
        if ends.converged:
            claimed += 1
            err = np.abs(ends.values - true)
            # the bounds hold in exact arithmetic on the computed products; float32 products add
            # rounding of a few eps x radius (lambda_1 = 12 came out 2.03e-6 low: 1.4 eps x 12)
            rounding = 4 * np.finfo(np.float32).eps * ends.radius
            assert np.all(err <= ends.bounds + rounding), (seed, ends.values, true, ends.bounds)
            assert np.all(ends.bounds <= tol * ends.radius)
    assert claimed >= 6  # and it does converge: the check is not vacuous


def test_check_tolerance_is_relative_to_the_radius_of_H():
    """The deflation check converges its value to tol times H's spectral radius, not the deflated H's:
    with lambda_2 / lambda_1 = 0.1 the same run is converged against radius 50, not against its own 5."""
    A = matrix(np.concatenate([[5.0, 4.0, 3.5], BULK / 2]), False)
    start = torch.randn(1, len(A), generator=torch.Generator().manual_seed(0))
    run = lanczos.krylov(lambda Q: Q @ A, start, 6)
    own = lanczos.end_values(run, 1, "top", 1e-4)
    assert own.radius == pytest.approx(5.0, rel=1e-2)
    bound = float(own.bounds[0])
    assert 5e-4 < bound < 5e-3  # between tol x 5 and tol x 50: the case where the radius decides
    assert not lanczos.end_values(run, 1, "top", 1e-4).converged
    wider = lanczos.end_values(run, 1, "top", 1e-4, radius=50.0)
    assert wider.converged and wider.radius == 50.0 and wider.bounds[0] == bound


def test_naive_rule_fails_where_the_checked_one_holds():
    """Without the deflation check, one Lanczos vector finds one copy of a repeated eigenvalue and
    reports lambda_2 = 4.5 'converged' (true 5.0): the failure the check exists for."""
    eigs, _, tol = SPECTRA["repeated-2"]
    A = matrix(eigs, True)
    start = torch.randn(1, len(eigs), generator=torch.Generator().manual_seed(0))
    run = lanczos.krylov(lambda Q: Q @ A, start, 600, lanczos.until_converged(3, "top", tol))
    naive = lanczos.end_values(run, 3, "top", tol)
    assert naive.converged and naive.values[1] == pytest.approx(4.5, abs=1e-4)
    checked, _ = locking.verified_end(lambda Q: Q @ A, start, 3, "top", tol, 600)
    assert checked.converged
    np.testing.assert_allclose(checked.values, [5.0, 5.0, 4.5], atol=1e-4)


def test_unconverged_lambda_min_is_an_upper_bound():
    eigs, _, _ = SPECTRA["dm-like"]
    probe = QuadraticProbe(matrix(np.concatenate([eigs, [-2.0]]), True))
    ext = hessian.extreme_eigenvalues(hessian.HessianOperator(probe), 2, tol=1e-4)
    assert ext.converged and not ext.min_converged and ext.min_error is None
    assert ext.lambda_min >= -2.0 - 1e-5  # a Ritz value is never below lambda_min (interlacing)
    own = hessian.extreme_eigenvalues(hessian.HessianOperator(probe), 2, tol=1e-6, lambda_min=True)
    assert own.min_converged and abs(own.lambda_min + 2.0) <= own.min_error + 1e-5
    assert own.min_steps > 0


def test_small_network_against_autograd_hessian():
    torch.manual_seed(0)
    probe = ModuleProbe(TinyConvNet())
    eigs = np.linalg.eigvalsh(dense_hessian(probe))
    res = hessian.spectrum(probe, top_k=3, trace_samples=2, slq_runs=1, slq_steps=8, tol=1e-5, lambda_min=True)
    s = res.summary()
    assert s["lanczos_converged"] and s["lambda_min_converged"]
    err = np.abs(np.array(s["top_eigenvalues"]) - eigs[::-1][:3])
    assert np.all(err <= np.array(s["top_error_bounds"]) + 1e-5 * eigs[-1])
    assert abs(s["lambda_min"] - eigs[0]) <= s["lambda_min_error_bound"] + 1e-5 * eigs[-1]
    assert s["lambda_1"] == pytest.approx(eigs[-1], rel=1e-4)


def test_basis_grows_with_the_steps_taken():
    A = matrix(np.linspace(1.0, 2.0, 64), False)
    A[0, 0] = 10.0  # an isolated top eigenvalue: converges in a few steps
    run = lanczos.krylov(lambda Q: Q @ A, torch.ones(1, 64), 60, lanczos.until_converged(1, "top", 1e-4))
    allocated = sum(len(c) for c in run.basis.chunks)
    assert run.steps < 20 and allocated <= run.steps + lanczos.chunk_rows(64) - 1
    local = lanczos.krylov(lambda Q: Q @ A, torch.ones(1, 64), 40, full=False)
    assert local.basis is None and local.steps == 40
    # the local recurrence keeps accurate extreme Ritz values (ghost copies aside)
    assert local.ritz()[0][-1] == pytest.approx(10.0, rel=1e-5)


def test_memory_refusal(monkeypatch):
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "0.000001")
    with pytest.raises(DstabError, match="DSTAB_MAX_MEMORY_GB limit"):
        hessian.spectrum(QuadraticProbe(torch.eye(200)), top_k=1, trace_samples=1, slq_runs=1, slq_steps=4)
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "lots")
    with pytest.raises(DstabError, match="must be a number"):
        budgets.max_memory_bytes()
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "2.5")
    assert budgets.max_memory_bytes() == int(2.5 * budgets.GIB)


PEAK_SCRIPT = """
import json, sys, torch
sys.path.insert(0, {root!r})
from dstab.analysis import lanczos
torch.set_num_threads(1)
n, rows = 1 << 20, 48
a = torch.linspace(1.0, 2.0, n)
mv = lambda Q: Q * a
start = torch.randn(1, n, generator=torch.Generator().manual_seed(0))
mv(start); start @ start.T  # warm the allocator and BLAS before measuring
base = lanczos.resident_bytes()
lanczos.peak_resident_bytes(reset=True)
lanczos.krylov(mv, start, rows, full={full})
used = lanczos.peak_resident_bytes() - base
print(json.dumps({{"used": used, "estimate": lanczos.krylov_bytes(n, rows, 1, {full})}}))
"""


@pytest.mark.parametrize("full", [True, False])
def test_memory_estimate_matches_measured_peak(full):
    import dstab

    root = str(__import__("pathlib").Path(dstab.__file__).parents[1])
    # a fixed mmap threshold: glibc otherwise raises it after the first large free and keeps freed
    # vectors in its heap, so the resident peak would count the allocator's cache, not live tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT.format(root=root, full=full)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    m = json.loads(out.stdout)
    assert m["used"] == pytest.approx(m["estimate"], rel=0.3), m


@pytest.mark.parametrize("name", ["dm-like", "cluster-1e-3"])
def test_locking_under_a_cap_uses_fewer_products_than_restarting_every_value(name):
    """With the basis capped at 12 vectors, thick restarts that lock the leading Ritz pairs (the block
    iterating only on new directions) converge with fewer products than explicit restarts from the 3
    leading Ritz vectors (a block of 3 that iterates on converged values too), within the bounds."""
    eigs, which, tol = SPECTRA[name]
    A = matrix(eigs, True)
    true = np.sort(eigs)[::-1][:3]
    used = {}
    for lock in (True, False):
        used[lock] = []
        for seed in range(3):
            start = torch.randn(1, len(eigs), generator=torch.Generator().manual_seed(seed))
            ends, n = locking.verified_end(lambda Q: Q @ A, start, 3, which, tol, 600, seed=seed, cap=12, lock=lock)
            used[lock].append(n)
            if lock:
                assert ends.converged and ends.checked
            if ends.converged:
                rounding = 4 * np.finfo(np.float32).eps * ends.radius
                assert np.all(np.abs(ends.values - true) <= ends.bounds + rounding)
    assert sum(used[True]) < 0.7 * sum(used[False]), used


def test_the_cap_bounds_the_vectors_kept_and_the_answer_matches_uncapped():
    """A cap of 9 vectors forces thick restarts on the dm-like spectrum: no run keeps more than the cap
    (counted through the vectors krylov allocates), and the values agree with an uncapped run."""
    eigs, which, tol = SPECTRA["dm-like"]
    A = matrix(eigs, True)
    kept = []
    original = lanczos.krylov

    def counting(matvec, start, max_rows, *args, locked=None, **kw):
        run = original(matvec, start, max_rows, *args, locked=locked, **kw)
        kept.append(len(run.T) + (locked.count if locked is not None else 0))
        return run

    start = torch.randn(1, len(eigs), generator=torch.Generator().manual_seed(0))
    free, _ = locking.verified_end(lambda Q: Q @ A, start.clone(), 3, which, tol, 600, seed=0)
    locking.krylov = counting
    try:
        capped, used = locking.verified_end(lambda Q: Q @ A, start, 3, which, tol, 600, seed=0, cap=9)
    finally:
        locking.krylov = original
    assert capped.converged and len(kept) > 2 and max(kept) <= 9
    np.testing.assert_allclose(capped.values, free.values, atol=float(free.bounds.max() + capped.bounds.max()))
