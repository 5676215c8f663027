"""Whole-process cost of `dstab surface` against a plain script doing the same points (issue 26 item 6).

Both run as fresh processes, interleaved (the order alternating), `--repeats` times; a row shows the
best and the median of the children's CPU seconds (user + system, from wait4: what the process cost,
whatever else runs on the machine) and wall seconds, their ratio, and the load average. `dstab surface`
runs once untimed first, so that the memory guard's per-architecture table in the user cache is filled
(`dstab/sizing.py`: one meta forward per architecture, ever), and then with `--refresh` (computing, not
reading the cached result). The plain script is bench/plain_surface.py.

    python bench/bench_process.py [--model digits/gan-s1] [--grid 9] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _repo  # noqa: F401 (puts the repository root on sys.path)

from dstab import zoo

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict, cwd: Path = ROOT) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return usage.ru_utime + usage.ru_stime, wall


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="digits/gan-s1")
    ap.add_argument("--grid", type=int, default=9)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", type=Path, help="another checkout whose `dstab surface` runs beside (e.g. main)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dstab-bench-process-"))
    env = {**os.environ, "DSTAB_CACHE": str(work / "cache"), "OMP_NUM_THREADS": "1"}
    path = str(zoo.resolve_checkpoint(args.model, "final"))
    cli = [sys.executable, "-m", "dstab", "surface", path, "--role", "g", "--grid", str(args.grid)]
    cli += ["--threads", "1", "--out", str(work / "out")]
    plain = [sys.executable, str(ROOT / "bench" / "plain_surface.py"), path, str(args.grid)]
    timed(cli, env)  # fills the guard's table and the result cache; the timed runs use --refresh
    order = [("dstab surface", cli + ["--refresh"], ROOT), ("plain script", plain, ROOT)]
    if args.before:
        timed(cli, env, args.before)
        order.append((f"dstab surface ({args.before})", cli + ["--refresh"], args.before))
    runs = {name: [] for name, _, _ in order}
    loads = []
    for r in range(args.repeats):
        for name, cmd, cwd in order if r % 2 == 0 else order[::-1]:
            runs[name].append(timed(cmd, env, cwd))
        loads.append(load())
    when = time.strftime("%Y-%m-%d %H:%M")
    print(f"{args.model} G, {args.grid}x{args.grid}, {args.repeats} interleaved rounds, {when}")
    print("| process | best CPU s | median CPU s | median wall s | load (1, 5, 15 min) |")
    print("|---|---:|---:|---:|---|")
    for name, values in runs.items():
        cpu = [c for c, _ in values]
        print(
            f"| {name} | {min(cpu):.2f} | {statistics.median(cpu):.2f} | "
            f"{statistics.median(w for _, w in values):.2f} | {loads[0]} .. {loads[-1]} |"
        )
    best = min(c for c, _ in runs["dstab surface"]) / min(c for c, _ in runs["plain script"])
    med = statistics.median(c for c, _ in runs["dstab surface"]) / statistics.median(c for c, _ in runs["plain script"])
    print(f"\ndstab surface / plain script, CPU seconds: best {best:.2f}x, median {med:.2f}x (goal <= 1.15x)")
    for name in list(runs)[2:]:
        ratio = min(c for c, _ in runs[name]) / min(c for c, _ in runs["plain script"])
        print(f"{name} / plain script, CPU seconds: best {ratio:.2f}x")


if __name__ == "__main__":
    main()
