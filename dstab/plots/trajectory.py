"""The diffusion process: forward weights, noised data, how a DM's x0 estimate settles while it samples,
and the reverse steps (x_t, predicted noise, x0 estimate) with a play button."""

from __future__ import annotations

import numpy as np

from . import KIND_COLOURS, png
from .consistency import PALETTE

MAX_FRAMES = 60  # a play button over more sampler steps than this shows evenly spaced ones
IMAGE_SCALE = 1  # the panels' PNGs at their own pixels: plotly draws an Image trace unsmoothed (zsmooth off)


def points(pts, title: str, reference=None, extent: float = 3.5):
    """2-D points (a toy dataset's x_t or x0 estimates) over the data in grey."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if reference is not None:
        ref = png._numpy(reference)
        fig.add_scatter(x=ref[:, 0], y=ref[:, 1], mode="markers", name="data", marker={"size": 3, "color": "#cccccc"})
    p = png._numpy(pts)
    fig.add_scatter(
        x=p[:, 0], y=p[:, 1], mode="markers", name="points", marker={"size": 4, "color": KIND_COLOURS["dm"]}
    )
    fig.update_layout(title=title, height=420, xaxis_range=[-extent, extent], yaxis_range=[-extent, extent])
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def schedule(diffusion, t: int):
    import plotly.graph_objects as go

    abar = diffusion.alphas_cumprod.numpy()
    ts = np.arange(len(abar))
    fig = go.Figure()
    fig.add_scatter(x=ts, y=np.sqrt(abar), name="signal sqrt(abar_t)")
    fig.add_scatter(x=ts, y=np.sqrt(1 - abar), name="noise sqrt(1 - abar_t)")
    fig.add_vline(x=t, line_dash="dash", line_color="grey")
    fig.update_layout(title="Forward process weights", xaxis_title="t", yaxis_title="weight", height=360)
    return fig


def distance(rows: list[dict], t_mark: int):
    """`trajectory.trajectory_rows`: the x0 estimate's RMS distance to the final sample, and its change."""
    import plotly.graph_objects as go

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


def picks(frames: int, count: int = 8) -> np.ndarray:
    """`count` evenly spaced step indices of a trajectory, first and last included."""
    return np.unique(np.linspace(0, frames - 1, count).round().astype(int))


def strip(x0_hat: np.ndarray, sample: int = 0, count: int = 8, scale: int = 8):
    """One sample's x0 estimate at `count` evenly spaced steps, left to right (images only)."""
    chosen = picks(len(x0_hat), count)
    return png.grid_image(np.asarray(x0_hat)[chosen, sample], nrow=len(chosen), scale=scale), chosen


def frame_picks(count: int, most: int = MAX_FRAMES) -> np.ndarray:
    return np.unique(np.linspace(0, count - 1, min(count, most)).round().astype(int))


def _panel_traces(xt, eps, x0, image: bool, nrow: int, axes) -> list[dict]:
    """The three panels' traces as plain dicts (the figure validates them once, frames included)."""
    if image:
        # x_t and eps are unbounded: shown clipped to [-1, 1] (x_t) and divided by 3 (eps, ~N(0, 1)); as PNG
        # sources (one per panel and frame: a play button over 50 steps sends 150) at IMAGE_SCALE
        pictures = [png.grid_image(np.clip(a, -1, 1), nrow=nrow, scale=IMAGE_SCALE) for a in (xt, eps / 3.0, x0)]
        return [
            {"type": "image", "source": png.data_uri(p), "hoverinfo": "skip", "xaxis": x, "yaxis": y}
            for p, (x, y) in zip(pictures, axes)
        ]
    return [
        {
            "type": "scatter",
            "x": a[:, 0],
            "y": a[:, 1],
            "mode": "markers",
            "showlegend": False,
            "xaxis": x,
            "yaxis": y,
            "marker": {"size": 4, "color": PALETTE[k]},
        }
        for k, (a, (x, y)) in enumerate(zip((xt, eps, x0), axes))
    ]


def reverse_steps(
    ts: np.ndarray, xt: np.ndarray, eps: np.ndarray, x0: np.ndarray, image: bool, start: int = 0, extent: float = 3.5
):
    """x_t (what the model sees), the predicted noise and the x0 estimate side by side, one animation
    frame per sampler step (evenly spaced ones past MAX_FRAMES), with a play button and a step slider.
    Step k (1-based) is the k-th model call: t = ts[k - 1]."""
    import plotly.graph_objects as go

    from .subplots import grid

    picks = frame_picks(len(ts))
    nrow = min(xt.shape[1], 4)  # images: 4 to a row, so 8 samples fill a panel at twice the size of one row
    titles = ("x_t (model input)", "predicted noise eps", "x0 estimate")
    layout, axes = grid(3, 3, 0.04, 0.0, titles, font_size=16)
    for k in layout:
        if k.startswith(("xaxis", "yaxis")):
            layout[k].update({"showticklabels": False} if image else {"range": [-extent, extent]})
    first = int(picks[np.argmin(np.abs(picks - start))])

    def label(i: int) -> str:
        return f"step {i + 1} of {len(ts)}, t = {int(ts[i])}"

    frames = [
        {
            "data": _panel_traces(xt[i], eps[i], x0[i], image, nrow, axes),
            "name": label(i),
            "traces": [0, 1, 2],
            "layout": {"title": {"text": label(i)}},
        }
        for i in picks
    ]
    play = {
        "args": [None, {"frame": {"duration": 120, "redraw": True}, "fromcurrent": True}],
        "label": "Play",
        "method": "animate",
    }
    pause = {
        "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}],
        "label": "Pause",
        "method": "animate",
    }
    steps = [
        {
            "args": [[label(i)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
            "label": f"{i + 1}",
            "method": "animate",
        }
        for i in picks
    ]
    # play button and step slider below the panels, clear of the points' x tick labels
    layout.update(
        height=460 if image else 520,
        margin={"t": 60, "b": 110},
        title={"text": label(first)},
        updatemenus=[
            {
                "type": "buttons",
                "buttons": [play, pause],
                "x": 0,
                "y": 0,
                "yanchor": "top",
                "pad": {"t": 60},
                "xanchor": "left",
                "direction": "left",
            }
        ],
        sliders=[
            {
                "steps": steps,
                "active": int(np.where(picks == first)[0][0]),
                "x": 0.12,
                "len": 0.88,
                "y": 0,
                "yanchor": "top",
                "pad": {"t": 40},
                "currentvalue": {"prefix": "step ", "suffix": f" of {len(ts)}", "font": {"size": 12}},
            }
        ],
    )
    fig = go.Figure(
        data=_panel_traces(xt[first], eps[first], x0[first], image, nrow, axes), layout=layout, frames=frames
    )
    return fig
