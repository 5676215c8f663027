"""A dashboard job while its page watches it: how long one analysis takes in a served app, with Streamlit's
post-run garbage collection on (its default) and off (dstab's .streamlit/config.toml).

    python bench/bench_app_jobs.py [--repeats 3] [--grid 11]

A running job's progress box is a fragment that reruns every `dashboard.compute.POLL_S` (0.25 s). After
every script run, fragments included, Streamlit calls a full `gc.collect(2)` unless `runner.postScriptGC`
is false; in a server that holds PyTorch, plotly and the loaded models that collection holds the GIL for a
long while, and the job's thread, whose many small tensor ops each give the GIL back, waits behind it.

Each repeat starts `streamlit run app.py` on a miniature zoo (tests/apptest/minizoo.py) with a fresh
cache, opens the Loss landscape page in Debian's Chromium (through Playwright) at a direction seed no
result is stored for, and reads the digits DM surface job's own time from the server's log ("finished in
X s", timed from the job's start, not its queueing) and the server's CPU seconds over the same window. The
two settings alternate in ABBA order (on, off, off, on, ...), so load drifts hit both; the load average is
printed beside the table. Prints a table; copy it into
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import processes  # noqa: E402
from tests.apptest import minizoo  # noqa: E402
from tests.e2e.browser import LAUNCH_ARGS  # noqa: E402

FINISHED = re.compile(r"dm-eps-s0 surface: finished in ([\d.]+) s")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its threads (its children are none here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(root: Path, zoo: Path, gc_on: bool, grid: int, seed: int, browser) -> dict:
    root.mkdir(parents=True)
    env = {
        **os.environ,
        "DSTAB_ZOO": str(zoo),
        "DSTAB_CACHE": str(root / "cache"),
        "DSTAB_WORKSPACE": str(root / "workspace"),
        "PYTHONPATH": str(REPO),
        "DSTAB_AUTO_COMPUTE_S": "100000",
        "STREAMLIT_RUNNER_POST_SCRIPT_GC": "true" if gc_on else "false",
    }
    proc, port, log = processes.streamlit_server(REPO, env, root)
    page = browser.new_page()
    try:
        url = f"http://127.0.0.1:{port}"
        page.goto(f"{url}/landscape?data=digits&grid=5", wait_until="domcontentloaded")  # warm: torch, the zoo
        page.wait_for_selector(".js-plotly-plot", timeout=600_000)
        page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=600_000)
        before_log, cpu0, t0 = len(log.read_text()), _cpu_s(proc.pid), time.perf_counter()
        page.goto(f"{url}/landscape?data=digits&grid={grid}&dseed={seed}", wait_until="domcontentloaded")
        while not (found := FINISHED.search(log.read_text()[before_log:])):
            if time.perf_counter() - t0 > 900:
                raise RuntimeError(f"no surface job finished in 900 s; server log {log}")
            time.sleep(0.1)
        cpu = _cpu_s(proc.pid) - cpu0
        return {"job_s": float(found.group(1)), "server_cpu_s": cpu, "wall_s": time.perf_counter() - t0}
    finally:
        page.close()
        processes.kill_group(proc.pid)
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--grid", type=int, default=11, help="the surface grid, one the page offers (5, 11, 21, ...)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-app-jobs-"))
    zoo = tmp / "zoo"
    minizoo.build(zoo)
    rows = {True: [], False: []}
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp / "profile"), executable_path=shutil.which("chromium"), headless=True, args=LAUNCH_ARGS
        )
        try:
            for r in range(args.repeats):
                for gc_on in (True, False) if r % 2 == 0 else (False, True):
                    m = one(tmp / f"r{r}-{'on' if gc_on else 'off'}", zoo, gc_on, args.grid, 100 + r, browser)
                    rows[gc_on].append(m)
                    print(f"repeat {r}, postScriptGC {'on ' if gc_on else 'off'}: {m}", file=sys.stderr)
        finally:
            browser.close()
    shutil.rmtree(tmp, ignore_errors=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\ndigits DM surface job, grid {args.grid}, in a served dashboard with its page open; load {load}")
    print("| Streamlit runner.postScriptGC | job s (median, each) | server CPU s (median) |")
    print("|---|---|---:|")
    med = {}
    for gc_on in (True, False):
        jobs = [m["job_s"] for m in rows[gc_on]]
        med[gc_on] = statistics.median(jobs)
        cpu = statistics.median(m["server_cpu_s"] for m in rows[gc_on])
        each = ", ".join(f"{j:.1f}" for j in jobs)
        print(f"| {'on (Streamlit default)' if gc_on else 'off (dstab)'} | {med[gc_on]:.1f} ({each}) | {cpu:.1f} |")
    print(f"ratio on / off (median job time): {med[True] / med[False]:.1f}x")


if __name__ == "__main__":
    main()
