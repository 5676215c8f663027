"""Fixed cost of the CLI: `python -m dstab --help` and `--version` against `python -c pass`, side by side.

    python bench/bench_cli.py [--repeats 7]

Each round runs the three commands once, interleaved, in fresh interpreters
with the environment this process has; the table gives the median wall time,
the ratio to `python -c pass` (the interpreter's own start) and the largest
peak RSS of the children. Goal: `--help` <= 1 s. The load average is printed
beside it, since these are wall times on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import _repo

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -m dstab --help": [sys.executable, "-m", "dstab", "--help"],
    "python -m dstab --version": [sys.executable, "-m", "dstab", "--version"],
}


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one run of `cmd`."""
    start = time.perf_counter()
    with subprocess.Popen(cmd, cwd=_repo.ROOT, stdout=subprocess.DEVNULL) as proc:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    walls: dict[str, list[float]] = {name: [] for name in CASES}
    rss: dict[str, float] = dict.fromkeys(CASES, 0.0)
    for cmd in CASES.values():  # one warm-up each: the page cache, not the first read from disk
        timed(cmd)
    for _ in range(args.repeats):
        for name, cmd in CASES.items():
            wall, peak = timed(cmd)
            walls[name].append(wall)
            rss[name] = max(rss[name], peak)
    base = statistics.median(walls["python -c pass"])
    print(f"{args.repeats} interleaved rounds; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| command | median wall s | x python -c pass | peak RSS MiB |\n|---|---|---|---|")
    for name in CASES:
        med = statistics.median(walls[name])
        print(f"| `{name}` | {med:.3f} | {med / base:.2f} | {rss[name]:.0f} |")


if __name__ == "__main__":
    main()
