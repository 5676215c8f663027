"""Training runs: loss and FD / FID curves, loss per quartile of t, the CLTS pmf and the MDLRC schedules."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

QUARTILE_DASH = ["solid", "dot", "dash", "dashdot"]


def curves(series: list[dict], title: str, y_title: str, x_title: str, log_x: bool) -> go.Figure:
    """Overlaid curves; each series is {"label", "x", "y"} and, when smoothed, "smooth" (the smoothed y,
    `training.curves.smoothed`): the raw curve then stays faintly visible beneath it so the smoothing can
    be judged."""
    fig = go.Figure()
    palette = fig.layout.template.layout.colorway or None
    for i, s in enumerate(series):
        colour = palette[i % len(palette)] if palette else None
        line = {"color": colour} if colour else {}
        if s.get("smooth") is not None:
            fig.add_scatter(x=s["x"], y=s["y"], name=f"{s['label']} (raw)", line=line, opacity=0.25, showlegend=False)
            fig.add_scatter(x=s["x"], y=s["smooth"], name=s["label"], line=line)
        else:
            fig.add_scatter(
                x=s["x"], y=s["y"], name=s["label"], line=line, mode="lines+markers" if len(s["y"]) < 30 else "lines"
            )
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=380)
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def quartile_curves(series: list[dict], x_title: str, log_x: bool) -> go.Figure:
    """Loss per quartile of t (q0: smallest t); each series is {"label", "quartile", "x", "y"} (and "smooth")."""
    fig = go.Figure()
    for s in series:
        y = s["smooth"] if s.get("smooth") is not None else s["y"]
        fig.add_scatter(
            x=s["x"], y=y, name=f"{s['label']} q{s['quartile']}", line={"dash": QUARTILE_DASH[s["quartile"]]}
        )
    fig.update_layout(
        title="Loss per quartile of t (q0: t < T/4, the hardest to denoise precisely)",
        xaxis_title=x_title,
        yaxis_title="loss",
        yaxis_type="log",
        height=380,
    )
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def pmf(t: np.ndarray, pmfs: dict[int, np.ndarray], T: int) -> go.Figure:
    fig = go.Figure()
    for it, p in sorted(pmfs.items()):
        fig.add_scatter(x=t, y=p, name=f"iteration {it}")
    fig.add_hline(y=1.0 / T, line_dash="dot", line_color="grey", annotation_text="uniform 1/T")
    fig.update_layout(
        title="Timestep distribution P(t) (CLTS, Eq. 7-8)", xaxis_title="t", yaxis_title="P(t)", height=340
    )
    return fig


def schedules(iterations: np.ndarray, beta1: np.ndarray, lr: np.ndarray) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=iterations, y=beta1, name="Adam beta1 (MD, Eq. 9)")
    fig.add_scatter(x=iterations, y=lr, name="learning rate (LRC, Eq. 10)", yaxis="y2")
    fig.update_layout(
        title="beta1 and learning rate over the run",
        xaxis_title="iteration",
        yaxis={"title": "beta1"},
        yaxis2={"title": "lr", "overlaying": "y", "side": "right", "exponentformat": "e"},
        height=340,
    )
    return fig
