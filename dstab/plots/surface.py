"""Loss surfaces: the 3-D surface and the contour map a page shows (the CLI writes the same two, the
contour map as its PNG) and the small multiples across timesteps.

A DM's centre loss is tiny (0.0002 for digits at t = 900) while a GAN's is near 1, so one shared
scale of the relative rise (L - L0)/|L0| (`landscape.rise_over_centre`) makes the DM look steep and
the GAN a flat sheet. By default each surface therefore gets its own scale, the min-max of its own
loss, with the colour bar in loss units; "shared relative rise", "log loss" and "raw loss" (one
range for both) are the options (`views`). `smoother_sentence` says in words which model is the
smoother by which number.
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


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def smoother_sentence(dm: tuple[str, dict], gan: tuple[str, dict]) -> str:
    """Which of the two surfaces is the smoother, by each number, and why the relative rise can
    disagree. `dm`, `gan`: (label, surface meta with `metrics` and `centre_loss`). A relative rise at or
    below 0 (the loss on the ring at r no higher than at the centre: the weights sit at no minimum of that
    loss, as a GAN's G loss at an equilibrium need not) ranks nothing, and is said so."""
    (dl, d), (gl, g) = dm, gan
    dmet, gmet = d.get("metrics", {}), g.get("metrics", {})
    parts, shape_votes = [], []
    pairs = (("convex fraction", "convex_fraction", True), ("curvature roughness", "curvature_roughness", False))
    for name, k, higher_is_smoother in pairs:
        a, b = dmet.get(k), gmet.get(k)
        if a is None or b is None or not (np.isfinite(a) and np.isfinite(b)) or a == b:
            continue
        winner = dl if (a > b) == higher_is_smoother else gl
        shape_votes.append(winner)
        parts.append(f"{name} {_fmt(a)} vs {_fmt(b)}: {winner}")
    a, b = dmet.get("relative_rise"), gmet.get("relative_rise")
    rises = a is not None and b is not None and np.isfinite(a) and np.isfinite(b) and a != b
    no_minimum = [label for label, x in ((dl, a), (gl, b)) if rises and x <= 0]
    rise_winner = None
    if rises and not no_minimum:
        rise_winner = dl if a < b else gl
        parts.append(f"relative rise {_fmt(a)} vs {_fmt(b)}: {rise_winner}")
    elif rises:
        parts.append(f"relative rise {_fmt(a)} vs {_fmt(b)}: no ranking")
    if not parts:
        return "The two surfaces' smoothness numbers are not available."
    text = f"Smoother surface by each number (DM {dl} vs GAN {gl}): " + "; ".join(parts) + "."
    if no_minimum:
        text += (
            f" {' and '.join(no_minimum)}'s loss is on average no higher at r than at the centre (relative rise "
            "at or below 0): its weights sit at no minimum of this loss (a GAN's G loss at an equilibrium need "
            "not have one), so the rise says nothing about smoothness; the shape numbers (convex fraction, "
            "curvature roughness) still compare."
        )
    elif rise_winner and shape_votes and any(v != rise_winner for v in shape_votes):
        text += (
            f" The relative rise divides by the centre loss, {_fmt(d.get('centre_loss', float('nan')))} for the DM "
            f"against {_fmt(g.get('centre_loss', float('nan')))} for the GAN: a well-fitted DM's small absolute rise "
            "is a large relative one, so it disagrees with the shape numbers (convex fraction, curvature roughness), "
            "which do not depend on the loss's scale."
        )
    return text


def title(label: str, meta: dict) -> str:
    return f"{label} ({probe_text(meta)}), r = {meta['radius']:g}"
