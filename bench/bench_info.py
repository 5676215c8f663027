"""`dstab info` on a zoo checkpoint, this tree against a reference commit (default: main), in one run.

The hardening checks (header validation, sizing the network on the meta device, the file-size and
zip-directory checks) must not slow a normal load: goal, new / old <= 1.05. The reference tree is
exported with `git archive` into a temporary folder (no worktree, no stash). Two measures, each
alternating old and new so that both share the machine's load:

1. the whole command, `python -m dstab info CKPT`, wall time per process (median of --runs);
2. `checkpoints.load(CKPT)` alone: the fastest of --loads calls in one process per tree (what the
   dashboard pays per checkpoint: imports are paid once per server), median over --pairs processes.

    python bench/bench_info.py [--ref main] [--runs 7] [--loads 30] [--pairs 5] [--entry digits/dm-eps-s0]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import _repo  # noqa: F401 (puts the repository root on sys.path)

from dstab import zooindex

REPO = Path(__file__).resolve().parents[1]
LOADS = r"""
import json, statistics, sys, time
from dstab import checkpoints
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    checkpoints.load(sys.argv[1])
    times.append(time.perf_counter() - start)
print(json.dumps(min(times)))
"""


def export(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def env_for(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "DSTAB_THREADS": "1"}


def info_seconds(root: Path, ckpt: Path, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dstab", "info", str(ckpt)],
        cwd=cwd,
        env=env_for(root),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


def load_seconds(root: Path, ckpt: Path, loads: int, cwd: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", LOADS, str(ckpt), str(loads)],
        cwd=cwd,
        env=env_for(root),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", default="main")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--loads", type=int, default=30)
    p.add_argument("--pairs", type=int, default=5, help="processes per tree for the load measure")
    p.add_argument("--entry", default="digits/dm-eps-s0")
    args = p.parse_args()
    ckpt = zooindex.zoo_root() / zooindex.read_manifest()["entries"][args.entry]["checkpoints"]["final"]["path"]
    with tempfile.TemporaryDirectory() as tmp:
        old, new, cwd = export(args.ref, Path(tmp) / "old"), REPO, Path(tmp)
        trees = {"old": old, "new": new}
        info = {"old": [], "new": []}
        load = {"old": [], "new": []}
        for i in range(args.runs):
            for name in ("old", "new") if i % 2 == 0 else ("new", "old"):
                info[name].append(info_seconds(trees[name], ckpt, cwd))
        for i in range(args.pairs):
            for name in ("old", "new") if i % 2 == 0 else ("new", "old"):
                load[name].append(load_seconds(trees[name], ckpt, args.loads, cwd))
    print(
        f"checkpoint {args.entry} ({ckpt.stat().st_size / 1024:.0f} KiB); reference {args.ref}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for label, series in (("dstab info (process)", info), ("checkpoints.load", load)):
        if not series["old"]:
            continue
        o, n = statistics.median(series["old"]), statistics.median(series["new"])
        print(f"{label:22s} old {o * 1000:8.1f} ms  new {n * 1000:8.1f} ms  new/old {n / o:.3f}")


if __name__ == "__main__":
    main()
