"""A test session that is interrupted (SIGTERM, as a CI timeout or a closed terminal sends) still stops
the background runs its tests started (tests/processes.py, tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import processes

REPO = Path(__file__).resolve().parents[1]
HANG = 600  # seconds: a guard against a hung child, never a speed limit


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_an_interrupted_session_stops_the_runs_it_started(tmp_path, sig):
    pgid_file = tmp_path / "pgid"
    env = {**os.environ, "INTERRUPTED_CHILD_PGID": str(pgid_file), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/interrupted_child.py"]
    child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + HANG
        while not pgid_file.exists() or not pgid_file.read_text():
            assert child.poll() is None and time.monotonic() < deadline, child.stdout.read().decode()[-3000:]
            time.sleep(0.05)
        pgid = int(pgid_file.read_text())
        assert processes._alive(pgid)  # the run holds, in its own session, until someone stops it
        child.send_signal(sig)
        out = child.communicate(timeout=HANG)[0].decode()
        assert "KeyboardInterrupt" in out, out[-3000:]  # pytest was interrupted, not killed...
        assert not processes._alive(pgid), out[-3000:]  # ...and its teardown stopped the run's whole group
    finally:
        child.kill()
        if pgid_file.exists() and pgid_file.read_text():
            processes.kill_group(int(pgid_file.read_text()), grace=1.0)
