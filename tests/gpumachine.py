"""The environment bench/gpu.sh meets on the GPU machine, reproduced on a CPU for its smoke tests:
`python3` on PATH is this interpreter (that machine has no `python`), one thread, no PYTHONPATH of
ours, no FID weights, a cache of the test's own, and modules that machine lacks replaced by ones that
refuse to import."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def env(tmp_path: Path, missing: tuple[str, ...]) -> dict:
    """The environment for a smoke run under `tmp_path`, where importing any of `missing` fails."""
    out = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DSTAB_CACHE", "DSTAB_FID_WEIGHTS")}
    out.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}:{out['PATH']}")
    out["DSTAB_CACHE"] = str(tmp_path / "cache")
    blocker = tmp_path / "block"
    blocker.mkdir()
    for name in missing:
        (blocker / f"{name}.py").write_text(f"raise ImportError('{name} must not be needed')\n")
    out["PYTHONPATH"] = str(blocker)
    return out
