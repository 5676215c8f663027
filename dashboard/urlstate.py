"""Widgets whose values live in the URL, so a copied link reproduces the view, and stay on their page.

Each page's widgets are keyed by page (`landscape.t`, `hessian.t`): a value set on one page never
seeds another's, and a page keeps its values for the session when the user leaves and comes back
(`persist_state="session"`). The URL keeps the short names (`/landscape?t=900`) and holds only the
values of the page shown, those that differ from the default. A URL value seeds its widget on the
first run that draws it, parsed case-insensitively (`role=d` is `D`); a value that fits no choice,
or lies out of range, is refused with a visible note and the default used; one that no control of
the page read (its control is not drawn: no runs yet, no model of that kind) is named after the page
(`note_unread`), never dropped in silence.

The sidebar's model choice (`data`, `dm`, `gan`) is the one thing shared across pages
(`shared_selectbox`, `publish`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

# the sidebar's models, their data (datapick) and presentation mode (figures)
SHARED = ("data", "dm", "gan", "dmdata", "gandata", "present")
STREAMLIT_OWN = ("embed", "embed_options")
PAGE = "dstab_page"
READ = "dstab_link_read"  # the URL parameters a control of this run's page has read
NOTED = "dstab_link_noted"  # (page, name, value) already named as unread
KEEP = {"persist_state": "session"}


def on_page(name: str) -> None:
    """Called by app.py before a page runs. On a switch to another page the URL still holds the old
    page's values (Streamlit keeps or drops them depending on how the switch happened): drop them, so
    that they never seed the new page's widgets of the same name."""
    name = name or "home"
    previous = st.session_state.get(PAGE)
    if previous is not None and previous != name:
        for param in [p for p in st.query_params if p not in SHARED]:
            del st.query_params[param]
    st.session_state[PAGE] = name
    st.session_state[READ] = set()


def mark_read(name: str) -> None:
    """Parameter `name` belongs to a control drawn on this run (for controls that read the URL themselves)."""
    st.session_state.setdefault(READ, set()).add(name)


def note_unread() -> None:
    """After the page ran: name each link value that no control read, once per page and value."""
    page, read = st.session_state.get(PAGE, "page"), st.session_state.get(READ, set())
    noted = st.session_state.setdefault(NOTED, set())
    for name in list(st.query_params):
        raw = st.query_params.get(name)
        if name in SHARED or name in STREAMLIT_OWN or name in read or (page, name, raw) in noted:
            continue
        noted.add((page, name, raw))
        st.warning(f"Link parameter {name}={raw!r} ignored: nothing on this page offers it now.")


def key(name: str) -> str:
    """The widget key of URL parameter `name` on the current page."""
    return f"{st.session_state.get(PAGE, 'page')}.{name}"


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _match(options: list) -> Callable[[str], object]:
    def parse(raw: str):
        low = raw.strip().lower()
        for o in options:
            if _text(o) == raw.strip():
                return o
        for o in options:
            if _text(o).lower() == low:
                return o
        for o in options:  # radius=1 for 1.0
            if isinstance(o, (int, float)) and not isinstance(o, bool):
                try:
                    if float(low) == o:
                        return o
                except ValueError:
                    break
        raise ValueError(f"not one of {', '.join(_text(o) for o in options)}")

    return parse


def _in_range(default, lo, hi) -> Callable[[str], object]:
    def parse(raw: str):
        kind = int if isinstance(default, int) and not isinstance(default, bool) else float
        try:
            value = kind(raw.strip())
        except ValueError:
            raise ValueError(f"not {'an integer' if kind is int else 'a number'}") from None
        if not lo <= value <= hi:
            raise ValueError(f"outside [{lo}, {hi}]")
        return value

    return parse


def _boolean(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("not true or false")


def _seed(name: str, default, parse: Callable[[str], object], valid: Callable[[object], bool], instead=None) -> str:
    """Put the widget's value into session state before it is drawn (so the widget takes no `value`):
    kept from earlier runs if still valid; else the URL's if it parses, else the default.

    With `instead` (numeric choices that depend on the model: its timesteps), a kept value the new
    options lack is replaced by `instead(value)`, with a note, and remembered: while the user leaves
    the replacement alone, options that offer the remembered value again bring it back (t = 750, a
    T = 50 model shows t = 49, the zoo model again shows t = 750)."""
    k, wanted, stand_in = key(name), key(name) + "#wanted", key(name) + "#stand-in"
    ss = st.session_state
    mark_read(name)
    if k in ss and valid(ss[k]):
        if ss.get(stand_in) is not None and ss[k] == ss[stand_in]:
            if valid(ss[wanted]):  # the user's own value is offered again
                ss[k] = ss.pop(wanted)
                ss.pop(stand_in)
            else:  # said for as long as the stand-in is shown, whatever reruns the page
                st.info(f"{name} = {_text(ss[wanted])} is not offered here; the nearest, {_text(ss[k])}, is used.")
        else:  # the user chose this value: nothing to bring back
            ss.pop(wanted, None)
            ss.pop(stand_in, None)
        return k
    if k in ss and instead is not None:
        ss.setdefault(wanted, ss[k])
        ss[k] = ss[stand_in] = instead(ss[wanted])
        st.info(f"{name} = {_text(ss[wanted])} is not offered here; the nearest, {_text(ss[k])}, is used.")
        return k
    value = default
    raw = st.query_params.get(name)
    if raw is not None:
        try:
            value = parse(raw)
        except ValueError as exc:
            st.warning(f"Link parameter {name}={raw!r} ignored ({exc}); using the default {_text(default)}.")
    st.session_state[k] = value
    return k


def _publish_one(name: str, value, default) -> None:
    if value == default:
        if name in st.query_params:
            del st.query_params[name]
    elif st.query_params.get(name) != _text(value):
        st.query_params[name] = _text(value)


def nearest(options: Sequence) -> Callable[[object], object]:
    """The numeric option closest to a value (the first on a tie): what replaces a number a new model
    does not offer."""

    def pick(value):
        numbers = [o for o in options if isinstance(o, int | float) and not isinstance(o, bool)]
        if not numbers or not isinstance(value, int | float):
            return numbers[0] if numbers else options[0]
        return min(numbers, key=lambda o: abs(o - value))

    return pick


def _choice(widget, label: str, options: Sequence, name: str, default, instead=None, **kw):
    options = list(options)
    # a default these options lack (a model with another T) starts at its nearest option; the URL still
    # leaves out only the page's own default, so a link names any other value, whatever the model
    first = default if default in options else nearest(options)(default)
    k = _seed(name, first, _match(options), lambda v: v in options, instead)
    widget_key = _keyed_by_options(k, options) if instead is not None else k
    if widget_key != k:  # the value's own key follows the widget's, as the sidebar's shared choices do
        kw["on_change"] = lambda: st.session_state.__setitem__(k, st.session_state[widget_key])
    value = widget(label, options, key=widget_key, **KEEP, **kw)
    _publish_one(name, value, default)
    return value


def _keyed_by_options(k: str, options: list) -> str:
    """The widget key for choices that change with the model: the value's own key for the options first
    seen in the session, another key (seeded with the value) for other options. Chromium's slider keeps
    its own position when a widget's options change under it and showed t = 1 (the first option) while
    the server and the URL held t = 49; a widget of another key is drawn afresh at the server's value."""
    ss = st.session_state
    ss.setdefault(k + "#options", options)
    if ss[k + "#options"] == options:
        return k
    widget_key = f"{k}#{len(options)}:{_text(options[0])}:{_text(options[-1])}"
    ss[widget_key] = ss[k]
    return widget_key


def selectbox(label: str, options: Sequence, name: str, default=None, where=st, keep_nearest=False, **kw):
    return _choice(where.selectbox, label, options, name, default, nearest(options) if keep_nearest else None, **kw)


def radio(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    return _choice(where.radio, label, options, name, default, **kw)


def select_slider(label: str, options: Sequence, name: str, default=None, where=st, keep_nearest=False, **kw):
    """`keep_nearest`: when the options change under the kept value (another model, another T), the
    nearest option replaces it, with a note, rather than the default."""
    return _choice(where.select_slider, label, options, name, default, nearest(options) if keep_nearest else None, **kw)


def number(label: str, name: str, default, lo, hi, step=None, where=st, **kw):
    """Integer or float input, per the type of `default`."""
    k = _seed(name, default, _in_range(default, lo, hi), lambda v: lo <= v <= hi)
    value = where.number_input(label, min_value=lo, max_value=hi, step=step, key=k, **KEEP, **kw)
    _publish_one(name, value, default)
    return value


def slider(label: str, name: str, default, lo, hi, step=None, where=st, **kw):
    k = _seed(name, default, _in_range(default, lo, hi), lambda v: lo <= v <= hi)
    value = where.slider(label, min_value=lo, max_value=hi, step=step, key=k, **KEEP, **kw)
    _publish_one(name, value, default)
    return value


def toggle(label: str, name: str, default: bool = False, where=st, **kw):
    k = _seed(name, default, _boolean, lambda v: isinstance(v, bool))
    value = where.toggle(label, key=k, **KEEP, **kw)
    _publish_one(name, value, default)
    return value


def multiselect(label: str, options: Sequence, name: str, default: Sequence = (), where=st, **kw) -> list:
    """Several choices, kept in the URL as a comma-separated list (`name=a,b`); values the options lack
    are named in a note and dropped."""
    options, default = list(options), [d for d in default if d in options]

    def parse(raw: str) -> list:
        wanted = [v for v in raw.split(",") if v]
        unknown = [v for v in wanted if v not in options]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} not offered")
        return wanted

    k = _seed(name, default, parse, lambda v: isinstance(v, list) and all(x in options for x in v))
    value = where.multiselect(label, options, key=k, **KEEP, **kw)
    if value == default:
        if name in st.query_params:
            del st.query_params[name]
    elif st.query_params.get(name) != ",".join(value):
        st.query_params[name] = ",".join(value)
    return value


def shared_selectbox(label: str, options: Sequence, name: str, default=None, where=st, **kw):
    """A choice that holds across pages (the sidebar's). Streamlit forgets a widget's state when the
    page changes under it, so the value is kept in a plain session key, seeded from the URL once
    (case-insensitively, a refused value noted), handed to the widget on every run, updated by the
    widget's callback; `publish` writes it back to the URL."""
    options = list(options)
    kept = f"kept_{name}"
    default = default if default in options else options[0]
    if kept not in st.session_state:
        raw = st.query_params.get(name)
        st.session_state[kept] = default
        if raw is not None:
            try:
                st.session_state[kept] = _match(options)(raw)
            except ValueError:
                where.warning(f"Link parameter {name}={raw!r} is not offered here; using {default}.")
    if st.session_state[kept] not in options:  # the options changed under it
        st.session_state[kept] = default
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
