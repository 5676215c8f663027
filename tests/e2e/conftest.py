"""A live dashboard server for the browser tests: started on 127.0.0.1 at a free port against a
miniature zoo (or DSTAB_E2E_ZOO), stopped by its process group id."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.apptest import minizoo
from tests.e2e.browser import LAUNCH_ARGS

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no healthy server at {url} after {timeout} s")


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium chromium-driver; .ci/run does)")
    pytest.importorskip("playwright.sync_api")
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory, browser_context):
    """(base url, seconds from spawn to healthy); the process group is killed at the end. The browser
    is started first, as a user's is before they start the app: the cold start times the app alone."""
    root = tmp_path_factory.mktemp("e2e")
    zoo_root = os.environ.get("DSTAB_E2E_ZOO") or str(root / "zoo")
    if "DSTAB_E2E_ZOO" not in os.environ:
        minizoo.build(Path(zoo_root))
    env = {
        **os.environ,
        "DSTAB_ZOO": zoo_root,
        "DSTAB_CACHE": str(root / "cache"),
        "DSTAB_WORKSPACE": str(root / "workspace"),
        "PYTHONPATH": str(REPO),
        "DSTAB_AUTO_COMPUTE_S": os.environ.get("DSTAB_AUTO_COMPUTE_S", "600"),  # toy2d results start at once
    }
    port = free_port()
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
    log = open(root / "server.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield {"url": url, "spawned": t0, "healthy_s": time.perf_counter() - t0, "log": root / "server.log"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


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
