"""Consistency: the sample grid (rows: models, columns: one shared noise each) and the PSNR matrix."""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import png


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
        )  # fmt: skip
    )
    fig.update_layout(title=f"{kind.upper()} PSNR matrix (mean over samples)", height=380, yaxis_autorange="reversed")
    return fig
