"""Loss surfaces: the 3-D surface and the contour map a page shows (the CLI writes the same two, the
contour map as its PNG) and the small multiples across timesteps.

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


MULTIPLE_COLUMNS = 3  # 11 panels (9 DM timesteps, the GAN's G and D) in 4 rows, ~250 px each at 1280 x 720


def small_multiples(panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], columns: int = MULTIPLE_COLUMNS):
    """One contour map per (title, alphas, betas, loss): the DM across timesteps beside the GAN's G and D (the
    paper's Fig. 2 and 10). The models' losses differ by orders of magnitude, so each panel is coloured by
    where a point lies in its own loss range, 0 at its minimum and 1 at its maximum, on one shared colour
    bar; each title states its range. Ticks on the outer axes, in units of the directions."""
    import plotly.graph_objects as go

    from .subplots import grid

    rows = max(1, -(-len(panels) // columns))
    titles = [f"<b>{t}</b><br>loss {_range(loss)[0]:.3g} to {_range(loss)[1]:.3g}" for t, _, _, loss in panels]
    layout, axes = grid(len(panels), columns, 0.06, 0.42 / rows if rows > 1 else 0.0, titles, font_size=14)
    for i, (x, y) in enumerate(axes):
        bottom = i + columns >= len(panels)
        layout[f"xaxis{x[1:]}"].update(showticklabels=bottom, nticks=3, title="d2" if bottom else None)
        layout[f"yaxis{y[1:]}"].update(
            showticklabels=i % columns == 0, nticks=3, title="d1" if i % columns == 0 else None
        )
    data = []
    for i, ((_, a, b, loss), (x, y)) in enumerate(zip(panels, axes)):
        lo, hi = _range(loss)
        data.append(
            go.Contour(
                x=b,
                y=a,
                z=(loss - lo) / (hi - lo),
                zmin=0.0,
                zmax=1.0,
                colorscale="Viridis",
                showscale=i == 0,
                colorbar={"title": "position in<br>its own<br>loss range", "tickvals": [0, 0.5, 1]},
                contours={"coloring": "heatmap"},
                line={"width": 0.5},
                xaxis=x,
                yaxis=y,
                customdata=loss,
                hovertemplate="d1 %{y:.2f}, d2 %{x:.2f}: loss %{customdata:.4g}<extra></extra>",
            )
        )
    layout.update(height=300 * rows + 60, margin={"l": 50, "r": 10, "b": 50, "t": 60}, showlegend=False)
    return go.Figure(data=data, layout=layout)


def title(label: str, meta: dict) -> str:
    return f"{label} ({probe_text(meta)}), r = {meta['radius']:g}"
