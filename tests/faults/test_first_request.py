"""A fresh server whose first request is /training: that tab and every later one get app.py's page
menu and the Models sidebar, not Streamlit's old pages/ menu. Driven over the server's own websocket
protocol (the messages a browser tab sends), against a real `streamlit run app.py`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests import processes

REPO = Path(__file__).resolve().parents[2]
# app.py's page menu, read from app.py itself (a hard-coded list went stale when the guided tour was added,
# and the test then waited out its hang guard)
TITLES = re.findall(r'st\.Page\("[^"]+", title="([^"]+)"', (REPO / "app.py").read_text())


def visit(port: int, page: str, hang_s: float = 600.0) -> dict:
    """Open a tab on `page`: every page menu the server sends, and whether the Models header arrived, until
    the tab has both app.py's menu and the header (`hang_s` of silence: a hang guard, no speed limit; it
    used to be 20 s, which a loaded machine's script run could exceed)."""
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
                raw = ws.recv(timeout=hang_s)
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
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DSTAB_WORKSPACE": str(tmp_path / "ws"),
        "DSTAB_CACHE": str(tmp_path / "cache"),
        "DSTAB_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    proc, port, _ = processes.streamlit_server(REPO, env, tmp_path)
    try:
        yield port
    finally:
        processes.kill_group(proc.pid)
        proc.wait()


def test_training_as_the_first_request_keeps_app_menus_for_every_tab(server):
    assert TITLES[0] == "Home" and "Training" in TITLES  # the menu was read from app.py
    first = visit(server, "training")
    assert first["models"] and first["menus"][-1] == TITLES, first  # one rerun through app.py
    for page in ("training", ""):  # later tabs never see the old menu
        later = visit(server, page)
        assert later["models"] and later["menus"] and all(m == TITLES for m in later["menus"]), later
