"""bench/gpu_train.py (the CIFAR-size training check of bench/gpu.sh) on a CPU at tiny sizes (--smoke),
run as gpu.sh runs it: from another folder, with no PYTHONPATH, without streamlit."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import gpumachine

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_train_smoke(tmp_path):
    env = gpumachine.env(tmp_path, ("streamlit",))
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_train.py"), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    table = [line.split("|")[1:-1] for line in out.stdout.splitlines() if line.startswith("| ")][1:]
    checks = [cells[0].strip() for cells in table]
    assert checks == [
        "train 4 steps, baseline",
        "train 4 steps, mdlrc-clts",
        "step-time ratio",
        "FID-6 pass (timing only)",
    ]
    for cells in table[:2]:
        ms = float(cells[2].split()[0])
        images = float(cells[3].split()[0].replace(",", ""))
        # batch 2 per step: images/s is 2 / (the median step), printed to a whole image, and the median
        # printed to 0.1 ms (43.0 ms and 46 images/s are one median of 43.01 ms, CI: 2 / 0.043 = 46.51)
        assert 2 / ((ms + 0.05) / 1e3) - 0.5 <= images <= 2 / ((ms - 0.05) / 1e3) + 0.5, (ms, images)
        assert float(cells[4]) > 0
    assert 0.2 < float(table[2][2]) < 5.0
    assert "RANDOM Inception weights" in table[3][5] and float(table[3][2].split()[0]) > 0


def test_the_fid_pass_is_skipped_where_pytorch_fid_is_missing(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "bench" / "gpu_train.py")
    gpu_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_train)
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)
    row = gpu_train.fid_row(trainer=None, samples=1000, sampler_steps=100)
    assert row[:3] == ["FID-1,000 pass (timing only)", "", "skipped"]
    assert re.match(r"needs pytorch-fid and torchvision: ", row[5])
