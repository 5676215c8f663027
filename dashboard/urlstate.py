"""Widgets whose values live in the URL, so a copied link reproduces the view.

Streamlit's own binding (`bind="query-params"`, key = parameter name) does
the work: it seeds the widget from the URL, ignores invalid values and keeps
the URL in step. Values equal to the default are left out of the URL. Here we
add the one thing it cannot know: when the options of a choice depend on
another choice (the DM list on the dataset), a value from the old options is
replaced by the default before the widget is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

BOUND = {"bind": "query-params", "persist_state": "session"}


def _choice(widget, label: str, options: Sequence, name: str, default, **kw):
    options = list(options)
    if name in st.session_state and st.session_state[name] not in options:
        del st.session_state[name]
    index = options.index(default) if default in options else 0
    return widget(label, options, index=index, key=name, **BOUND, **kw)


def selectbox(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    return _choice(where.selectbox, label, options, name, default, **kw)


def radio(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    return _choice(where.radio, label, options, name, default, **kw)


def select_slider(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    options = list(options)
    if name in st.session_state and st.session_state[name] not in options:
        del st.session_state[name]
    return where.select_slider(label, options, value=default if default in options else options[0], key=name,
                               **BOUND, **kw)  # fmt: skip


def number(label: str, name: str, default, lo, hi, step=None, where=st, **kw):
    """Integer or float input, per the type of `default`."""
    return where.number_input(label, min_value=lo, max_value=hi, value=default, step=step, key=name, **BOUND, **kw)


def slider(label: str, name: str, default, lo, hi, step=None, where=st, **kw):
    if name in st.session_state and not lo <= st.session_state[name] <= hi:
        del st.session_state[name]
    return where.slider(label, min_value=lo, max_value=hi, value=default, step=step, key=name, **BOUND, **kw)


def toggle(label: str, name: str, default: bool = False, where=st, **kw):
    return where.toggle(label, value=default, key=name, **BOUND, **kw)
