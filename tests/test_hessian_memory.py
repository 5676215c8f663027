"""Bounded memory by default: the plan's choices at CIFAR scale, its estimate against a measured peak, the
local SLQ recurrence's accuracy (what hessian_memory documents), refusal only when the bounded plan does
not fit."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dstab import budgets
from dstab.analysis import hessian, hessian_memory, lanczos, spill
from dstab.errors import DstabError
from tests.hessian_fixtures import QuadraticProbe

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
CIFAR_N = 35_746_307  # the DDPM CIFAR-10 UNet (bench/gpu_bench.py DDPM_CIFAR)


def test_the_plan_at_cifar_scale_is_bounded(monkeypatch):
    """On a 24 GB machine (DSTAB_MAX_MEMORY_GB 12) the report's settings at 35.7M parameters: the local
    SLQ recurrence (a full 40-step basis would be 5.3 GiB), a capped top-k basis with one start vector,
    and a plan of a few model copies instead of the 28 GiB that was refused."""
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "12")
    monkeypatch.setattr(spill, "filesystem", lambda path: "ext4")  # the tests' user cache, tmpfs or not
    vec = 4 * CIFAR_N
    plan = hessian_memory.plan(CIFAR_N, 700 << 20, top_k=3, max_steps=200, block=2, slq_steps=40)
    assert not plan.slq_full and plan.block == 1 and plan.cap == (12 << 30) // 8 // vec - 3
    # the vectors kept in a scratch file (the tests' user cache is on disk): RAM holds the product's
    # input and output and two slabs, the file the capped basis and the working vectors
    slabs = 2 * spill.SLAB_BYTES
    assert plan.scratch == spill.scratch_dir() and plan.disk == (plan.cap + 3) * vec
    assert plan.top == plan.slq == 2 * vec + slabs
    assert plan.total < 1 << 30  # against 28.2 GiB for the old plan (every Lanczos vector kept)
    assert "capped at" in plan.text() and "local reorthogonalisation" in plan.text()
    assert f"the basis kept in a scratch file in {plan.scratch}" in plan.text()
    assert plan.derived() == {"slq_reorthogonalisation": "local", "lanczos_cap": plan.cap, "lanczos_block": 1}
    # a small model keeps its full basis and its block: the shipped results' settings
    small = hessian_memory.plan(425_905, 50 << 20, top_k=3, max_steps=200, block=2, slq_steps=40)
    assert small.slq_full and small.cap is None and small.block == 2


def test_refused_with_the_plan_when_even_the_bounded_plan_does_not_fit(monkeypatch):
    monkeypatch.setenv("DSTAB_MAX_MEMORY_GB", "0.000001")
    with pytest.raises(DstabError, match=r"the Hessian of quadratic \(memory: .* capped at .*DSTAB_MAX_MEMORY_GB"):
        hessian.spectrum(QuadraticProbe(torch.eye(400)), top_k=2, trace_samples=2, slq_runs=1, slq_steps=30)


def test_slq_local_recurrence_accuracy():
    """The local recurrence (a window of 2) against full reorthogonalisation on a spectrum with outliers
    and a bulk, 60 steps: the moments the report uses agree to 1e-5 relative, and the densities'
    L1 distance is small; ghost copies of converged outliers split their weight, not add to it."""
    rng = np.random.default_rng(0)
    eigs = np.concatenate([[40.0, 25.0, 12.0], rng.normal(0.0, 1.0, 1997)])
    q, _ = np.linalg.qr(rng.normal(size=(2000, 2000)))
    probe = QuadraticProbe(torch.tensor((q * eigs) @ q.T, dtype=torch.float32))
    op = hessian.HessianOperator(probe)
    full = hessian.slq(op, 2, 60, seed=2, full=True)
    local = hessian.slq(op, 2, 60, seed=2, full=False)
    mf, ml = lanczos.spectrum_moments(*full), lanczos.spectrum_moments(*local)
    assert ml["mean"] == pytest.approx(mf["mean"], rel=1e-5, abs=1e-7)
    assert ml["second_moment"] == pytest.approx(mf["second_moment"], rel=1e-5)
    grid, curve_full = lanczos.density(*full)
    z = (grid[None, None, :] - local[0][:, :, None]) / (0.01 * (full[0].max() - full[0].min()))
    curve_local = np.mean(np.sum(local[1][:, :, None] * np.exp(-0.5 * z**2), axis=1), axis=0)
    curve_local /= np.trapezoid(curve_local, grid)
    assert np.trapezoid(np.abs(curve_full - curve_local), grid) < 0.1
    # the outliers carry the same total weight in both
    for outlier in (40.0, 25.0):
        near = lambda nodes, w: float(np.sum(w[np.abs(nodes - outlier) < 0.5]))  # noqa: E731
        assert near(*local) == pytest.approx(near(*full), abs=1e-6)


PEAK_SCRIPT = """
import json, sys, torch
sys.path.insert(0, {root!r})
from torch import nn
from dstab.analysis import hessian, lanczos
from dstab.probes import module_probe
torch.set_num_threads(1)
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(256, 1024), nn.Tanh(), nn.Linear(1024, 768), nn.Tanh(), nn.Linear(768, 8))
gen = torch.Generator().manual_seed(1)
data = {{"x": torch.randn(64, 256, generator=gen), "y": torch.randn(64, 8, generator=gen)}}
probe = module_probe(net, lambda f, x, y: ((f(x) - y) ** 2).mean(), name="mlp", data=data)
del net
base = lanczos.resident_bytes()
lanczos.peak_resident_bytes(reset=True)
res = hessian.spectrum(probe, top_k=3, trace_samples=4, slq_runs=1, slq_steps=24, max_steps={steps}, tol={tol})
used = lanczos.peak_resident_bytes() - base
s = res.summary()
print(json.dumps({{"used": used, "plan": s["memory_estimate_bytes"], "cap": s["lanczos_cap"],
                  "slq": s["slq_reorthogonalisation"], "converged": s["lanczos_converged"], "n": s["n_params"],
                  "spilled": "scratch file" in s["memory_plan"]}}))
"""


PEAKS = {}


def disk_folder(tmp_path: Path) -> Path:
    """A folder on a disk for a scratch file: the test's tmp, else (tmp on tmpfs) one in the checkout."""
    if spill.filesystem(tmp_path) not in spill.RAM_FS:
        return tmp_path
    if spill.filesystem(ROOT) in spill.RAM_FS:
        pytest.skip("no disk-backed folder for a scratch file (tmp and the checkout are on tmpfs)")
    folder = Path(tempfile.mkdtemp(dir=ROOT, prefix=".scratch-test-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@pytest.mark.parametrize(
    ("budget_gb", "tol", "steps", "scratch"),
    # uncapped: a tolerance it cannot reach, so that it takes all 60 products the plan allows for;
    # capped: 7 vectors kept, as many thick restarts as it needs, then the check; in a scratch file
    # (the default) or, the scratch folder being on tmpfs, in RAM
    [(None, 1e-12, 60, None), ("0.12", 1e-3, 200, "/dev/shm"), ("0.12", 1e-3, 200, "disk")],
    ids=["uncapped", "capped-ram", "capped-spilled"],
)
def test_peak_memory_matches_the_printed_plan(budget_gb, tol, steps, scratch, tmp_path):
    """A 1.05M-parameter network (4 MiB a vector): the measured peak of a whole spectrum is the plan's
    estimate within 30%, with the full basis and with a budget that caps it (and makes SLQ local),
    the capped basis kept in RAM or spilled; spilling it lowers the peak by at least 5 vectors."""
    if scratch == "/dev/shm" and spill.filesystem(Path("/dev/shm")) != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm to keep the basis in RAM with")
    env = {k: v for k, v in os.environ.items() if k not in ("DSTAB_MAX_MEMORY_GB", spill.SCRATCH_ENV)}
    if scratch:
        env[spill.SCRATCH_ENV] = str(disk_folder(tmp_path)) if scratch == "disk" else scratch
    # a fixed mmap threshold: glibc otherwise raises it after the first large free and keeps freed vectors
    # in its heap, so the resident peak would count the allocator's cache, not what the engine holds
    env.update(OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="131072")
    if budget_gb:
        env["DSTAB_MAX_MEMORY_GB"] = budget_gb
    script = PEAK_SCRIPT.format(root=str(ROOT), tol=tol, steps=steps)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["converged"] == (budget_gb is not None), m
    assert (m["cap"] is None) == (budget_gb is None) and (m["slq"] == "local") == (budget_gb is not None)
    assert m["used"] == pytest.approx(m["plan"], rel=0.3), m
    if budget_gb:  # the bounded plan fits the child's budget, which is why it was not refused
        assert m["plan"] <= float(budget_gb) * budgets.GIB
        assert m["spilled"] == (scratch == "disk"), m
    PEAKS[scratch] = m["used"]
    if "disk" in PEAKS and "/dev/shm" in PEAKS:
        assert PEAKS["disk"] < PEAKS["/dev/shm"] - 5 * 4 * m["n"], PEAKS
