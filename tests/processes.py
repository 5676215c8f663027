"""Processes a test starts (a dashboard server, background runs) are stopped when it ends, also when the
test session is interrupted.

`on_exit(fn)` registers `fn` with atexit; `interruptible()` (a session fixture in tests/conftest.py)
turns SIGTERM and SIGHUP into KeyboardInterrupt, on which pytest runs every fixture's teardown before
the interpreter exits and atexit runs what is left. `stop_runs(root)` stops every queued or running run
of a workspace, process group and all (SIGTERM, then SIGKILL after a grace period), without starting
queued ones (`runs.list_runs` would schedule them). `kill_group` ends one process group the same way.
`streamlit_server` starts `streamlit run app.py` on a free port, in its own process group, stopped at
exit; a port found free can be taken before streamlit binds it, so a server that exits saying so is
started again on another (that race, and only it, is retried).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

_handlers_installed = False


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def interruptible() -> None:
    """SIGTERM / SIGHUP -> KeyboardInterrupt in this (main) thread: pytest then tears every fixture down."""
    global _handlers_installed
    if not _handlers_installed:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)
        _handlers_installed = True


def on_exit(fn, *args) -> None:
    atexit.register(fn, *args)


_tracked: set = set()


def track_runs(root) -> None:
    """Stop the runs of workspace `root` at exit too (once per workspace), in case no teardown runs."""
    if root not in _tracked:
        _tracked.add(root)
        on_exit(stop_runs, root)


def _alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs. A zombie (exited, not yet reaped by its parent) does
    not count: kill(0) would still find it, though it runs nothing."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def kill_group(pgid: int, grace: float = 10.0) -> None:
    """SIGTERM to the group, SIGKILL to whatever of it is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGCONT)  # a group a test froze (SIGSTOP) must wake to take its SIGTERM
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def stop_runs(root, grace: float = 30.0) -> None:
    """Every active run under the workspace `root` off the queue or stopped, its process group gone."""
    from dstab import runs

    try:
        names = runs.run_names(root)
    except Exception:  # the workspace is gone already: nothing to stop
        return
    statuses = [runs.status(name, root) for name in names]
    for st in statuses:  # the queue first: a stopped run's supervisor would start the next queued one
        if st.state == "queued":
            with contextlib.suppress(Exception):
                runs.stop(st.name, root)
    for st in statuses:
        if st.pgid and _alive(st.pgid):
            kill_group(st.pgid, grace)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortTaken(RuntimeError):
    pass


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 600.0) -> None:
    """Until the server answers its health check; `timeout` guards a hang, it is no speed limit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if "already in use" in log.read_text(errors="replace"):
                raise PortTaken(url)
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no healthy server at {url} after {timeout} s")


def streamlit_server(repo: Path, env: dict, logs: Path, tries: int = 5) -> tuple[subprocess.Popen, int, Path]:
    """(process, port, its log) of a healthy `streamlit run app.py` on 127.0.0.1, killed at exit if no
    teardown kills it first (`kill_group(proc.pid)`)."""
    for attempt in range(tries):
        port, log_path = free_port(), Path(logs) / f"server-{attempt}.log"
        cmd = [sys.executable, "-m", "streamlit", "run", str(repo / "app.py"), "--server.port", str(port)]
        cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        on_exit(kill_group, proc.pid)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc, log_path)
            return proc, port, log_path
        except PortTaken:
            proc.wait()
    raise RuntimeError(f"{tries} free ports were taken before streamlit could bind them")
