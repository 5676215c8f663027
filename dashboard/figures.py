"""Plotly figures and the rows of numbers behind them. No streamlit here.

DM and GAN share every axis they are compared on; colours are fixed by kind
(DM blue, GAN orange) across pages so a glance tells which is which.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

KIND_COLOURS = {"dm": "#1f77b4", "gan": "#ff7f0e", "x0": "#2ca02c"}


def points(pts: torch.Tensor, title: str, reference: torch.Tensor | None = None, extent: float = 3.5) -> go.Figure:
    fig = go.Figure()
    if reference is not None:
        ref = reference.detach().cpu().numpy()
        fig.add_scatter(x=ref[:, 0], y=ref[:, 1], mode="markers", name="data", marker={"size": 3, "color": "#cccccc"})
    p = pts.detach().cpu().numpy()
    fig.add_scatter(
        x=p[:, 0], y=p[:, 1], mode="markers", name="points", marker={"size": 4, "color": KIND_COLOURS["dm"]}
    )
    fig.update_layout(title=title, height=420, xaxis_range=[-extent, extent], yaxis_range=[-extent, extent])
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def schedule_rows(diffusion) -> list[dict]:
    abar = diffusion.alphas_cumprod.numpy().astype(float)
    return [
        {"t": t, "sqrt_abar": a**0.5, "sqrt_one_minus_abar": (1 - a) ** 0.5, "snr": a / (1 - a)}
        for t, a in enumerate(abar)
    ]


def schedule(diffusion, t: int) -> go.Figure:
    abar = diffusion.alphas_cumprod.numpy()
    ts = np.arange(len(abar))
    fig = go.Figure()
    fig.add_scatter(x=ts, y=np.sqrt(abar), name="signal sqrt(abar_t)")
    fig.add_scatter(x=ts, y=np.sqrt(1 - abar), name="noise sqrt(1 - abar_t)")
    fig.add_vline(x=t, line_dash="dash", line_color="grey")
    fig.update_layout(title="Forward process weights", xaxis_title="t", yaxis_title="weight", height=360)
    return fig


def trajectory_rows(ts: np.ndarray, x0_hat: torch.Tensor) -> list[dict]:
    """Per sampler step: RMS distance of the x0 estimate to the final sample, and its change from the step before."""
    flat = x0_hat.reshape(x0_hat.shape[0], x0_hat.shape[1], -1).double()
    to_final = ((flat - flat[-1]) ** 2).mean(dim=2).sqrt().mean(dim=1)
    step_change = torch.cat(
        [torch.zeros(1, dtype=flat.dtype), ((flat[1:] - flat[:-1]) ** 2).mean(dim=2).sqrt().mean(dim=1)]
    )
    return [
        {"step": i, "t": int(t), "rms_to_final": float(d), "rms_change": float(c)}
        for i, (t, d, c) in enumerate(zip(ts, to_final, step_change))
    ]


def trajectory_distance(rows: list[dict], t_mark: int) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=[r["t"] for r in rows], y=[r["rms_to_final"] for r in rows], name="RMS(x0 estimate - final)")
    fig.add_scatter(x=[r["t"] for r in rows], y=[r["rms_change"] for r in rows], name="RMS change per step")
    fig.add_vline(x=t_mark, line_dash="dash", line_color="grey")
    fig.update_layout(
        title="How the x0 estimate settles",
        xaxis_title="t (sampling runs right to left)",
        height=360,
        xaxis_autorange="reversed",
    )
    return fig
