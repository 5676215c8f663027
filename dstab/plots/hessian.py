"""Hessian spectra: overlaid SLQ densities and the top eigenvalues (pages), the density as a PNG (CLI)."""

from __future__ import annotations

import numpy as np

from . import KIND_COLOURS, png
from .tables import probe_text


def spectral_density(results: dict, decades: float = 8.0):
    """Overlaid SLQ densities on a log scale showing `decades` below the highest peak (the Gaussian
    tails of the broadened density fall to 1e-80 and would squash the picture otherwise);
    `results` maps kind -> (label, cache.Result)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    top = max(float(np.max(res.arrays["density"])) for _, res in results.values())
    for kind, (label, res) in results.items():
        fig.add_scatter(
            x=res.arrays["density_grid"], y=res.arrays["density"], name=f"{label} ({probe_text(res.params)})",
            line={"color": KIND_COLOURS.get(kind)},
        )  # fmt: skip
    fig.update_layout(
        title="Eigenvalue spectral density (SLQ)", xaxis_title="eigenvalue", yaxis_title="density", yaxis_type="log",
        yaxis_range=[np.log10(top) - decades, np.log10(top) + 0.3], height=420,
    )  # fmt: skip
    return fig


def top_eigenvalues(results: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    for kind, (label, res) in results.items():
        vals = res.arrays["top_eigenvalues"]
        fig.add_bar(
            x=[f"lambda_{i + 1}" for i in range(len(vals))], y=vals, name=label, marker_color=KIND_COLOURS.get(kind)
        )
    fig.update_layout(title="Top eigenvalues (Lanczos)", barmode="group", yaxis_title="eigenvalue", height=420)
    return fig


def density_png(results: dict):
    """The densities on a log scale with the top eigenvalues ticked; `results` as `spectral_density`'s."""
    grid = next(iter(results.values()))[1].arrays["density_grid"]
    lines, marks = {}, []
    for label, res in results.values():
        lines[f"{label} ({probe_text(res.params)}) density (SLQ)"] = np.interp(
            grid, res.arrays["density_grid"], res.arrays["density"], left=np.nan, right=np.nan)  # fmt: skip
        marks.extend(float(v) for v in res.arrays["top_eigenvalues"])
    title = ", ".join(label for label, _ in results.values())
    return png.line_image(grid, lines, title, log_y=True, marks=marks)
