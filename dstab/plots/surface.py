"""Loss surfaces: the 3-D surface and the contour map a page shows, and the PNG the CLI writes beside them.

Raw losses of a DM and a GAN are not comparable, so surfaces are drawn as the
relative rise (L - L0) / |L0| over the centre loss L0
(`landscape.rise_over_centre`), on one colour and z scale +-zmax shared by the
surfaces compared (a single surface: its own).
"""

from __future__ import annotations

import numpy as np

from . import png
from .tables import probe_text


def title(label: str, meta: dict) -> str:
    return f"{label} ({probe_text(meta)}), r = {meta['radius']:g}"


def zmax_of(rises) -> float:
    """The shared half-range of the colour and z scale of some relative-rise grids."""
    return max(float(np.nanmax(np.abs(r))) for r in rises) or 1.0


def surface_3d(a: np.ndarray, b: np.ndarray, rel: np.ndarray, title: str, zmax: float, kind: str = "dm"):
    import plotly.graph_objects as go

    fig = go.Figure(go.Surface(x=b, y=a, z=rel, cmin=-zmax, cmax=zmax, colorscale="RdBu_r", showscale=False))
    fig.update_layout(
        title=title, height=420, margin={"l": 0, "r": 0, "b": 0, "t": 40},
        scene={"zaxis": {"range": [-zmax, zmax], "title": "(L - L0)/|L0|"}, "xaxis_title": "d2", "yaxis_title": "d1"},
    )  # fmt: skip
    return fig


def contour(a: np.ndarray, b: np.ndarray, rel: np.ndarray, title: str, zmax: float):
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Contour(x=b, y=a, z=rel, zmin=-zmax, zmax=zmax, colorscale="RdBu_r", colorbar={"title": "rel. rise"})
    )
    fig.add_scatter(x=[0], y=[0], mode="markers", marker={"symbol": "x", "color": "black"}, name="trained weights")
    fig.update_layout(title=title, height=420, xaxis_title="d2", yaxis_title="d1", showlegend=False)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def heatmap_png(rel: np.ndarray, title: str, zmax: float, scale: int = 16):
    """The contour map's colours as a PNG: rows along d1 (top: -r), columns along d2, centre marked."""
    return png.heatmap_image(rel, -zmax, zmax, png.RDBU_R, scale, title)
