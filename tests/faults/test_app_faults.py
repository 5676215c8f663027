"""Crafted files and links through the dashboard (AppTest): each refused with one line in place, no
traceback, the sidebar (Models) and the page still drawn; a failed upload leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dashboard import userfiles
from dstab import checkpoints

from . import crafted as c

PAGE = "pages/diffusion_process.py"
REPO = Path(__file__).resolve().parents[2]


def still_usable(at, title: str = "Diffusion process") -> None:
    assert not at.exception, at.exception
    assert "Models" in [h.value for h in at.sidebar.header]  # the shared sidebar was drawn
    assert title in [t.value for t in at.title]  # and the page itself
    for e in at.error:
        assert "\n" not in e.value and "Traceback" not in e.value, e.value


FILES = [
    ("header-list", lambda d: c.native(d / "list.safetensors", raw_header="[]"), "JSON list"),
    ("zip-bomb", lambda d: c.zip_bomb(d / "bomb.pt", 64), "inflate"),
    ("code-pickle", lambda d: c.code_pickle(d / "evil.pt"), "could run code"),
    ("random-bytes", lambda d: c.raw_safetensors(d / "rand.safetensors", {"a": 1}), "safetensors"),
    (
        "huge-arch",
        lambda d: c.native(d / "wide.safetensors", c.with_header(arch={**c.ARCH, "hidden": 100_000})),
        "DSTAB_MAX_PARAMS",
    ),
    (
        "T-1e11",
        lambda d: c.native(d / "T.safetensors", c.with_header(diffusion={**c.DIFFUSION, "T": 10**11})),
        "DSTAB_MAX_TIMESTEPS",
    ),
    ("gan-no-generator", lambda d: c.native(d / "g.safetensors", c.with_header(kind="gan", arch={})), "generator"),
]


@pytest.fixture
def workspace(dash_env):
    root = userfiles.workspace_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.mark.parametrize(("make", "fragment"), [(m, f) for _, m, f in FILES], ids=[i for i, _, _ in FILES])
def test_a_link_to_a_crafted_file_is_refused_in_the_sidebar(app, workspace, make, fragment):
    path = make(workspace)
    at = app(PAGE, data="toy2d", dm=f"path:{path}")
    still_usable(at)
    assert any("The link's DM cannot be used" in e.value and fragment in e.value for e in at.sidebar.error)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("/etc/passwd", "outside the folders"), ("a\x00b", "NUL byte"), ("x" * 5000, "over 4096")],
    ids=["outside", "nul", "5000-chars"],
)
def test_a_link_or_typed_path_that_is_unusable_is_refused(app, text, fragment):
    at = app(PAGE, data="toy2d", dm=f"path:{text}")
    still_usable(at)
    assert any(fragment in e.value for e in at.sidebar.error)
    at.text_input(key="own_path").input(text)
    at.button(key="own_path_load").click().run()
    still_usable(at)
    assert sum(fragment in e.value for e in at.sidebar.error) >= 1


@pytest.mark.parametrize(("make", "fragment"), [(m, f) for _, m, f in FILES[:4]], ids=[i for i, _, _ in FILES[:4]])
def test_a_crafted_upload_is_refused_and_deleted(app, tmp_path, make, fragment):
    path = make(tmp_path)
    at = app(PAGE, data="toy2d")
    at.file_uploader(key="own_up").set_value((path.name, path.read_bytes(), "application/octet-stream"))
    at.run()
    still_usable(at)
    assert any("was not kept" in e.value and fragment in e.value for e in at.sidebar.error)
    kept = list(userfiles.uploads_dir().glob("*")) if userfiles.uploads_dir().is_dir() else []
    assert kept == []


BOMBS = [
    ("300k-tensors", lambda d: c.many_tensors(d / "tensors.safetensors", 300_000), "DSTAB_MAX_TENSORS"),
    ("150k-members", lambda d: c.many_members(d / "members.pt", 150_007), "DSTAB_MAX_ARCHIVE_MEMBERS"),
]


@pytest.mark.parametrize(("make", "fragment"), [(m, f) for _, m, f in BOMBS], ids=[i for i, _, _ in BOMBS])
def test_a_bomb_is_refused_from_its_header_in_the_path_box_and_as_an_upload(
    app, workspace, monkeypatch, make, fragment
):
    """Issue 27: 89 s in the path box and 170 s as an upload. Refused from the header's tensor count or the
    zip's end record: no tensor is made and torch never opens the file (the CLI's time and memory for the
    same refusal: test_bombs)."""
    import torch
    from safetensors import torch as st_torch

    path = make(workspace)
    opened = []
    for module, name in ((checkpoints, "st_load"), (st_torch, "load_file"), (torch, "load")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, **k: opened.append(a[:1]) or _real(*a, **k))
    monkeypatch.setenv("DSTAB_MAX_UPLOAD_MB", "64")
    at = app(PAGE, data="toy2d")
    at.text_input(key="own_path").input(str(path))
    at.button(key="own_path_load").click().run()
    still_usable(at)
    assert any(fragment in e.value and str(path) in e.value for e in at.sidebar.error)
    at.file_uploader(key="own_up").set_value((path.name, path.read_bytes(), "application/octet-stream"))
    at.run()
    still_usable(at)
    assert any("was not kept" in e.value and fragment in e.value for e in at.sidebar.error)
    assert not [a for a in opened if a and Path(str(a[0])).name.endswith(path.suffix)], opened
    assert list(userfiles.uploads_dir().glob("*")) == []


def test_an_upload_of_another_type_is_one_line_and_the_page_stays(app):
    """Streamlit's own type check (a crafted request past the browser's filter) raised in place of the page."""
    at = app(PAGE, data="toy2d")
    at.file_uploader(key="own_up").set_value(("notes.txt", b"not a checkpoint", "text/plain"))
    at.run()
    still_usable(at)
    assert any("notes.txt is not a checkpoint file; upload one of .safetensors" in e.value for e in at.sidebar.error)
    at.run()  # and on the next run too
    still_usable(at)


LINKED = """
import streamlit as st
from dashboard import urlstate

urlstate.on_page("training")
if st.session_state.get("runs"):  # as the Training page: its Run control is drawn only when runs exist
    urlstate.selectbox("Run", st.session_state["runs"], "run", st.session_state["runs"][-1])
urlstate.note_unread()
"""


def test_link_values_nothing_on_the_page_offers_are_named():
    """`/training?run=../../etc` showed nothing: with no runs, no control reads `run`. Every link value that
    no control of the page read is named once after the page (app.py calls note_unread after every page)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(LINKED)
    at.query_params.update({"run": "../../etc", "runs": "nope", "data": "toy2d"})
    at.run()
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == [
        "Link parameter run='../../etc' ignored: nothing on this page offers it now.",
        "Link parameter runs='nope' ignored: nothing on this page offers it now.",
    ]  # the shared `data` is the sidebar's
    at.run()
    assert not at.warning  # named once, not on every rerun
    at = AppTest.from_string(LINKED)
    at.session_state["runs"] = ["a", "b"]
    at.query_params.update({"run": "../../etc"})
    at.run()
    assert [w.value for w in at.warning] == [
        "Link parameter run='../../etc' ignored (not one of a, b); using the default b."
    ]  # read by the control, refused by it: said once
    text = (REPO / "app.py").read_text()
    assert text.index("page.run()") < text.index("urlstate.note_unread()")


def test_an_upload_that_fails_unexpectedly_is_deleted_too(dash_env, monkeypatch, tmp_path):
    def broken(path, **hints):
        raise RuntimeError("reader bug")

    monkeypatch.setattr(checkpoints, "load", broken)
    with pytest.raises(RuntimeError):
        userfiles.save_upload("m.safetensors", c.native(tmp_path / "m.safetensors").read_bytes())
    assert list(userfiles.uploads_dir().glob("*")) == []


def test_uploads_have_a_quota(dash_env, monkeypatch, tmp_path):
    monkeypatch.setenv("DSTAB_UPLOAD_QUOTA_MB", "0.001")
    with pytest.raises(userfiles.DstabError, match="quota"):
        userfiles.save_upload("m.safetensors", c.native(tmp_path / "m.safetensors").read_bytes())


def test_an_unknown_model_id_in_a_link_is_said_not_silently_replaced(app):
    at = app(PAGE, data="toy2d", dm="toy2d/no-such-model")
    still_usable(at)
    assert any("no-such-model" in w.value and "not offered here" in w.value for w in at.warning)


def test_a_header_dataset_outside_the_allowed_roots_is_refused_and_a_dataset_can_be_picked(app, workspace, tmp_path):
    secret = tmp_path / "secret-images"
    secret.mkdir()
    c.png_header_only(secret / "private.png", 8, 8)
    spec = f"folder:{secret}?size=8&channels=1"
    path = c.native(workspace / "escape.safetensors", c.with_header(dataset=spec))
    at = app(PAGE, data="toy2d", dm=f"path:{path}")
    still_usable(at)
    # said in place (a warning: the model itself is usable once a dataset is picked), nothing of the folder shown
    assert any("was refused" in w.value and "outside the folders" in w.value for w in at.warning)
    assert at.get("image") == [] and at.get("plotly_chart") == []
    next(s for s in at.selectbox if s.label == "DM data").set_value("toy2d:8gaussians").run()
    still_usable(at)
    charts = [c.key for c in at.get("plotly_chart")]
    assert not at.error and "forward-points" in charts and "trajectory" in charts  # the picked toy points


GUARDED = """
import streamlit as st
from dashboard import guard
from dstab.errors import DstabError

with guard.shown_in_place("The sidebar", where=st.sidebar):
    st.sidebar.header("Models")
    raise DstabError("a bad file; pick another")
with guard.shown_in_place("The X page"):
    raise KeyError("unexpected")
st.write("the app goes on")
"""


def test_a_failure_is_shown_in_place_and_the_app_goes_on():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(GUARDED).run()
    assert not at.exception
    assert [e.value for e in at.sidebar.error] == ["a bad file; pick another"]
    assert at.main.error[0].value.startswith("The X page failed (KeyError: 'unexpected'); the rest of the app")
    assert at.markdown[-1].value == "the app goes on"


def test_app_py_draws_the_menu_before_the_page_and_guards_both():
    """app.py's order: the sidebar (guarded), st.navigation, then the page inside the guard, so that no
    failure of either can take the page menu down."""
    text = (REPO / "app.py").read_text()
    sidebar, nav, page = (text.index(s) for s in ("sidebar.render()", "st.navigation(pages)", "page.run()"))
    assert sidebar < nav < page
    assert 'with guard.shown_in_place(f"The {page.title} page"):\n        page.run()' in text
    assert 'with guard.shown_in_place("The sidebar", where=st.sidebar):\n        selection = sidebar.render()' in text


def test_the_tables_cover_enough_cases():
    assert len(FILES) + 3 + 4 >= 14


@pytest.fixture(autouse=True)
def _no_upload_leftovers(dash_env):
    yield
    shutil.rmtree(userfiles.uploads_dir(), ignore_errors=True)
