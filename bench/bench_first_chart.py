"""Click to first chart in Chromium: the Loss landscape page against the Interpolation page, same load.

    python bench/bench_first_chart.py [--zoo checkpoints] [--data digits] [--repeats 5] [--before REV]

A dashboard server is started on a free port (127.0.0.1) over the zoo and its shipped results (a fresh
user cache and workspace), and Debian's Chromium (Playwright) opens Home at 1280 x 720. Then, round by
round, each page is opened by a click in the sidebar's page menu and timed until its first plotly chart
is drawn (an SVG of plotly.js in the page) and until the page is idle with all its charts, and Home is
opened again in between (it draws no plotly chart, so the first chart seen is the page's). The two pages
take turns inside each round, so a change of the machine's load falls on both alike; the load average
is printed beside every round. The goal (issue 25): Landscape within 1.5x Interpolation.

With --before REV the same is measured, in the same run, for that revision (a temporary `git worktree`
served by a second server, the two servers taking turns round by round). Ratios only, side by side;
never a timed assertion. Copy the printed table into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _repo  # puts the repository root on sys.path

from tests.e2e.browser import LAUNCH_ARGS, wait_home_rendered

REPO = _repo.ROOT
PAGES = ("Loss landscape", "Interpolation")
FIRST_CHART = ".js-plotly-plot .main-svg"
IDLE = '[data-testid="stStatusWidget"]'
TIMEOUT_MS = 600_000


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(repo: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(repo / "app.py"), "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    proc = subprocess.Popen(
        cmd,
        env={**env, "PYTHONPATH": str(repo)},
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1):
                return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"no dashboard server at {url}") from None
            time.sleep(0.1)


def _menu(page, name: str):
    return page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name, exact=True)


def _idle(page) -> None:
    time.sleep(0.3)  # the status widget appears a moment after a click
    page.wait_for_selector(IDLE, state="detached", timeout=TIMEOUT_MS)


def open_page(page, name: str) -> tuple[float, float]:
    """(seconds from the click to the first chart, to the page idle with all its charts)."""
    _menu(page, "Home").click()
    page.get_by_role("heading", name="dstab: why diffusion models train more stably than GANs").wait_for()
    _idle(page)
    t0 = time.perf_counter()
    _menu(page, name).click()
    page.wait_for_selector(FIRST_CHART, timeout=TIMEOUT_MS)
    first = time.perf_counter() - t0
    _idle(page)
    return first, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", type=Path, default=REPO / "checkpoints")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", default=None, help="a git revision to time in the same run")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {"this checkout": REPO}
        if args.before:
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tmp / "before"), args.before], cwd=REPO, check=True
            )
            trees[f"before ({args.before})"] = tmp / "before"
        servers = {}
        try:
            for i, (name, repo) in enumerate(trees.items()):
                env = {
                    **os.environ,
                    "DSTAB_ZOO": str(args.zoo.resolve()),
                    "DSTAB_CACHE": str(tmp / f"cache{i}"),
                    "DSTAB_WORKSPACE": str(tmp / f"work{i}"),
                }
                servers[name] = serve(repo, env)
            times: dict[str, dict[str, list]] = {n: {p: [] for p in PAGES} for n in trees}
            loads = []
            with sync_playwright() as p:
                ctx = p.chromium.launch_persistent_context(
                    str(tmp / "profile"),
                    executable_path=shutil.which("chromium"),
                    headless=True,
                    args=LAUNCH_ARGS,
                    viewport={"width": 1280, "height": 720},
                )
                tabs = {}
                for name, (_, url) in servers.items():
                    tabs[name] = ctx.new_page()
                    tabs[name].goto(f"{url}/?data={args.data}", wait_until="domcontentloaded")
                    wait_home_rendered(tabs[name], TIMEOUT_MS)
                    for page_name in PAGES:  # a first visit each: imports, plotly.js parsed once per tab
                        open_page(tabs[name], page_name)
                for r in range(args.repeats):
                    order = PAGES if r % 2 == 0 else PAGES[::-1]
                    for name, tab in tabs.items():
                        for page_name in order:
                            times[name][page_name].append(open_page(tab, page_name))
                    loads.append(os.getloadavg()[0])
                    print(f"round {r + 1}: load {loads[-1]:.1f}", flush=True)
                ctx.close()
        finally:
            for proc, _ in servers.values():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if args.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "before")], cwd=REPO, check=False)
    span = f"{min(loads):.1f}-{max(loads):.1f}"
    print(f"\n{args.zoo.name} zoo, data {args.data}, {args.repeats} rounds, load average {span}")
    print("| tree | page | click to first chart (median, s) | click to all charts (median, s) |")
    print("|---|---|---|---|")
    for name in trees:
        for page_name in PAGES:
            first = statistics.median(t[0] for t in times[name][page_name])
            every = statistics.median(t[1] for t in times[name][page_name])
            print(f"| {name} | {page_name} | {first:.2f} | {every:.2f} |")
        ratios = [a[0] / b[0] for a, b in zip(*(times[name][p] for p in PAGES))]
        print(
            f"| {name} | Landscape / Interpolation, first chart, per round | "
            f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}) | |"
        )


if __name__ == "__main__":
    main()
