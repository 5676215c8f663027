"""A disk that refuses writes (issue 27): the error names the file, no output is left truncated (each is
written under a temporary name and renamed once complete), and a finished computation is kept when the
cache cannot store it.

Two ways to refuse: ENOSPC injected into a writer (unit level), and, for whole CLI commands, the kernel's
own refusal past a file-size limit (RLIMIT_FSIZE: the write fails with EFBIG, the same OSError on write
that a full disk raises with ENOSPC), set in the child process only.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dstab
from dstab import cache, fileio

REPO = Path(__file__).resolve().parents[2]

LIMITED = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, not a kill
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from dstab.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_limited(limit: int, argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",  # a .pyc cut at the limit would be written whole-looking (short write)
        "DSTAB_PNG_RENDERER": "pil",  # the limit is the child's: a browser started under it is not the subject
        "HOME": str(tmp_path / "home"),
        "DSTAB_CACHE": str(tmp_path / "cache"),
    }
    cmd = [sys.executable, "-c", LIMITED, str(limit), *argv, "--threads", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def complete(path: Path) -> bool:
    """Whether a written file is whole (it parses as what its suffix says)."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".npz":
        with np.load(path) as z:
            [z[k] for k in z.files]
    elif path.suffix == ".png":
        Image.open(path).load()
    return True


def test_an_injected_enospc_names_the_file_and_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "out" / "grid.png"
    target.parent.mkdir()

    def half_then_full(tmp):
        Path(tmp).write_bytes(b"\x89PNG half")  # what a writer had written when the disk filled
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as refused:
        fileio.save_with(target, half_then_full)
    assert refused.value.errno == errno.ENOSPC and refused.value.filename == str(target)
    assert list(target.parent.iterdir()) == []  # neither the file nor its temporary
    from dstab.cli import os_message

    assert os_message(refused.value) == f"{target}: No space left on device; free space there or write elsewhere"
    target.write_bytes(b"old")  # a file already there stays as it was
    with pytest.raises(OSError):
        with fileio.atomic_writer(target) as f:
            f.write(b"new, half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert target.read_bytes() == b"old" and [p.name for p in target.parent.iterdir()] == ["grid.png"]


def test_a_full_cache_keeps_the_finished_computation(caches, monkeypatch):
    """The surface is computed, the cache cannot store it: it is returned, with a warning naming the cache
    path (and its meta saying so), not thrown away."""
    torch.manual_seed(0)
    model, x = torch.nn.Linear(3, 1), torch.randn(8, 3)

    def loss(m, b):
        return (m(b) ** 2).mean()

    def full(path, payload):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(cache, "atomic_write_bytes", full)
    with pytest.warns(cache.StoreWarning, match=r"could not be stored at .*cache/surface/.*No space left on device"):
        surf = dstab.surface(dstab.probe(model, loss, x), grid=3, radius=0.1)
    with torch.no_grad():
        assert surf.centre_loss == pytest.approx(float(loss(model, x)), rel=1e-6)
    assert surf.meta["cache"].startswith("the surface result was computed but could not be stored at ")
    assert not (caches / "cache" / "surface").exists()


@pytest.mark.slow
def test_cli_outputs_on_a_disk_that_fills_are_whole_or_absent(tmp_path):
    """`surface --out`: the results cache (small) is written, the outputs up to the figure's 4.6 MB
    plotly.min.js too, then the disk refuses: one error line naming plotly.min.js, every file left in --out
    parses, no temporary remains. `sample -o` past the limit: no PNG at all (was a 0-byte PNG)."""
    out = tmp_path / "out"
    argv = ["surface", "toy2d/dm-eps-s0", "--timestep", "500", "--grid", "3", "--batch-size", "4", "--out", str(out)]
    r = run_limited(1_000_000, argv, tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert err[-1] == f"error: {out / 'plotly.min.js'}: File too large; free space there or write elsewhere", err
    assert "Traceback" not in r.stderr
    left = sorted(p.name for p in out.iterdir())
    assert all(complete(out / name) for name in left) and not [n for n in left if ".tmp" in n or n.startswith(".")]
    assert any(n.endswith(".npz") for n in left) and "plotly.min.js" not in left
    assert len(list((tmp_path / "cache" / "surface").glob("*.json"))) == 1  # the computation was kept

    png = tmp_path / "grid.png"
    r = run_limited(2_000, ["sample", "digits/gan-s1", "-o", str(png), "-n", "64"], tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(f"error: {png}: File too large")
    assert not png.exists() and sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == []
    npz = tmp_path / "s.npz"
    r = run_limited(2_000, ["sample", "toy2d/gan-s1", "--npz", str(npz), "-n", "512"], tmp_path)
    assert r.returncode == 2 and f"error: {npz}: File too large" in r.stderr and not npz.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and "tmp" in p.name]
