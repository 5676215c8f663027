"""Failures shown where they happen: a page that fails shows one line in place, and the rest of the
app (the sidebar, the page menu) stays usable.

A `DstabError` (bad input) is shown as its message. Anything else is a bug or a damaged file a
reader did not anticipate: the visitor sees its type and first line, the server log keeps the
traceback (and .streamlit/config.toml's showErrorDetails = "none" keeps Streamlit's own
tracebacks out of the browser too). Streamlit's st.stop / st.rerun are BaseExceptions and pass.
"""

from __future__ import annotations

import contextlib
import logging

import streamlit as st

from dstab.errors import DstabError

log = logging.getLogger("dstab.dashboard")


def one_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else "")[:300]


@contextlib.contextmanager
def shown_in_place(what: str, where=st):
    try:
        yield
    except DstabError as exc:
        where.error(one_line(exc))
    except Exception as exc:  # noqa: BLE001 - the page must survive whatever one analysis raises
        log.exception("%s failed", what)
        where.error(
            f"{what} failed ({type(exc).__name__}: {one_line(exc)}); the rest of the app still works, "
            "and the server log has the details"
        )
