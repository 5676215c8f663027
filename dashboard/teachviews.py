"""Teaching pictures for the consistency and diffusion-process pages: zoomable, all samples, linked by
their noise; the reverse process as x_t, predicted noise and x0 estimate with a play button. No
streamlit, no computing: arrays in, plotly figures out.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dstab.viz import grid_image

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]  # fmt: skip
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross", "star", "pentagon"]
MAX_FRAMES = 60  # a play button over more sampler steps than this shows evenly spaced ones


def _rgb(img) -> np.ndarray:
    arr = np.asarray(img)
    return np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr


def image_grid(samples: np.ndarray, names: list[str], title: str, scale: int = 4) -> go.Figure:
    """(N models, M samples, C, H, W) in [-1, 1] as one zoomable picture: a row per model, a column
    per sample; a column shares its noise. All M are shown."""
    import torch

    n, m = samples.shape[:2]
    img = grid_image(torch.from_numpy(samples.reshape(n * m, *samples.shape[2:])), nrow=m, scale=scale)
    fig = go.Figure(go.Image(z=_rgb(img), hoverinfo="skip"))
    cell = img.height / n
    fig.update_yaxes(tickvals=[cell * (j + 0.5) for j in range(n)], ticktext=names, showgrid=False)
    ticks = range(0, m, max(1, m // 8))
    fig.update_xaxes(tickvals=[img.width / m * (i + 0.5) for i in ticks], ticktext=[str(i + 1) for i in ticks],
                     title="sample (shared noise)")  # fmt: skip
    fig.update_layout(title=title, height=max(220, 60 + 110 * n), margin={"l": 10, "r": 10, "t": 40, "b": 40},
                      dragmode="zoom")  # fmt: skip
    return fig


def linked_points(samples: np.ndarray, names: list[str], title: str, extent: float = 3.5) -> go.Figure:
    """(N models, M samples, 2) points: one marker symbol per model, one colour per sample, and a faint
    line through the models' points of each sample, so a glance shows where one noise went in each model."""
    n, m = samples.shape[:2]
    fig = go.Figure()
    for i in range(m):
        fig.add_scatter(x=samples[:, i, 0], y=samples[:, i, 1], mode="lines", showlegend=False, hoverinfo="skip",
                        line={"color": PALETTE[i % len(PALETTE)], "width": 1}, opacity=0.35)  # fmt: skip
    colours = [PALETTE[i % len(PALETTE)] for i in range(m)]
    for j, name in enumerate(names):
        fig.add_scatter(x=samples[j, :, 0], y=samples[j, :, 1], mode="markers", name=name,
                        marker={"color": colours, "symbol": SYMBOLS[j % len(SYMBOLS)], "size": 8,
                                "line": {"color": "black", "width": 0.5}},
                        customdata=np.arange(1, m + 1),
                        hovertemplate=f"{name}<br>sample %{{customdata}}<extra></extra>")  # fmt: skip
    fig.update_layout(title=title, height=480, xaxis_range=[-extent, extent], yaxis_range=[-extent, extent],
                      legend={"orientation": "h", "y": -0.12}, margin={"t": 40})  # fmt: skip
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def frame_picks(count: int, most: int = MAX_FRAMES) -> np.ndarray:
    return np.unique(np.linspace(0, count - 1, min(count, most)).round().astype(int))


def _panel_traces(xt, eps, x0, image: bool, nrow: int) -> list:
    import torch

    if image:
        # x_t and eps are unbounded: shown clipped to [-1, 1] (x_t) and divided by 3 (eps, ~N(0, 1))
        return [go.Image(z=_rgb(grid_image(torch.from_numpy(np.clip(a, -1, 1)), nrow=nrow)), hoverinfo="skip")
                for a in (xt, eps / 3.0, x0)]  # fmt: skip
    return [go.Scatter(x=a[:, 0], y=a[:, 1], mode="markers", marker={"size": 4, "color": PALETTE[k]}, showlegend=False)
            for k, a in enumerate((xt, eps, x0))]  # fmt: skip


def reverse_steps(ts: np.ndarray, xt: np.ndarray, eps: np.ndarray, x0: np.ndarray, image: bool, start: int = 0,
                  extent: float = 3.5) -> go.Figure:  # fmt: skip
    """x_t (what the model sees), the predicted noise and the x0 estimate side by side, one animation
    frame per sampler step (evenly spaced ones past MAX_FRAMES), with a play button and a step slider.
    Step k (1-based) is the k-th model call: t = ts[k - 1]."""
    picks = frame_picks(len(ts))
    nrow = min(xt.shape[1], 8)
    titles = ("x_t (model input)", "predicted noise eps", "x0 estimate")
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.04)
    first = int(picks[np.argmin(np.abs(picks - start))])
    for col, trace in enumerate(_panel_traces(xt[first], eps[first], x0[first], image, nrow), start=1):
        fig.add_trace(trace, row=1, col=col)

    def label(i: int) -> str:
        return f"step {i + 1} of {len(ts)}, t = {int(ts[i])}"

    fig.frames = [go.Frame(data=_panel_traces(xt[i], eps[i], x0[i], image, nrow), name=label(i),
                           traces=[0, 1, 2], layout={"title": {"text": label(i)}}) for i in picks]  # fmt: skip
    play = {"args": [None, {"frame": {"duration": 120, "redraw": True}, "fromcurrent": True}], "label": "Play",
            "method": "animate"}  # fmt: skip
    pause = {"args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}], "label": "Pause",
             "method": "animate"}  # fmt: skip
    steps = [{"args": [[label(i)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
              "label": f"{i + 1}", "method": "animate"} for i in picks]  # fmt: skip
    fig.update_layout(
        height=420 if image else 440, margin={"t": 60, "b": 10},
        updatemenus=[{"type": "buttons", "buttons": [play, pause], "x": 0, "y": -0.05, "xanchor": "left",
                      "direction": "left"}],
        sliders=[{"steps": steps, "active": int(np.where(picks == first)[0][0]), "x": 0.12, "len": 0.88,
                  "y": -0.02, "currentvalue": {"prefix": "sampler ", "font": {"size": 12}}}],
        title=label(first),
    )  # fmt: skip
    if image:
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(showticklabels=False)
    else:
        fig.update_xaxes(range=[-extent, extent])
        fig.update_yaxes(range=[-extent, extent])
    return fig
