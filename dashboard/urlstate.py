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


def _notice_unknown(label: str, options: list, name: str, where) -> None:
    """A link's value that is not among the options is replaced by the default; say so, once."""
    value = st.query_params.get(name)
    seen = st.session_state.setdefault("dstab_link_notices", set())
    if value is not None and value not in {str(o) for o in options} and (name, value) not in seen:
        seen.add((name, value))
        where.warning(f"The link's {label} {value[:80]!r} is not available here; showing the default instead.")


def _choice(widget, label: str, options: Sequence, name: str, default, **kw):
    options = list(options)
    _notice_unknown(label, options, name, st)
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


def shared_selectbox(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    """A choice that holds across pages (the sidebar's). Streamlit clears the query string on a page
    switch and forgets a widget's state when the page changes under it, so the value is kept in a
    plain session key, seeded from the URL once, handed to the widget on every run, updated by the
    widget's callback; `publish` writes it back to the URL."""
    options = list(options)
    kept = f"kept_{name}"
    if kept not in st.session_state:
        _notice_unknown(label, options, name, where)
        st.session_state[kept] = {str(o): o for o in options}.get(st.query_params.get(name), default)
    if st.session_state[kept] not in options:  # first run, or the options changed under it
        st.session_state[kept] = default if default in options else options[0]
    st.session_state[name] = st.session_state[kept]

    def remember():
        st.session_state[kept] = st.session_state[name]

    return where.selectbox(label, options, key=name, on_change=remember, **kw)


def publish(values: dict) -> None:
    """Write shared choices into the URL. Call it after st.navigation has picked the page: a write
    made before goes out with the previous page's path."""
    for name, value in values.items():
        if value is not None:
            st.query_params[name] = str(value)  # also when unchanged: a page switch needs the URL rewritten
