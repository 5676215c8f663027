"""bench/gpu_bench.py's Python part on a CPU at tiny sizes (--smoke), run as gpu.sh runs it:
from another folder, with no PYTHONPATH, and without streamlit or the reference packages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_bench_smoke(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # a module that refuses to import stands in for streamlit / loss_landscapes / pyhessian
    blocker = tmp_path / "block"
    blocker.mkdir()
    for name in ("streamlit", "loss_landscapes", "pyhessian", "pytorch_fid"):
        (blocker / f"{name}.py").write_text(f"raise ImportError('{name} must not be needed')\n")
    env["PYTHONPATH"] = str(blocker)
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_bench.py"), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    table = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    checks = [line.split("|")[1].strip() for line in table[1:]]
    assert checks == ["surface 3x3", "surface 3x3", "Hessian top-3", "train 4 steps x2"]
    assert [line.split("|")[2].strip() for line in table[1:3]] == ["fp32", "bf16"]
    ratio = float(re.search(r"\| ([0-9.]+) ratio \|", out.stdout).group(1))
    assert 0.2 < ratio < 5.0
