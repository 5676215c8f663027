"""Hessian spectra: overlaid SLQ densities and the top eigenvalues (pages), the density as a PNG (CLI)."""

from __future__ import annotations

import numpy as np

from . import KIND_COLOURS
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
            x=res.arrays["density_grid"],
            y=res.arrays["density"],
            name=f"{label} ({probe_text(res.params)})",
            line={"color": KIND_COLOURS.get(kind)},
        )
    fig.update_layout(
        title="Eigenvalue spectral density (SLQ)",
        xaxis_title="eigenvalue",
        yaxis_title="density",
        yaxis_type="log",
        yaxis_range=[np.log10(top) - decades, np.log10(top) + 0.3],
        height=420,
    )
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
