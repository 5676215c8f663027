"""Dashboard timings: cold start to the home page rendered, and a zoo result on each page server-side.

    python bench/bench_app.py [--zoo DIR] [--data toy2d|digits] [--repeats 3]

1. Cold start: `streamlit run app.py` is spawned on a free port; we time the
   server's health endpoint, then Debian's Chromium (through Playwright)
   opening the home page until its heading is rendered. Goal: <= 3 s.
2. Server-side page time: each page's result is computed once into a fresh
   cache; then, in a new Python process per page (as a freshly started
   server would meet it), the page's first script run is timed with
   Streamlit's AppTest: sidebar, checkpoint loading, cache lookup, figures.
   Goal: <= 1 s. Import time of the process is reported separately.

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

REPO = Path(__file__).resolve().parents[1]
PAGES = ["home", "landscape", "interpolation", "hessian", "consistency", "diffusion_process"]

PAGE_RUN = r"""
import json, sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
imported = time.perf_counter() - t0
AppTest.from_file(sys.argv[1], default_timeout=600).run()  # Streamlit's first run of a process (v1 pages mode)
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
    return {**os.environ, "DSTAB_ZOO": str(zoo), "DSTAB_CACHE": str(cache), "DSTAB_WORKSPACE": str(work),
            "PYTHONPATH": str(REPO), "DSTAB_AUTO_COMPUTE_S": "100000"}  # fmt: skip


def page_run(page: str, env: dict, query: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", PAGE_RUN, str(REPO / "app.py"), page, json.dumps(query)],
                         env=env, capture_output=True, text=True, cwd=REPO, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cold_start(env: dict, query: str) -> dict:
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        healthy = time.perf_counter() - t0
        rendered = None
        chromium = shutil.which("chromium")
        if chromium:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
                ctx = p.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True,
                                                           args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
                page = ctx.new_page()
                page.goto(f"{url}/{query}")
                page.get_by_role("heading", name="dstab: why diffusion models train more stably than GANs").wait_for(
                    timeout=120_000
                )
                rendered = time.perf_counter() - t0
                ctx.close()
        return {"healthy_s": healthy, "home_rendered_s": rendered}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", type=Path, default=None)
    ap.add_argument("--data", default="toy2d")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dstab-bench-app-"))
    zoo = args.zoo
    if zoo is None:
        sys.path.insert(0, str(REPO))
        from tests.apptest import minizoo

        zoo = tmp / "zoo"
        minizoo.build(zoo)
    env = _env(zoo, tmp / "cache", tmp / "workspace")
    query = {"data": args.data}
    starts = [cold_start(env, f"?data={args.data}") for _ in range(args.repeats)]
    print(f"zoo {zoo}, data {args.data}, torch threads per DSTAB_THREADS or default")
    for key in ("healthy_s", "home_rendered_s"):
        vals = [s[key] for s in starts if s[key] is not None]
        if vals:
            runs = ", ".join(f"{v:.2f}" for v in vals)
            print(f"cold start {key}: median {statistics.median(vals):.2f} s (runs: {runs})")
    print("| page | first run, result in cache (s) | runs | computing run (s) | charts/images | import (s) |")
    print("|---|---|---|---|---|---|")
    for page in PAGES:
        computing = page_run(page, env, query)  # puts the result into the cache
        cached = [page_run(page, env, query) for _ in range(args.repeats)]
        assert not any(c["computed"] or c["exception"] for c in cached), f"{page}: result not found in the cache"
        runs = [c["run_s"] for c in cached]
        listed = ", ".join(f"{r:.3f}" for r in runs)
        imports = statistics.median(c["import_s"] for c in cached)
        print(f"| {page} | {statistics.median(runs):.3f} | {listed} | {computing['run_s']:.2f} | "
              f"{cached[0]['charts']} | {imports:.2f} |")  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
