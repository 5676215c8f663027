"""bench/gpu.sh as the GPU machine runs it, at tiny sizes on a CPU (--smoke): `python3` from PATH, from
another folder, with no PYTHONPATH of ours, and without streamlit or the reference packages."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests import gpumachine

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_sh_smoke(tmp_path):
    env = gpumachine.env(tmp_path, ("streamlit", "loss_landscapes", "pyhessian", "pytorch_fid"))
    out = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "failed or passed its" not in out.stdout, out.stdout[-3000:]
    assert re.search(r"== done in \d+ s on cpu", out.stdout)
    own, _, cifar = out.stdout.partition("== cifar_train (limit 600 s")
    assert cifar, "bench/gpu.d/cifar_train.sh did not run"
    table = [line for line in own.splitlines() if line.startswith("| ")]
    checks = [line.split("|")[1].strip() for line in table[1:]]
    assert checks[:3] == ["ops per point, sequential", "ops per point, vmap", "ops per point, sequential"]
    assert checks[3:] == [
        "surface 3x3, sequential",
        "surface 3x3, vmap",
        "surface 5x5, vmap",
        "surface 3x3, sequential",
        "surface 5x5, sequential",
        "Hessian top-3",
        "train 4 steps x2",
    ]
    # no weight is cast per point, in any precision or strategy
    assert all(" 0 weight casts per point" in line for line in table[1:4])
    assert [line.split("|")[2].strip() for line in table[4:9]] == ["fp32"] * 3 + ["bf16"] * 2
    ratio = float(re.search(r"\| ([0-9.]+) ratio \|", out.stdout).group(1))
    assert 0.2 < ratio < 5.0
    # the gpu.d section (issue 24): the CIFAR-size training check, its FID pass skipped without pytorch-fid
    rows = [line.split("|")[1:-1] for line in cifar.splitlines() if line.startswith("| ")][1:]
    assert [cells[0].strip() for cells in rows] == [
        "train 4 steps, baseline",
        "train 4 steps, mdlrc-clts",
        "step-time ratio",
        "FID-6 pass (timing only)",
    ]
    assert 0.2 < float(rows[2][2]) < 5.0
    assert rows[3][2].strip() == "skipped" and "needs pytorch-fid" in rows[3][5]
