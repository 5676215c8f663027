"""Krylov vectors kept in a scratch file (`dstab.analysis.spill`): the same numbers as the RAM basis,
the rows' file space reused and freed, and a scratch folder refused where spilling would save nothing."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest
import torch

from dstab.analysis import hessian, hessian_memory, lanczos, locking, spill
from tests.hessian_fixtures import QuadraticProbe
from tests.test_lanczos import SPECTRA, matrix

torch.set_num_threads(1)


@pytest.fixture
def scratch(tmp_path):
    with spill.Scratch(len(SPECTRA["dm-like"][0]), tmp_path) as s:
        yield s


def test_rows_round_trip_and_their_slots_are_reused(tmp_path):
    """A row reads back what was written, by column ranges too; a dropped row's slot is the next row's,
    so the file holds as many rows as were alive at once; the file is never visible in the folder."""
    with spill.Scratch(1000, tmp_path) as s:
        x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
        rows = [s.row(x * i) for i in range(3)]
        assert torch.equal(rows[2].load(), x * 2)
        assert torch.equal(rows[1].read(100, torch.empty(50)), x[100:150])
        rows[0].write(10, torch.zeros(5))
        assert torch.equal(rows[0].load()[8:17], torch.cat([x[8:10] * 0, torch.zeros(5), x[15:17] * 0]))
        del rows[1]
        gc.collect()
        again = s.row(-x)
        assert again.slot == 1 and s.slots == 3 and torch.equal(again.load(), -x)
        assert os.listdir(tmp_path) == []  # unlinked at creation: nothing left behind, a crash included


def test_slab_operations_match_the_dense_ones(tmp_path, monkeypatch):
    """project_out, subtract and the in-place Ritz combination over slabs (forced small: 7 columns of
    13 rows per slab, so n = 1000 takes many) equal the dense matmuls to float32 rounding."""
    monkeypatch.setattr(spill, "SLAB_BYTES", 7 * 13 * 4)
    gen = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(1000, 13, generator=gen, dtype=torch.float64))
    Q = Q.T.float().contiguous()
    W = torch.randn(2, 1000, generator=gen)
    with spill.Scratch(1000, tmp_path) as s:
        rows = [s.row(q) for q in Q]
        assert spill.slab_columns(13, 1000) == 7
        torch.testing.assert_close(spill.dots(rows, W).float(), W @ Q.T, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(spill.project_out(rows, W.clone()), W - (W @ Q.T) @ Q, rtol=1e-5, atol=1e-5)
        S = torch.randn(13, 4, generator=gen)
        out = lanczos.ritz_in_place(rows, S.double().numpy())
        assert len(out) == 4
        torch.testing.assert_close(spill.load(out), S.T @ Q, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("full", [True, False], ids=["full", "local"])
def test_a_spilled_lanczos_run_equals_the_ram_run(scratch, full):
    """The same start and operator: the projected matrices agree to float32 rounding, with the basis
    (full) or the previous vector (local) in the file."""
    eigs, _, _ = SPECTRA["dm-like"]
    A = matrix(eigs, True)
    start = torch.randn(1, len(eigs), generator=torch.Generator().manual_seed(3))
    ram = lanczos.krylov(lambda Q: Q @ A, start.clone(), 40, full=full)
    spilled = lanczos.krylov(lambda Q: Q @ A, [start.clone()], 40, full=full, scratch=scratch)
    np.testing.assert_allclose(spilled.T, ram.T, atol=2e-5 * np.abs(eigs).max())
    if full:
        assert spill.is_spilled(spilled.rows()) and len(spilled.rows()) == 40
        V = spill.load(spilled.rows())
        np.testing.assert_allclose((V @ V.T).numpy(), np.eye(40), atol=1e-5)


@pytest.mark.parametrize("name", ["dm-like", "repeated-2", "separated-cluster"])
def test_a_spilled_capped_top_k_equals_the_ram_one(scratch, name):
    """Thick restarts under a cap of 9, the check, a missed repeated value found and restarted on: the
    spilled run takes the same products and returns the same values and bounds as the RAM run, and
    the file holds no more rows than the cap plus the parked next block."""
    eigs, which, tol = SPECTRA[name]
    A = matrix(eigs, True)
    start = torch.randn(1, len(eigs), generator=torch.Generator().manual_seed(0))
    ram, used_ram = locking.verified_end(lambda Q: Q @ A, start.clone(), 3, which, tol, 600, seed=0, cap=9)
    out, used = locking.verified_end(lambda Q: Q @ A, [start], 3, which, tol, 600, seed=0, cap=9, scratch=scratch)
    assert used == used_ram and out.converged == ram.converged and out.checked == ram.checked
    np.testing.assert_allclose(out.values, ram.values, rtol=1e-5)
    np.testing.assert_allclose(out.bounds, ram.bounds, rtol=1e-3, atol=1e-6 * ram.radius)
    assert scratch.slots <= 9 + 2


def test_the_spectrum_spills_when_the_plan_caps_and_matches_in_ram(monkeypatch, tmp_path):
    """A budget that caps the top-k basis and makes SLQ local: with a scratch folder the plan spills
    (and says where), without one (on tmpfs) it keeps the vectors in RAM and says why; both give the
    same spectrum."""
    A = matrix(np.append(SPECTRA["dm-like"][0], 0.3), True)  # an even n: the probe's x is (n/2, 2)
    probe = QuadraticProbe(A)
    monkeypatch.setattr(hessian_memory, "krylov_share", lambda: 12 * 4 * len(A))  # 12 vectors a run
    kw = dict(top_k=3, trace_samples=2, slq_runs=1, slq_steps=30, tol=1e-4)
    monkeypatch.setenv(spill.SCRATCH_ENV, str(tmp_path))
    monkeypatch.setattr(spill, "filesystem", lambda path: "ext4")  # wherever the tests' tmp is
    spilled = hessian.spectrum(probe, **kw)
    monkeypatch.setattr(spill, "filesystem", lambda path: "tmpfs")
    ram = hessian.spectrum(probe, **kw)
    plan_s, plan_r = spilled.info["memory_plan"], ram.info["memory_plan"]
    assert f"the basis kept in a scratch file in {tmp_path}" in plan_s, plan_s
    assert "the basis kept in RAM" in plan_r and "is on tmpfs (RAM)" in plan_r, plan_r
    assert spilled.info["lanczos_cap"] is not None and spilled.info["slq_reorthogonalisation"] == "local"
    np.testing.assert_allclose(spilled.top_eigenvalues, ram.top_eigenvalues, rtol=1e-5)
    np.testing.assert_allclose(spilled.nodes, ram.nodes, rtol=1e-4, atol=1e-5)
    assert spilled.info["lanczos_steps"] == ram.info["lanczos_steps"]


def test_the_scratch_folder_is_refused_where_spilling_saves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv(spill.SCRATCH_ENV, str(tmp_path))
    monkeypatch.setattr(spill, "filesystem", lambda path: "ext4")  # wherever the tests' tmp is
    assert spill.usable_dir(1 << 20) == (tmp_path, "")
    st = os.statvfs(tmp_path)
    where, why = spill.usable_dir(10 * st.f_bavail * st.f_frsize)
    assert where is None and "GiB free" in why and spill.SCRATCH_ENV in why
    monkeypatch.setattr(spill, "filesystem", lambda path: "ramfs")
    where, why = spill.usable_dir(1 << 20)
    assert where is None and "on ramfs (RAM)" in why
    # the plan then keeps the basis in RAM and counts it there
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "12")
    plan = hessian_memory.plan(35_746_307, 700 << 20, top_k=3, max_steps=200, block=2, slq_steps=40)
    assert plan.scratch is None and plan.top == (plan.cap + 3) * 4 * 35_746_307 and "on ramfs" in plan.text()


def test_filesystem_reads_the_longest_mount_point(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\ntmpfs /tmpx tmpfs rw 0 0\n/dev/vdb /tmp/disk xfs rw 0 0\n"
    )
    assert spill.filesystem(tmp_path / "x", str(mounts)) in {"ext4", "tmpfs", "xfs"}
    assert spill.filesystem(spill.Path("/tmp/disk/a/b"), str(mounts)) == "xfs"
    assert spill.filesystem(spill.Path("/tmp/a"), str(mounts)) == "tmpfs"
    assert spill.filesystem(spill.Path("/tmpdir/a"), str(mounts)) == "ext4"  # /tmp is not a parent of /tmpdir
    assert spill.filesystem(spill.Path("/x"), str(tmp_path / "absent")) == ""


def test_per_block_spectra_are_bounded_like_the_whole_run(monkeypatch, tmp_path):
    """In the bounded regime each block's lambda_1 run is capped and spilled as the whole run is (a
    block of 1.2k parameters under a share of 12 vectors of the whole n), with the unbounded values."""
    from tests.test_micro_batch import mlp_probe

    probe = mlp_probe()
    kw = dict(top_k=2, trace_samples=2, slq_runs=1, slq_steps=20, tol=1e-4, per_block=True, micro_batch=0)
    free = hessian.spectrum(probe, **kw)
    n = probe.num_params
    monkeypatch.setattr(hessian_memory, "krylov_share", lambda: 12 * 4 * n)
    monkeypatch.setenv(spill.SCRATCH_ENV, str(tmp_path))
    monkeypatch.setattr(spill, "filesystem", lambda path: "ext4")  # wherever the tests' tmp is
    made = []
    original = spill.Scratch.__init__

    def counting(self, rows, directory):
        made.append(rows)
        original(self, rows, directory)

    monkeypatch.setattr(spill.Scratch, "__init__", counting)
    bounded = hessian.spectrum(probe, **kw)
    blocks = [b["n_params"] for b in bounded.info["blocks"]]
    assert set(made) >= {n} and any(m in blocks for m in made), (made, blocks)
    for a, b in zip(free.info["blocks"], bounded.info["blocks"]):
        assert b["lambda_1_converged"] and a["block"] == b["block"]
        assert b["lambda_1"] == pytest.approx(a["lambda_1"], abs=a["lambda_1_bound"] + b["lambda_1_bound"] + 1e-6)


def test_a_full_disk_is_one_clear_error(tmp_path, monkeypatch):
    """pwrite failing (ENOSPC, as on a full disk) or the folder refusing the file: a DstabError naming the
    folder and DSTAB_SCRATCH, not a traceback."""
    import errno

    from dstab.errors import DstabError

    with spill.Scratch(100, tmp_path) as s:

        def full(*args):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(spill.os, "pwrite", full)
        with pytest.raises(
            DstabError, match=rf"scratch file in {tmp_path} failed \(No space left on device\).*DSTAB_SCRATCH"
        ):
            s.row(torch.zeros(100))
    with pytest.raises(DstabError, match="scratch file in .*absent failed"):
        spill.Scratch(100, tmp_path / "absent")
