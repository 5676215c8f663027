"""Widgets whose values live in the URL, so a copied link reproduces the view.

Each helper seeds the widget from `st.query_params` the first time it is
drawn in a session (ignoring values that are not valid options, which a
hand-edited link may contain), draws it, and writes the current value back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st


def _seed(name: str, cast: Callable[[str], object], valid: Callable[[object], bool]) -> str:
    key = f"url_{name}"
    if key not in st.session_state and name in st.query_params:
        try:
            value = cast(st.query_params[name])
        except (TypeError, ValueError):
            value = None
        if value is not None and valid(value):
            st.session_state[key] = value
    return key


def _publish(name: str, value) -> None:
    text = str(value)
    if st.query_params.get(name) != text:
        st.query_params[name] = text


def _choice_key(name: str, options: list, default) -> str:
    by_text = {str(o): o for o in options}
    key = _seed(name, lambda s: by_text.get(s), lambda v: v in options)
    if st.session_state.get(key) not in options:  # first draw, or the options changed under it
        st.session_state[key] = default if default in options else options[0]
    return key


def selectbox(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    options = list(options)
    value = where.selectbox(label, options, key=_choice_key(name, options, default), **kw)
    _publish(name, value)
    return value


def radio(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    options = list(options)
    value = where.radio(label, options, key=_choice_key(name, options, default), **kw)
    _publish(name, value)
    return value


def select_slider(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    options = list(options)
    value = where.select_slider(label, options, key=_choice_key(name, options, default), **kw)
    _publish(name, value)
    return value


def number(label: str, name: str, default, lo, hi, step=None, where=st, **kw):
    """Integer or float input, per the type of `default`; out-of-range URL values are ignored."""
    cast = type(default)
    key = _seed(name, cast, lambda v: lo <= v <= hi)
    if key not in st.session_state:
        st.session_state[key] = default
    value = where.number_input(label, min_value=lo, max_value=hi, step=step, key=key, **kw)
    _publish(name, value)
    return value


def slider(label: str, name: str, default, lo, hi, step=None, where=st, **kw):
    cast = type(default)
    key = _seed(name, cast, lambda v: lo <= v <= hi)
    if key not in st.session_state:
        st.session_state[key] = default
    value = where.slider(label, min_value=lo, max_value=hi, step=step, key=key, **kw)
    _publish(name, value)
    return value


def toggle(label: str, name: str, default: bool = False, where=st, **kw):
    key = _seed(name, lambda s: {"True": True, "False": False}.get(s), lambda v: isinstance(v, bool))
    if key not in st.session_state:
        st.session_state[key] = default
    value = where.toggle(label, key=key, **kw)
    _publish(name, value)
    return value
