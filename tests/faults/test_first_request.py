"""A fresh server whose first request is /training: that tab and every later one get app.py's page
menu and the Models sidebar, not Streamlit's old pages/ menu. Driven over the server's own websocket
protocol (the messages a browser tab sends), against a real `streamlit run app.py`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TITLES = ["Home", "Loss landscape", "Interpolation", "Hessian", "Consistency", "Diffusion process", "Training"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def visit(port: int, page: str, quiet_s: float = 20.0) -> dict:
    """Open a tab on `page`: every page menu the server sends, and whether the Models header arrived."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    seen = {"menus": [], "models": False}
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], open_timeout=60) as ws:
        request = BackMsg()
        request.rerun_script.page_name = page
        ws.send(request.SerializeToString())
        while True:
            try:
                raw = ws.recv(timeout=quiet_s)
            except TimeoutError:
                return seen
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "navigation":
                seen["menus"].append([p.page_name for p in msg.navigation.app_pages])
            elif kind == "delta" and "Models" in str(msg.delta):
                seen["models"] = True
            if seen["models"] and seen["menus"] and seen["menus"][-1] == TITLES:
                return seen


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DSTAB_WORKSPACE": str(tmp_path / "ws"),
        "DSTAB_CACHE": str(tmp_path / "cache"),
        "DSTAB_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600  # a hang guard, no speed limit
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_training_as_the_first_request_keeps_app_menus_for_every_tab(server):
    first = visit(server, "training")
    assert first["models"] and first["menus"][-1] == TITLES, first  # one rerun through app.py
    for page in ("training", ""):  # later tabs never see the old menu
        later = visit(server, page)
        assert later["models"] and later["menus"] and all(m == TITLES for m in later["menus"]), later
