"""The curves figure of a `compare` result (every number comes from dstab.experiments.compare): per
variant the geometric mean over seeds with its Student-t 90% band and each seed's curve faint, its
repeat evaluations (other noise seeds) as open markers, the ladder's levels as dotted lines and the
metric's real-vs-reference floor as a grey band; against iterations, images seen, CPU seconds or
wall-clock seconds. One plotly figure for the page, the HTML and the CLI's PNG alike; a variant
has the same colour everywhere (`variant_colour`)."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from ..metricnames import metric_label

# the speed-up experiment's variants keep these colours on every chart (page, HTML, PNG)
VARIANT_COLOURS = {
    "baseline": "#1f77b4",
    "mdlrc-clts": "#d62728",
    "clts": "#2ca02c",
    "lrc-only": "#9467bd",
    "md-lrc": "#ff7f0e",
    "lr-matched": "#8c564b",
    "md": "#e377c2",
    "cosine": "#7f7f7f",
    "debias": "#bcbd22",
    "lognormal": "#17becf",
    "edm": "#393b79",
    "logit-normal": "#637939",
    "laplace": "#8c6d31",
    "speed": "#843c39",
    "immiscible": "#7b4173",
}
SPARE = ["#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#6baed6", "#fd8d3c", "#74c476", "#9e9ac8"]
FLOOR_COLOUR = "rgba(120,120,120,0.25)"


def variant_colour(label: str) -> str:
    """The preset's colour for a plain preset label, else one fixed by the label (a sweep's
    'mdlrc-clts lr=0.002' must not take its preset's colour: both may be on one chart)."""
    return VARIANT_COLOURS.get(label) or SPARE[zlib.crc32(label.encode()) % len(SPARE)]


def _rgba(hex_colour: str, a: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{a})"


def log_ticks(lo: float, hi: float, least: int = 4) -> list[float]:
    """Tick values for a log axis from lo to hi (> 0): 1-2-5 per decade, finer (1-2-3-5-7, then every
    digit) until there are at least `least`, then every value between when still fewer."""
    for mantissas in ((1, 2, 5), (1, 2, 3, 5, 7), (1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [
            m * 10.0**e
            for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
            for m in mantissas
            if lo <= m * 10.0**e <= hi
        ]
        if len(ticks) >= least:
            return ticks
    return list(np.geomspace(lo, hi, least))


def _tick_text(v: float) -> str:
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.1e}"


def x_values(v: dict, axis: str):
    """The variant's x at each evaluation on `axis`, None when its runs did not record that clock."""
    return v["steps"] if axis == "iterations" else v.get(axis)


def available_axis(result: dict, axis: str) -> str:
    """`axis`, or iterations when some variant has no record of it (runs without cpu_s)."""
    return axis if all(x_values(v, axis) is not None for v in result["variants"].values()) else "iterations"


def _positive(result: dict) -> bool:
    return all(min(v["low"]) > 0 for v in result["variants"].values())


def curves_figure(result: dict, axis: str = "iterations", log_y: bool = True):
    """The floor band first (beneath), then per variant its t-band, faint seeds, repeat evaluations and
    mean, then the ladder's levels. Every element is a trace (no shapes or annotations), so kaleido and
    figpng's PIL drawing show the same figure."""
    import plotly.graph_objects as go

    shown = available_axis(result, axis)
    log = log_y and _positive(result)
    variants = result["variants"]
    xs = [x for v in variants.values() for x in x_values(v, shown)]
    span = [min(xs), max(xs)]
    ys = [y for v in variants.values() for s in (v["low"], v["high"], *v["per_seed"].values()) for y in s]
    lo, hi = _y_range(result, ys, log)
    fig = go.Figure()
    _floor(fig, result, span, lo)
    for lab, v in variants.items():
        _variant(fig, lab, v, x_values(v, shown))
    _levels(fig, result, span)
    _repeat_legend(fig, result)
    metric = result["metric_label"]
    better = "higher" if result["higher_is_better"] else "lower"
    title = f"{result['group']}: {metric}" + ("" if shown == axis else f" ({axis} not recorded: vs iterations)")
    fig.update_layout(
        title=title,
        xaxis_title=result["axes"][shown],
        yaxis_title=f"{metric_label(result['metric'], short=True)} ({better} is better"
        + (", log scale)" if log else ")"),
        legend={"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top"},
        width=980,
        height=640,
    )
    if log:
        ticks = log_ticks(lo, hi)
        fig.update_yaxes(
            type="log",
            range=[math.log10(lo), math.log10(hi)],
            tickvals=ticks,
            ticktext=[_tick_text(t) for t in ticks],
        )
    else:
        fig.update_yaxes(range=[lo, hi])
    return fig


def _variant(fig, lab: str, v: dict, x: list) -> None:
    import plotly.graph_objects as go

    c = variant_colour(lab)
    band = go.Scatter(
        x=x + x[::-1],
        y=v["high"] + v["low"][::-1],
        fill="toself",
        line={"width": 0},
        fillcolor=_rgba(c, 0.18),
        hoverinfo="skip",
        showlegend=False,
        legendgroup=lab,
    )
    fig.add_trace(band)
    for seed, y in v["per_seed"].items():
        faint = {"color": _rgba(c, 0.3), "width": 1}
        fig.add_trace(
            go.Scatter(x=x, y=y, mode="lines", line=faint, name=f"{lab} seed {seed}", showlegend=False, legendgroup=lab)
        )
    for seed, pts in v.get("repeats", {}).items():
        steps = np.array([p[0] for p in pts], dtype=float)
        fig.add_trace(
            go.Scatter(
                x=np.interp(steps, v["steps"], x).tolist(),
                y=[p[1] for p in pts],
                mode="markers",
                marker={"symbol": "circle-open", "color": c, "size": 6},
                name=f"{lab} seed {seed}, repeat evaluation (other noise seeds)",
                showlegend=False,
                legendgroup=lab,
            )
        )
    name = f"{lab} (mean of {len(v['seeds'])}, 90% t-band)"
    fig.add_trace(
        go.Scatter(x=x, y=v["mean"], mode="lines", line={"color": c, "width": 2.5}, name=name, legendgroup=lab)
    )


def _band(result: dict) -> dict | None:
    f = result.get("floor")
    return f if f and "top" in f else None


def _y_range(result: dict, ys: list, log: bool) -> tuple[float, float]:
    """A y range that holds every curve, the ladder and the floor band (on a log axis a band from 0
    or below starts a little under its top)."""
    band = _band(result)
    ys = [*ys, *result["ladder"]["levels"]]
    pos = [y for y in ys if y > 0] if log else ys
    lo, hi = min(pos), max(pos)
    if band and log:
        lo = min(lo, band["low"] if band["low"] > 0 else band["top"] / 3)
    elif band:
        lo = min(lo, band["low"])
    return (lo / 1.15, hi * 1.15) if log else (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))


def _levels(fig, result: dict, span: list) -> None:
    """The ladder's levels: dotted lines across the run, their values in the legend."""
    import plotly.graph_objects as go

    levels = result["ladder"]["levels"]
    style = {"dash": "dot", "color": "rgba(0,0,0,0.55)", "width": 1}
    name = "ladder levels: " + ", ".join(f"{lv:.4g}" for lv in levels)
    for i, level in enumerate(levels):
        fig.add_trace(
            go.Scatter(
                x=span,
                y=[level, level],
                mode="lines",
                line=style,
                name=name if i == 0 else f"ladder {i + 1}: {level:.4g}",
                legendgroup="ladder",
                showlegend=i == 0,
                hovertemplate=f"ladder {i + 1}: {level:.4g}<extra></extra>",
            )
        )


def _floor(fig, result: dict, span: list, lo: float) -> None:
    """The metric's floor: a grey band across the run from mean - k sd (the axis' bottom if lower)
    to mean + k sd."""
    import plotly.graph_objects as go

    band = _band(result)
    if not band:
        return
    bottom = max(band["low"], lo)
    name = (
        f"floor: real data vs reference ({band['n']:.0f} samples), {band['mean']:.2g} +- "
        f"{result['protocol']['floor_sd']:g} x {band['sd']:.2g}; values below its top drawn at it"
    )
    fig.add_trace(
        go.Scatter(
            x=[span[0], span[1], span[1], span[0]],
            y=[bottom, bottom, band["top"], band["top"]],
            fill="toself",
            fillcolor=FLOOR_COLOUR,
            line={"width": 0},
            mode="lines",
            name=name,
            hoverinfo="skip",
        )
    )


def _repeat_legend(fig, result: dict) -> None:
    import plotly.graph_objects as go

    if any(v.get("repeats") for v in result["variants"].values()):
        marker = {"symbol": "circle-open", "color": "black", "size": 6}
        name = "repeat evaluation, other noise seeds (the metric's own noise)"
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=marker, name=name))


def curves_png(result: dict, axis: str, path: str | Path) -> Path:
    """The same figure as the page shows, as PNG (figpng: kaleido, or its PIL drawing without a browser)."""
    from . import figpng

    return figpng.write_png(curves_figure(result, axis), path, scale=1)
