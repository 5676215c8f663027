"""Consistency: the sample grid (rows: models, columns: one shared noise each) and the PSNR matrix; for a
page, all M samples as one zoomable picture, and toy 2-D points linked by their shared noise."""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import png

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross", "star", "pentagon"]


def grid(samples: np.ndarray, scale: int = 4, columns: int = 16) -> Image.Image:
    """N rows (models) x up to `columns` samples of (N, M, C, H, W) images: equal columns share their noise.
    Points (N, M, 2): one scatter panel per model, side by side."""
    s = np.asarray(samples)
    if s.ndim == 5:
        m = min(columns, s.shape[1])
        return png.grid_image(s[:, :m].reshape(-1, *s.shape[2:]), nrow=m, scale=scale)
    panels = [png.scatter_image(s[j]) for j in range(s.shape[0])]
    out = Image.new("RGB", (sum(p.width for p in panels), panels[0].height), "white")
    for j, p in enumerate(panels):
        out.paste(p, (j * p.width, 0))
    return out


def psnr_heatmap(mean: np.ndarray, names: list[str], kind: str):
    """The (N, N) mean-over-samples PSNR matrix (a consistency result's meta["psnr_matrix_db"]); the cap on
    the diagonal is hidden so the colours show pairs."""
    import plotly.graph_objects as go

    mean = np.asarray(mean, dtype=float)
    shown = mean.copy()
    np.fill_diagonal(shown, np.nan)
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=names,
            y=names,
            colorscale="Viridis",
            zmin=0,
            zmax=40,
            colorbar={"title": "PSNR dB"},
            text=np.round(mean, 2),
            texttemplate="%{text}",
        )
    )
    fig.update_layout(title=f"{kind.upper()} PSNR matrix (mean over samples)", height=380, yaxis_autorange="reversed")
    return fig


BAND = 16  # samples per band of the page's grid: M = 32 is two bands of cells twice as large as one row of 32


def image_grid(samples: np.ndarray, names: list[str], title: str, scale: int = 4, band: int = BAND):
    """(N models, M samples, C, H, W) in [-1, 1] as one zoomable picture: a row per model, a column
    per sample; a column shares its noise. All M are shown, `band` columns wide: past that the samples
    go on in another band of N rows below (its rows say which samples they hold)."""
    import plotly.graph_objects as go

    n, m = samples.shape[:2]
    cols = min(m, band)
    bands = -(-m // cols)
    blank = np.ones((n, bands * cols - m, *samples.shape[2:]), dtype=samples.dtype)  # white, as the page
    cells = np.concatenate([samples, blank], axis=1).reshape(n, bands, cols, *samples.shape[2:])
    cells = cells.swapaxes(0, 1).reshape(bands * n * cols, *samples.shape[2:])  # band by band, models in each
    img = png.grid_image(cells, nrow=cols, scale=scale)
    fig = go.Figure(go.Image(z=png.rgb(img), hoverinfo="skip"))
    cell = img.height / (n * bands)
    labels = [
        name if bands == 1 else f"{name} ({b * cols + 1}-{min(m, (b + 1) * cols)})"
        for b in range(bands)
        for name in names
    ]
    fig.update_yaxes(tickvals=[cell * (j + 0.5) for j in range(n * bands)], ticktext=labels, showgrid=False)
    ticks = range(0, cols, max(1, cols // 8))
    fig.update_xaxes(
        tickvals=[img.width / cols * (i + 0.5) for i in ticks],
        ticktext=[" / ".join(str(b * cols + i + 1) for b in range(bands) if b * cols + i < m) for i in ticks],
        title="sample (shared noise)" + (", band by band" if bands > 1 else ""),
    )
    # as tall as the picture is at the page's width (~1100 px), so no blank band above and below it
    height = int(min(900, max(220, 90 + 1100 * img.height / img.width)))
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 40}, dragmode="zoom")
    return fig


def linked_points(samples: np.ndarray, names: list[str], title: str, extent: float = 3.5):
    import plotly.graph_objects as go

    """(N models, M samples, 2) points: one marker symbol per model, one colour per sample, and a faint
    line through the models' points of each sample, so a glance shows where one noise went in each model."""
    n, m = samples.shape[:2]
    fig = go.Figure()
    for i in range(m):
        fig.add_scatter(
            x=samples[:, i, 0],
            y=samples[:, i, 1],
            mode="lines",
            showlegend=False,
            hoverinfo="skip",
            line={"color": PALETTE[i % len(PALETTE)], "width": 1},
            opacity=0.35,
        )
    colours = [PALETTE[i % len(PALETTE)] for i in range(m)]
    for j, name in enumerate(names):
        fig.add_scatter(
            x=samples[j, :, 0],
            y=samples[j, :, 1],
            mode="markers",
            name=name,
            marker={
                "color": colours,
                "symbol": SYMBOLS[j % len(SYMBOLS)],
                "size": 8,
                "line": {"color": "black", "width": 0.5},
            },
            customdata=np.arange(1, m + 1),
            hovertemplate=f"{name}<br>sample %{{customdata}}<extra></extra>",
        )
    fig.update_layout(
        title=title,
        height=560,
        xaxis_range=[-extent, extent],
        yaxis_range=[-extent, extent],
        legend={"orientation": "h", "y": -0.12},
        margin={"t": 40},
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig
