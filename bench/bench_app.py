"""Dashboard timings: cold start to the home page rendered, and a zoo result on each page server-side.

    python bench/bench_app.py [--zoo DIR] [--data toy2d|digits] [--repeats 3] [--cold-only | --pages-only]
                              [--before REV]

1. Cold start: with Debian's Chromium already running (through Playwright;
   its own start is timed apart, as a user's browser is open before they
   start the app), `streamlit run app.py` is spawned on a free port; we time
   the server's health endpoint, then the browser opening the home page
   until it is rendered: heading, the four zoo numbers, every sample grid
   loaded. Goal: <= 3 s. Then, after 3 s on Home, a click on "Loss landscape"
   until its two contour maps are drawn (the 3-D surfaces wait for a request; from the shipped
   results on the real zoo, a miniature zoo computes them first).
2. Server-side page time: each page's result is computed once into a fresh
   cache; then, in a new Python process per page that has imported what a
   server holds once it served any analysis page, a new session's first
   script run of the page is timed with Streamlit's AppTest: sidebar,
   checkpoint loading, cache lookup, figures. Goal: <= 1 s. Import time of
   the process is reported separately.

With --before REV the server-side page times of that revision (a temporary
`git worktree`) are measured in the same run, on the same zoo, and shown
beside this checkout's with their ratio (after / before).

Without --zoo, a miniature zoo (tests/apptest/minizoo.py) is built in a temporary
folder. Prints a table; copy it into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
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

PAGES = ["home", "landscape", "interpolation", "hessian", "consistency", "diffusion_process"]

PAGE_RUN = r"""
import json, sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
AppTest.from_file(sys.argv[1], default_timeout=600).run()  # Streamlit's first run of a process (v1 pages mode)
from dashboard import server
server.preload()  # the server's warm-up after Home, done (a user spends a few seconds there)
import importlib
for name in ("dashboard.compute", "dstab.plots.surface", "dashboard.analyses", "dashboard.figures"):  # an analysis page
    try:  # served once (the modules of this checkout; --before REV times an older one)
        importlib.import_module(name)
    except ImportError:
        pass
imported = time.perf_counter() - t0
at = AppTest.from_file(sys.argv[1], default_timeout=600)
at.query_params.update(json.loads(sys.argv[3]))
if sys.argv[2] != "home":
    at.switch_page(f"pages/{sys.argv[2]}.py")
t0 = time.perf_counter()
at.run()
run = time.perf_counter() - t0
captions = " ".join(c.value for c in at.caption)
print(json.dumps({"import_s": imported, "run_s": run, "computed": "not in the cache" in captions,
                  "exception": bool(at.exception), "charts": len(at.get("plotly_chart")) + len(at.get("image"))}))
"""


def _env(zoo: Path, cache: Path, work: Path) -> dict:
    return {
        **os.environ,
        "DSTAB_ZOO": str(zoo),
        "DSTAB_CACHE": str(cache),
        "DSTAB_WORKSPACE": str(work),
        "PYTHONPATH": str(REPO),
        "DSTAB_AUTO_COMPUTE_S": "100000",
    }


def page_run(page: str, env: dict, query: dict, repo: Path = REPO) -> dict:
    env = {**env, "PYTHONPATH": str(repo)}
    out = subprocess.run(
        [sys.executable, "-c", PAGE_RUN, str(repo / "app.py"), page, json.dumps(query)],
        env=env,
        capture_output=True,
        text=True,
        cwd=repo,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


READING_S = 3.0


def _browser(p, profile: str):
    """Debian's Chromium, started and showing a blank page, as a user's browser is before they open the app."""
    ctx = p.chromium.launch_persistent_context(
        profile, executable_path=shutil.which("chromium"), headless=True, args=LAUNCH_ARGS
    )
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.goto("about:blank")
    return ctx, page


def cold_start(env: dict, query: str) -> dict:
    """Seconds from spawning `streamlit run app.py` to its health endpoint and to Home rendered in a
    browser that was already running (its own start is timed apart: it is not the app's)."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]
    url = f"http://127.0.0.1:{port}"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        t_browser = time.perf_counter()
        ctx, page = _browser(p, profile)
        browser_s = time.perf_counter() - t_browser
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            while True:
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=1):
                        break
                except OSError:
                    time.sleep(0.02)
            healthy = time.perf_counter() - t0
            page.goto(f"{url}/{query}")
            wait_home_rendered(page)
            rendered = time.perf_counter() - t0
            time.sleep(READING_S)  # a user reads Home before moving on; the server loads PyTorch meanwhile
            t1 = time.perf_counter()
            page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Loss landscape").click()
            page.locator(".js-plotly-plot .main-svg").nth(3).wait_for(timeout=120_000)  # 2 contour maps, 2 layers each
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=120_000)
            landscape = time.perf_counter() - t1
            ctx.close()
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return {
        "browser_start_s": browser_s,
        "healthy_s": healthy,
        "home_rendered_s": rendered,
        "then_landscape_s": landscape,
    }


def pages(trees: dict[str, Path], env: dict, query: dict, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Per tree and page: the server-side first-run seconds of a new session with the result in the cache
    (each page computes its result once first, into the shared cache). The trees take turns run by run,
    so a change in the machine's load falls on both alike."""
    out: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    for page in PAGES:
        for repo in trees.values():
            page_run(page, env, query, repo)  # puts the result into the cache
        for _ in range(repeats):
            for name, repo in trees.items():
                c = page_run(page, env, query, repo)
                assert not (c["computed"] or c["exception"]), f"{repo} {page}: result not found in the cache"
                out[name].setdefault(page, []).append(c["run_s"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", type=Path, default=None)
    ap.add_argument("--data", default="toy2d")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cold-only", action="store_true", help="time the cold start only, not the pages")
    ap.add_argument("--pages-only", action="store_true", help="time the pages only (no browser needed)")
    ap.add_argument("--before", default=None, metavar="REV", help="also time the pages of this git revision")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dstab-bench-app-"))
    zoo = args.zoo
    if zoo is None:
        from tests.apptest import minizoo

        zoo = tmp / "zoo"
        minizoo.build(zoo)
    env = _env(zoo, tmp / "cache", tmp / "workspace")
    query = {"data": args.data}
    starts = [] if args.pages_only else [cold_start(env, f"?data={args.data}") for _ in range(args.repeats)]
    print(f"zoo {zoo}, data {args.data}, torch threads per DSTAB_THREADS or default")
    for key in ("browser_start_s", "healthy_s", "home_rendered_s", "then_landscape_s"):
        vals = [s[key] for s in starts if s[key] is not None]
        if vals:
            runs = ", ".join(f"{v:.2f}" for v in vals)
            print(f"cold start {key}: median {statistics.median(vals):.2f} s (runs: {runs})")
    if args.cold_only:
        return
    trees = {"this checkout": REPO}
    if args.before:
        trees["before"] = tmp / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(trees["before"]), args.before],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    try:
        times = pages(trees, env, query, args.repeats)
    finally:
        if args.before:
            subprocess.run(["git", "worktree", "remove", "--force", str(trees["before"])], cwd=REPO, check=False)
    print("| page | " + " | ".join(f"{n}: first run, result in cache (s)" for n in times) + " | after / before |")
    print("|---|" + "---|" * (len(times) + 1))
    for page in PAGES:
        cells = [f"{statistics.median(t[page]):.3f} ({', '.join(f'{r:.3f}' for r in t[page])})" for t in times.values()]
        ratio = (
            f"{statistics.median(times['this checkout'][page]) / statistics.median(times['before'][page]):.2f}"
            if "before" in times
            else "-"
        )
        print(f"| {page} | {' | '.join(cells)} | {ratio} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
