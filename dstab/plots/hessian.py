"""Hessian spectra: overlaid SLQ densities and the top eigenvalues (the pages; the CLI's PNG is the density figure)."""

from __future__ import annotations

import numpy as np

from . import KIND_COLOURS, LEGEND_BELOW
from .tables import probe_text

DENSITY_AXES = ("one axis", "each its own range")


def spectral_density(results: dict, decades: float = 8.0, log_y: bool = True, axes: str = DENSITY_AXES[0]):
    """Overlaid SLQ densities; `results` maps kind -> (label, cache.Result). log_y: a log scale showing
    `decades` below the highest peak (the Gaussian tails of the broadened density fall to 1e-80 and would
    squash the picture otherwise); linear: where the mass is. `axes`: one eigenvalue axis for all, or
    each model in its own panel over its own range (a DM whose eigenvalues sit near 0 is a spike on an axis
    that spans a GAN's)."""
    import plotly.graph_objects as go

    from .subplots import grid

    own = axes == DENSITY_AXES[1] and len(results) > 1
    layout, panels = grid(len(results), len(results), 0.1, 0.0) if own else ({}, [("x", "y")] * len(results))
    fig = go.Figure(layout=layout)
    top = max(float(np.max(res.arrays["density"])) for _, res in results.values())
    for (kind, (label, res)), (x, y) in zip(results.items(), panels):
        fig.add_scatter(
            x=res.arrays["density_grid"],
            y=res.arrays["density"],
            name=f"{label} ({probe_text(res.params)})",
            line={"color": KIND_COLOURS.get(kind)},
            xaxis=x,
            yaxis=y,
        )
    for x, y in dict.fromkeys(panels):
        xa, ya = f"xaxis{x[1:]}", f"yaxis{y[1:]}"
        fig.layout[xa].update(title="eigenvalue", nticks=6)
        if log_y:
            fig.layout[ya].update(type="log", range=[np.log10(top) - decades, np.log10(top) + 0.3])
        fig.layout[ya].update(title="density" if y == "y" else None, exponentformat="power")
    fig.update_layout(
        title=f"Eigenvalue spectral density (SLQ), {'log' if log_y else 'linear'} density", height=500, **LEGEND_BELOW
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
    fig.update_layout(
        title="Top eigenvalues (Lanczos)", barmode="group", yaxis_title="eigenvalue", height=460, **LEGEND_BELOW
    )
    return fig


def block_spectra(results: dict):
    """Where the curvature sits, model beside model: per block (UNet stages by resolution, attention apart;
    GAN layers) lambda_1 of the block's diagonal Hessian block (top row) and its Hutchinson trace with
    the standard error (bottom row); `results` maps kind -> (label, cache.Result) holding meta["blocks"].
    A block whose lambda_1 is unverified or unconverged is marked so in its hover text."""
    import plotly.graph_objects as go

    from .subplots import grid

    shown = [(kind, label, res.meta["blocks"]) for kind, (label, res) in results.items() if res.meta.get("blocks")]
    titles = [f"{label}: lambda_1 per block" for _, label, _ in shown] + [f"{label}: trace" for _, label, _ in shown]
    layout, axes = grid(2 * len(shown), max(1, len(shown)), 0.08, 0.16, titles=titles, font_size=12)
    fig = go.Figure(layout={**layout, "height": 620, "showlegend": False, "title": "Per-block spectra"})
    for i, (kind, label, blocks) in enumerate(shown):
        names = [b["block"] for b in blocks]
        notes = [
            f"{b['block']}: n = {b['n_params']:,}, lambda_1 {b['lambda_1']:.4g} +- {b['lambda_1_bound']:.2g} "
            f"({b['verification'] if b['lambda_1_converged'] else 'not converged'})"
            for b in blocks
        ]
        colour = KIND_COLOURS.get(kind)
        top, bottom = axes[i], axes[len(shown) + i]
        fig.add_bar(
            x=names,
            y=[b["lambda_1"] for b in blocks],
            marker_color=colour,
            hovertext=notes,
            xaxis=top[0],
            yaxis=top[1],
            name=label,
        )
        fig.add_bar(
            x=names,
            y=[b["trace"] for b in blocks],
            marker_color=colour,
            opacity=0.6,
            error_y={"type": "data", "array": [b["trace_stderr"] for b in blocks]},
            xaxis=bottom[0],
            yaxis=bottom[1],
            name=label,
        )
    return fig
