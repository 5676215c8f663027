"""The dashboard's AppTests run against a miniature zoo in a temporary folder, with
their own analysis cache and workspace, so they never touch the real zoo or cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import minizoo

REPO = Path(__file__).resolve().parents[2]


def _env(root: Path) -> dict:
    return {
        "DSTAB_ZOO": str(root / "zoo"),
        "DSTAB_CACHE": str(root / "cache"),
        "DSTAB_WORKSPACE": str(root / "workspace"),
        "DSTAB_MAX_UPLOAD_MB": "1",
        "DSTAB_AUTO_COMPUTE_S": "600",  # tests decide when to click; estimates vary with the load
    }


@pytest.fixture(scope="session")
def mini_zoo(tmp_path_factory):
    """Built once per session; the first script run of the process is taken here too."""
    root = tmp_path_factory.mktemp("dash")
    manifest = minizoo.build(root / "zoo")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in _env(root).items():
            mp.setenv(k, v)
        _leave_pages_v1_mode()
    return root, manifest


@pytest.fixture
def dash_env(mini_zoo, monkeypatch):
    """The miniature zoo, cache and workspace in the environment for one test only, so that the rest of
    the suite still sees the real zoo."""
    root, manifest = mini_zoo
    env = _env(root)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return {"root": root, "manifest": manifest, **env}


def _leave_pages_v1_mode() -> None:
    """The first script run of a process with a `pages/` folder runs in Streamlit's old multipage
    mode, where app.py's widgets get other ids than on every later run; a real server does the same
    once, for its first visitor. Take that run here so that each test sees what users see."""
    from streamlit.testing.v1 import AppTest

    AppTest.from_file(str(REPO / "app.py"), default_timeout=600).run()


def settled(run):
    """AppTest's script run as a browser sees it: a computation runs in the background while the page's
    script ends, and the page runs again when it ends (its live box's fragment reruns the app); here a
    run that started jobs waits for the job runner to fall idle and runs again (with the widgets as
    they are now: a clicked button is not clicked twice), until a run starts none."""
    from dashboard import compute

    def run_until_settled(self, widget_state=None, timeout=None):
        jobs = compute.runner()
        for _ in range(20):  # each rerun may start the next job (the GAN queued behind the DM)
            started = jobs.submitted
            out = run(self, widget_state, timeout)
            if jobs.submitted == started and not jobs.busy():
                return out
            assert jobs.wait_idle(600), "a background job did not end within 600 s"
            widget_state = self._tree.get_widget_states()
        return out

    return run_until_settled


@pytest.fixture
def app(dash_env, monkeypatch):
    """An AppTest of app.py with a fresh session (a new server process would start the same way); its
    runs wait for the computations they start (`settled`)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(AppTest, "_run", settled(AppTest._run))

    def make(page: str | None = None, **query):
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
        at.query_params.update(query)
        if page:  # open the page directly, as a link would: a page switch in AppTest drops the URL's parameters
            at.switch_page(page)
        return at.run()

    return make
