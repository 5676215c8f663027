"""The dashboard's AppTests run against a miniature zoo in a temporary folder, with
their own analysis cache and workspace, so they never touch the real zoo or cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import minizoo  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dash_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash")
    manifest = minizoo.build(root / "zoo")
    env = {
        "DSTAB_ZOO": str(root / "zoo"),
        "DSTAB_CACHE": str(root / "cache"),
        "DSTAB_WORKSPACE": str(root / "workspace"),
        "DSTAB_MAX_UPLOAD_MB": "1",
        "DSTAB_AUTO_COMPUTE_S": "600",  # tests decide when to click; estimates vary with the load
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _leave_pages_v1_mode()
    yield {"root": root, "manifest": manifest, **env}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _leave_pages_v1_mode() -> None:
    """The first script run of a process with a `pages/` folder runs in Streamlit's old multipage
    mode, where app.py's widgets get other ids than on every later run; a real server does the same
    once, for its first visitor. Take that run here so that each test sees what users see."""
    from streamlit.testing.v1 import AppTest

    AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()


@pytest.fixture
def app(dash_env):
    """An AppTest of app.py with a fresh session (a new server process would start the same way)."""
    from streamlit.testing.v1 import AppTest

    def make(page: str | None = None, **query):
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        at.query_params.update(query)
        if page:  # open the page directly, as a link would: a page switch in AppTest drops the URL's parameters
            at.switch_page(page)
        return at.run()

    return make
