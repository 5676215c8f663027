"""Figures of a `compare` result (every number comes from dstab.experiments.compare): per
variant the mean over seeds with its bootstrap 90% band and the raw per-seed curves faint, against
iterations, images seen or wall-clock seconds. Plotly for the page and HTML, PIL for PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..fileio import save_with

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75)]


def _x(v: dict, axis: str) -> list:
    return v["steps"] if axis == "iterations" else v[axis]


def _rgba(c, a: float) -> str:
    return f"rgba({c[0]},{c[1]},{c[2]},{a})"


def curves_figure(result: dict, axis: str = "iterations", log_y: bool = True):
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (lab, v) in enumerate(result["variants"].items()):
        c, x = PALETTE[i % len(PALETTE)], _x(v, axis)
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=v["high"] + v["low"][::-1],
                fill="toself",
                line={"width": 0},
                fillcolor=_rgba(c, 0.18),
                hoverinfo="skip",
                showlegend=False,
                legendgroup=lab,
            )
        )
        for seed, ys in v["per_seed"].items():
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=ys,
                    mode="lines",
                    line={"color": _rgba(c, 0.3), "width": 1},
                    name=f"{lab} seed {seed}",
                    showlegend=False,
                    legendgroup=lab,
                )
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=v["mean"],
                mode="lines",
                line={"color": _rgba(c, 1), "width": 2.5},
                name=f"{lab} (mean of {len(v['seeds'])})",
                legendgroup=lab,
            )
        )
    fig.add_hline(y=result["plateau"], line_dash="dot", annotation_text=f"{result['reference']} plateau")
    fig.update_layout(
        title=f"{result['group']}: {result['metric_label']}",
        xaxis_title=result["axes"][axis],
        yaxis_title=result["metric"].split("@")[0],
        yaxis_type="log" if log_y and _positive(result) else None,
    )
    return fig


def _positive(result: dict) -> bool:
    return all(min(v["low"]) > 0 for v in result["variants"].values())


def curves_png(result: dict, axis: str, path: str | Path, size=(820, 440)) -> Path:
    w, h = size
    left, right, top, bottom = 70, 190, 30, 40  # the legend lives in the right margin, never over a curve
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img, "RGBA")
    log = _positive(result)
    tf = np.log10 if log else (lambda a: np.asarray(a, dtype=float))
    vs = result["variants"].values()
    ys = np.concatenate(
        [tf(np.asarray(y, dtype=float)) for v in vs for y in [v["low"], v["high"], *v["per_seed"].values()]]
    )
    xs = np.concatenate([np.asarray(_x(v, axis), dtype=float) for v in vs])
    lo, hi = float(ys.min()), float(ys.max())
    hi = hi if hi > lo else lo + 1.0
    x0, x1 = float(xs.min()), float(xs.max())
    x1 = x1 if x1 > x0 else x0 + 1.0

    def pts(x, y):
        y = tf(np.asarray(y, dtype=float))
        return [
            (left + (a - x0) / (x1 - x0) * (w - left - right), h - bottom - (b - lo) / (hi - lo) * (h - top - bottom))
            for a, b in zip(x, y)
        ]

    draw.rectangle((left, top, w - right, h - bottom), outline=(0, 0, 0))
    for i, (lab, v) in enumerate(result["variants"].items()):
        c, x = PALETTE[i % len(PALETTE)], _x(v, axis)
        draw.polygon(pts(x, v["high"]) + pts(x[::-1], v["low"][::-1]), fill=(*c, 45))
        for ys_seed in v["per_seed"].values():
            draw.line(pts(x, ys_seed), fill=(*c, 90), width=1)
        draw.line(pts(x, v["mean"]), fill=(*c, 255), width=2)
        ly = top + 6 + 16 * i
        draw.line((w - right + 10, ly + 6, w - right + 30, ly + 6), fill=(*c, 255), width=2)
        draw.text((w - right + 36, ly), f"{lab} (mean of {len(v['seeds'])})", fill=c)
    real = (lambda a: 10.0**a) if log else (lambda a: a)  # tick labels in the metric's own units
    draw.text((4, top), f"{real(hi):.4g}", fill=(0, 0, 0))
    draw.text((4, h - bottom - 10), f"{real(lo):.4g}", fill=(0, 0, 0))
    if log:
        draw.text((4, (top + h - bottom) // 2), "log scale", fill=(0, 0, 0))
    draw.text((left, h - bottom + 6), f"{x0:.4g}", fill=(0, 0, 0))
    draw.text((w - right - 90, h - bottom + 6), f"{x1:.4g} {result['axes'][axis]}", fill=(0, 0, 0))
    draw.text((left, 8), f"{result['group']}: {result['metric']} vs {result['axes'][axis]}", fill=(0, 0, 0))
    return save_with(path, img.save)
