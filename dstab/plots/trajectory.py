"""The diffusion process: forward weights, noised data, and how a DM's x0 estimate settles while it samples."""

from __future__ import annotations

import numpy as np

from . import KIND_COLOURS, png


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
    fig.update_layout(title="How the x0 estimate settles", xaxis_title="t (sampling runs right to left)",
                      height=360, xaxis_autorange="reversed")  # fmt: skip
    return fig


def distance_png(rows: list[dict]):
    t = np.array([r["t"] for r in rows], dtype=float)
    lines = {"RMS(x0 estimate - final)": [r["rms_to_final"] for r in rows],
             "RMS change per step": [r["rms_change"] for r in rows]}  # fmt: skip
    return png.line_image(-t, lines, "How the x0 estimate settles (x: -t, sampling runs left to right)")


def picks(frames: int, count: int = 8) -> np.ndarray:
    """`count` evenly spaced step indices of a trajectory, first and last included."""
    return np.unique(np.linspace(0, frames - 1, count).round().astype(int))


def strip(x0_hat: np.ndarray, sample: int = 0, count: int = 8, scale: int = 8):
    """One sample's x0 estimate at `count` evenly spaced steps, left to right (images only)."""
    chosen = picks(len(x0_hat), count)
    return png.grid_image(np.asarray(x0_hat)[chosen, sample], nrow=len(chosen), scale=scale), chosen
