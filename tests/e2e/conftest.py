"""A live dashboard server for the browser tests: started on 127.0.0.1 at a free port against a
miniature zoo (or DSTAB_E2E_ZOO), stopped by its process group id, with every background run in its
workspace (ones the tests or its pages started), also when the session is interrupted (tests/processes.py).

A port found free can be taken before streamlit binds it: a server that exits saying so is started
again on another port (that race, and only it, is retried)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

from tests import processes
from tests.apptest import minizoo
from tests.e2e.browser import LAUNCH_ARGS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium chromium-driver; .ci/run does)")
    pytest.importorskip("playwright.sync_api")
    return path


@contextlib.contextmanager
def _served(root: Path, zoo_root: str):
    """A dashboard server over `zoo_root` with its own cache and workspace under `root`, stopped (with every
    run of its workspace) when the block ends: yields the info the tests get."""
    env = {
        **os.environ,
        "DSTAB_ZOO": zoo_root,
        "DSTAB_CACHE": str(root / "cache"),
        "DSTAB_WORKSPACE": str(root / "workspace"),
        "PYTHONPATH": str(REPO),
        "DSTAB_AUTO_COMPUTE_S": os.environ.get("DSTAB_AUTO_COMPUTE_S", "600"),  # toy2d results start at once
    }
    t0 = time.perf_counter()
    proc, port, log_path = processes.streamlit_server(REPO, env, root)
    url = f"http://127.0.0.1:{port}"
    workspace = root / "workspace" / "runs"
    processes.on_exit(processes.stop_runs, workspace)
    try:
        yield {
            "proc": proc,
            "url": url,
            "spawned": t0,
            "healthy_s": time.perf_counter() - t0,
            "log": log_path,
            "root": root,
            "zoo": zoo_root,
            "cache": root / "cache",
            "workspace": root / "workspace",
        }
    finally:
        processes.stop_runs(workspace)  # runs the tests or the training page started
        processes.kill_group(proc.pid)
        proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory, browser_context):
    """(base url, seconds from spawn to healthy, ...); the process group is killed at the end. The browser
    is started first, as a user's is before they start the app: the cold start times the app alone."""
    root = tmp_path_factory.mktemp("e2e")
    zoo_root = os.environ.get("DSTAB_E2E_ZOO") or str(root / "zoo")
    if "DSTAB_E2E_ZOO" not in os.environ:
        minizoo.build(Path(zoo_root))
    with _served(root, zoo_root) as info:
        yield info


@pytest.fixture(scope="session")
def real_server(tmp_path_factory, browser_context):
    """A server over the real zoo and its shipped results (the guided tour shows them), with its own cache
    and workspace; skipped where the zoo is not built."""
    from dstab import zoo

    if not (zoo.zoo_root() / zoo.MANIFEST).exists():
        pytest.skip("the real zoo is not built")
    with _served(tmp_path_factory.mktemp("e2e-real"), str(zoo.zoo_root())) as info:
        yield info


@pytest.fixture(autouse=True)
def _close_pages(request):
    """Every tab a test opened is closed when it ends. An open dashboard tab keeps its session on the
    server, whose fragments poll (the Training page's live view, a job's progress box): left open, the
    tabs of earlier tests add up to load on the one shared server that later tests wait on."""
    yield
    if "browser_context" in request.fixturenames:
        for page in request.getfixturevalue("browser_context").pages:
            with contextlib.suppress(Exception):
                page.close()


def _server_state(info: dict, tail_chars: int = 4000) -> str:
    proc = info["proc"]
    state = "running" if proc.poll() is None else f"exited with code {proc.returncode}"
    try:
        log = Path(info["log"]).read_text(errors="replace")[-tail_chars:]
    except OSError as exc:
        log = f"(its log could not be read: {exc})"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"server {info['url']} (pid {proc.pid}): {state}; load average {load}\n--- its log's tail ---\n{log}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A browser test that fails says what its server was doing: alive or not, the load, its log's tail
    (a timeout alone does not tell a wedged server from a slow one)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in ("server", "real_server"):
            info = getattr(item, "funcargs", {}).get(name)
            if isinstance(info, dict) and "proc" in info:
                report.sections.append((f"dashboard {name}", _server_state(info)))


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory, chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium_path,
            headless=True,
            args=LAUNCH_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            yield ctx
        finally:
            ctx.close()
