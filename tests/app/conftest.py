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
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield {"root": root, "manifest": manifest, **env}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def app(dash_env):
    """An AppTest of app.py with a fresh session (a new server process would start the same way)."""
    from streamlit.testing.v1 import AppTest

    def make(page: str | None = None, **query):
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
        at.query_params.update(query)
        at.run()
        if page:
            at.switch_page(page)
            at.run()
        return at

    return make
