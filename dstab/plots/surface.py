"""Loss surfaces: the 3-D surface and the contour map a page shows, the small multiples across
timesteps, and the PNG the CLI writes beside them.

A DM's centre loss is tiny (0.0002 for digits at t = 900) while a GAN's is near 1, so one shared
scale of the relative rise (L - L0)/|L0| (`landscape.rise_over_centre`) makes the DM look steep and
the GAN a flat sheet. By default each surface therefore gets its own scale, the min-max of its own
loss, with the colour bar in loss units; "shared relative rise", "log loss" and "raw loss" (one
range for both) are the options (`views`). `smoothness_text.smoother_sentence` says in words which
model is the smoother by which number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.smoothness import rise_over_centre
from ..errors import DstabError
from . import png
from .tables import probe_text

OWN, SHARED_RISE, LOG, RAW = "own loss", "shared relative rise", "log loss", "raw loss"
SCALES = (OWN, SHARED_RISE, LOG, RAW)
SCALE_HELP = (
    "own loss: each surface on the min-max of its own loss (default). shared relative rise: (L - L0)/|L0| "
    "on one scale for both. log loss: log10 of each one's loss, own range. raw loss: one loss range for both."
)


@dataclass(frozen=True)
class View:
    z: np.ndarray
    lo: float
    hi: float
    unit: str  # the colour bar's and z axis' title
    colours: str
    centred: bool = False


def _range(z: np.ndarray) -> tuple[float, float]:
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:  # a flat surface still needs a range to draw in
        pad = abs(lo) * 1e-6 or 1e-12
        lo, hi = lo - pad, hi + pad
    return lo, hi


def _log10(loss: np.ndarray) -> np.ndarray:
    positive = loss[np.isfinite(loss) & (loss > 0)]
    floor = float(positive.min()) if positive.size else 1e-300
    return np.log10(np.clip(loss, floor, None))


def views(losses: dict, scale: str = OWN) -> dict[str, View]:
    """{name: loss grid} -> {name: View} on the chosen scale."""
    if scale not in SCALES:
        raise DstabError(f"unknown surface scale {scale!r}; choose from {', '.join(SCALES)}")
    if scale == SHARED_RISE:
        rel = {k: rise_over_centre(v) for k, v in losses.items()}
        zmax = max((float(np.nanmax(np.abs(v))) for v in rel.values()), default=1.0) or 1.0
        return {k: View(v, -zmax, zmax, "(L - L0)/|L0|", "RdBu_r", True) for k, v in rel.items()}
    if scale == LOG:
        return {k: View(z, *_range(z), "log10 loss", "Viridis") for k, v in losses.items() for z in [_log10(v)]}
    if scale == RAW:
        lo = min(_range(v)[0] for v in losses.values())
        hi = max(_range(v)[1] for v in losses.values())
        return {k: View(v, lo, hi, "loss", "Viridis") for k, v in losses.items()}
    return {k: View(v, *_range(v), "loss", "Viridis") for k, v in losses.items()}


def surface_3d(a: np.ndarray, b: np.ndarray, view: View, title: str):
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Surface(
            x=b,
            y=a,
            z=view.z,
            cmin=view.lo,
            cmax=view.hi,
            colorscale=view.colours,
            colorbar={"title": view.unit, "len": 0.7},
        )
    )
    fig.update_layout(
        title=title,
        height=420,
        margin={"l": 0, "r": 0, "b": 0, "t": 40},
        scene={"zaxis": {"range": [view.lo, view.hi], "title": view.unit}, "xaxis_title": "d2", "yaxis_title": "d1"},
    )
    return fig


def contour(a: np.ndarray, b: np.ndarray, view: View, title: str):
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Contour(
            x=b, y=a, z=view.z, zmin=view.lo, zmax=view.hi, colorscale=view.colours, colorbar={"title": view.unit}
        )
    )
    fig.add_scatter(x=[0], y=[0], mode="markers", marker={"symbol": "x", "color": "black"}, name="trained weights")
    fig.update_layout(title=title, height=420, xaxis_title="d2", yaxis_title="d1", showlegend=False)
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def small_multiples(panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], columns: int = 4):
    """One contour map per (title, alphas, betas, loss), each on its own loss range, which its title
    states: the DM across timesteps beside the GAN's G and D (the paper's Fig. 2 and 10)."""
    import plotly.graph_objects as go

    from .subplots import grid

    rows = max(1, -(-len(panels) // columns))
    titles = [f"{t}<br>{_range(loss)[0]:.3g} to {_range(loss)[1]:.3g}" for t, _, _, loss in panels]
    layout, axes = grid(len(panels), columns, 0.04, 0.12 if rows > 1 else 0.0, titles, font_size=11)
    for k in layout:
        if k.startswith(("xaxis", "yaxis")):
            layout[k]["showticklabels"] = False
    data = []
    for (_, a, b, loss), (x, y) in zip(panels, axes):
        lo, hi = _range(loss)
        data.append(
            go.Contour(
                x=b,
                y=a,
                z=loss,
                zmin=lo,
                zmax=hi,
                colorscale="Viridis",
                showscale=False,
                contours={"coloring": "heatmap"},
                line={"width": 0.5},
                xaxis=x,
                yaxis=y,
            )
        )
    layout.update(height=230 * rows + 40, margin={"l": 10, "r": 10, "b": 10, "t": 50}, showlegend=False)
    return go.Figure(data=data, layout=layout)


def title(label: str, meta: dict) -> str:
    return f"{label} ({probe_text(meta)}), r = {meta['radius']:g}"


def heatmap_png(rel: np.ndarray, title: str, zmax: float, scale: int = 16):
    """The relative rise's colours as a PNG: rows along d1 (top: -r), columns along d2, centre marked."""
    return png.heatmap_image(rel, -zmax, zmax, png.RDBU_R, scale, title)
