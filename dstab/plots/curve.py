"""Interpolation curves: the loss from the early (alpha = 0) to the final (alpha = 1) checkpoint.

Each curve is drawn relative to its own final checkpoint's loss L(1),
(L(alpha) - L(1)) / |L(1)| (`interpolation.rise_over_end`), so a DM's and a
GAN's curves share one axis.
"""

from __future__ import annotations

from . import KIND_COLOURS, LEGEND_BELOW
from .tables import curve_probe_text

TITLE = "Loss from the early (alpha = 0) to the final (alpha = 1) checkpoint"
Y_TITLE = "(L - L_final) / |L_final|"


def curves(rows: dict):
    """`rows` maps kind -> (label, result meta, alphas, relative loss)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for kind, (label, meta, alphas, rel) in rows.items():
        fig.add_scatter(
            x=alphas,
            y=rel,
            name=f"{label} ({curve_probe_text(meta)})",
            mode="lines+markers",
            line={"color": KIND_COLOURS.get(kind)},
        )
    for x, text in ((0, "early"), (1, "final")):
        fig.add_vline(x=x, line_dash="dot", line_color="grey", annotation_text=text)
    fig.update_layout(title=TITLE, height=500, xaxis_title="alpha", yaxis_title=Y_TITLE, **LEGEND_BELOW)
    return fig
