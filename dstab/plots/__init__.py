"""Every figure of dstab, for the CLI and the pages alike: plotly figures and plain PNGs (PIL).

One module per analysis (surface, curve, hessian, consistency, trajectory,
runs), plus `png` (the PIL primitives: image grids, scatter panels, line
charts, heatmaps) and `tables` (the rows of numbers shown beside a figure).
Figures only draw: every number they show is computed in dstab.analysis or
dstab.training and handed in. No streamlit here; plotly is imported by the
modules that draw with it.

DM and GAN share every axis they are compared on; colours are fixed by kind
(DM blue, GAN orange) everywhere, so a glance tells which is which.
"""

from __future__ import annotations

from pathlib import Path

KIND_COLOURS = {"dm": "#1f77b4", "gan": "#ff7f0e", "x0": "#2ca02c"}


def write_html(fig, path: str | Path) -> Path:
    """A plotly figure as HTML; plotly.min.js is written once beside it, not fetched from a CDN
    (dstab runs offline)."""
    path = Path(path)
    fig.write_html(str(path), include_plotlyjs="directory")
    return path


_png_server = False


def write_png(fig, path: str | Path, scale: float = 2.0) -> Path:
    """A plotly figure as PNG, drawn by plotly's own renderer (kaleido drives the system Chromium,
    offline), so the CLI's file is the page's figure. One browser per process, started on the
    first figure (seconds) and reused (about a second a figure)."""
    global _png_server
    import atexit

    import kaleido
    import plotly.io as pio

    if not _png_server:
        kaleido.start_sync_server(silence_warnings=True)
        atexit.register(kaleido.stop_sync_server, silence_warnings=True)
        _png_server = True
    import warnings

    path = Path(path)
    width, height = fig.layout.width or 900, fig.layout.height or 500
    with warnings.catch_warnings():  # plotly warns that the server ignores its launch options: none are given
        warnings.filterwarnings("ignore", message="The kopts argument is ignored")
        path.write_bytes(pio.to_image(fig, format="png", width=width, height=height, scale=scale))
    return path
