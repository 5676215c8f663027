"""How a page shows a figure: drawn with its downloads beside it, and, in presentation mode (a sidebar
toggle for a lecture hall's projector), with larger type and one figure per row.

Presentation mode is the viewer's, shared by every page like the sidebar's models (URL `present=true`):
the page's own text is scaled up by one style rule, each plotly figure gets larger fonts (its title,
axes, ticks, legend and colour bar), and `columns` stacks what would sit side by side. The figures
themselves are unchanged in `dstab.plots` (the CLI writes them as they are); only their drawing here is.
"""

from __future__ import annotations

import streamlit as st

from . import downloads

PARAM = "present"
KEPT = "kept_present"
FONT, TITLE_FONT = 18, 22  # px at presentation: readable from the back of a room at 1280 x 720
CSS = "<style>html { font-size: 125%; } [data-testid='stMetricValue'] { font-size: 3rem; }</style>"


def presenting() -> bool:
    return bool(st.session_state.get(KEPT, False))


def toggle(where) -> bool:
    """The sidebar's presentation toggle: kept for the session across pages, seeded once from the URL."""
    if KEPT not in st.session_state:
        st.session_state[KEPT] = st.query_params.get(PARAM, "").lower() in ("1", "true", "yes", "on")
    st.session_state[PARAM] = st.session_state[KEPT]

    def remember():
        st.session_state[KEPT] = st.session_state[PARAM]

    on = where.toggle(
        "Presentation mode",
        key=PARAM,
        on_change=remember,
        help="larger type and one figure per row, for a projector (1280 x 720)",
    )
    if on:
        st.query_params[PARAM] = "true"
        st.html(CSS)
    elif PARAM in st.query_params:
        del st.query_params[PARAM]
    return on


def styled(fig):
    """The figure as drawn on this page: larger fonts in presentation mode (a copy; the caller's is kept
    for its downloads, which stay at print size)."""
    if not presenting():
        return fig
    import plotly.graph_objects as go

    out = go.Figure(fig)
    out.update_layout(font_size=FONT, title_font_size=TITLE_FONT, legend_font_size=FONT - 2)
    for ann in out.layout.annotations or ():  # subplot titles are annotations
        ann.font.size = FONT
    return out


def show(fig, name: str, where=st, key: str | None = None) -> None:
    """Draw `fig` and its PNG / SVG / PDF / HTML downloads under it."""
    where.plotly_chart(styled(fig), key=key or name)
    downloads.figure(fig, name, where=where)


def columns(spec, **kw) -> list:
    """st.columns(spec), or in presentation mode as many containers stacked: one figure per row."""
    n = spec if isinstance(spec, int) else len(spec)
    return [st.container() for _ in range(n)] if presenting() else st.columns(spec, **kw)


def table(rows: list[dict], where=st) -> None:
    """A table of numbers that wraps to the page's width (st.table), so that no column runs off the edge of
    a projector as a scrolling grid's would (the Hessian's sigma^2 columns, a landscape's rise)."""
    where.table(rows, hide_index=True)
