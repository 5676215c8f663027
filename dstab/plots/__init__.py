"""Every figure of dstab, for the CLI and the pages alike: plotly figures and plain PNGs (PIL).

One module per analysis (surface, curve, hessian, consistency, trajectory,
runs, compare), plus `figpng` (a plotly figure as PNG: one look for the CLI
and the pages), `png` (sample grids and scatter panels) and `tables` (the
rows of numbers shown beside a figure).
Figures only draw: every number they show is computed in dstab.analysis or
dstab.training and handed in. No streamlit here; plotly is imported by the
modules that draw with it.

DM and GAN share every axis they are compared on; colours are fixed by kind
(DM blue, GAN orange) everywhere, so a glance tells which is which.
"""

from __future__ import annotations

from pathlib import Path

KIND_COLOURS = {"dm": "#1f77b4", "gan": "#ff7f0e", "x0": "#2ca02c"}
# a legend under the plot, always shown: a long model name beside the plot squeezed it to a sliver, and
# plotly hides the legend of a one-trace figure (the DM's curve while the GAN's waits for Compute)
LEGEND_BELOW = {"showlegend": True, "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}}


def write_html(fig, path: str | Path) -> Path:
    """A plotly figure as HTML; plotly.min.js is written once beside it, not fetched from a CDN
    (dstab runs offline)."""
    from plotly.offline import get_plotlyjs

    from ..fileio import atomic_write_bytes, save_with

    path = Path(path)
    bundle = path.parent / "plotly.min.js"
    if not bundle.exists():  # plotly would write it in place: a full disk would leave half of it for good
        atomic_write_bytes(bundle, get_plotlyjs().encode())
    return save_with(path, lambda tmp: fig.write_html(str(tmp), include_plotlyjs="directory"))
