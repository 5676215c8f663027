"""Figures of surfaces and curves: plotly figures (pages, HTML) and plain PNGs (PIL, no matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .interpolation import Curve
from .landscape import Surface

# viridis anchors (matplotlib's, public domain colour map), interpolated linearly
_VIRIDIS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
    dtype=np.float64,
)


def _colours(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB along viridis."""
    x = np.clip(values, 0, 1) * (len(_VIRIDIS) - 1)
    lo = np.floor(x).astype(int).clip(0, len(_VIRIDIS) - 2)
    frac = (x - lo)[..., None]
    return ((1 - frac) * _VIRIDIS[lo] + frac * _VIRIDIS[lo + 1]).round().astype(np.uint8)


def _title(meta: dict) -> str:
    probe = meta.get("probe") or meta.get("probe_a") or {}
    what = probe.get("timesteps") and f"t={probe['timesteps']}" or probe.get("role") and f"role {probe['role']}"
    return f"{probe.get('checkpoint') or probe.get('name', '')} {what or ''}".strip()


def surface_png(s: Surface, path: str | Path, scale: int = 16) -> Path:
    """A log-loss heatmap (rows: first direction, top = -r), centre marked with a white cross."""
    z = np.log10(np.maximum(s.loss, 1e-12))
    finite = np.isfinite(z)
    lo, hi = (z[finite].min(), z[finite].max()) if finite.any() else (0.0, 1.0)
    img = Image.fromarray(_colours((z - lo) / (hi - lo) if hi > lo else np.zeros_like(z)))
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    c = (len(s.alphas) // 2 + 0.5) * scale
    draw.line((c - scale, c, c + scale, c), fill="white", width=2)
    draw.line((c, c - scale, c, c + scale), fill="white", width=2)
    path = Path(path)
    img.save(path)
    return path


def curve_png(c: Curve, path: str | Path, size: tuple[int, int] = (480, 320)) -> Path:
    """The loss against alpha, with the two checkpoints (alpha = 0 and 1) marked."""
    w, h, pad = size[0], size[1], 30
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    y = np.where(np.isfinite(c.loss), c.loss, np.nan)
    lo, hi = np.nanmin(y), np.nanmax(y)
    span = hi - lo if hi > lo else 1.0
    px = lambda a: pad + (a - c.alphas[0]) / (c.alphas[-1] - c.alphas[0]) * (w - 2 * pad)
    py = lambda v: h - pad - (v - lo) / span * (h - 2 * pad)
    draw.rectangle((pad, pad, w - pad, h - pad), outline=(160, 160, 160))
    for a in (0.0, 1.0):
        draw.line((px(a), pad, px(a), h - pad), fill=(200, 200, 200))
    pts = [(px(a), py(v)) for a, v in zip(c.alphas, y) if np.isfinite(v)]
    draw.line(pts, fill=(31, 119, 180), width=2)
    draw.text((pad, 8), f"{_title(c.meta)}  loss {lo:.3g} .. {hi:.3g}", fill="black")
    path = Path(path)
    img.save(path)
    return path


def surface_figure(s: Surface):
    """A plotly 3-D surface with its contour map (log10 loss)."""
    import plotly.graph_objects as go

    z = np.log10(np.maximum(s.loss, 1e-12))
    fig = go.Figure(go.Surface(z=z, x=s.betas, y=s.alphas, colorscale="Viridis", contours={"z": {"show": True}}))
    fig.update_layout(
        title=f"{_title(s.meta)}: log10 loss",
        scene={"xaxis_title": "direction 2", "yaxis_title": "direction 1", "zaxis_title": "log10 loss"},
    )
    return fig


def curve_figure(c: Curve):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=c.alphas, y=c.loss, mode="lines+markers", name="loss"))
    for a, label in ((0.0, "b (alpha = 0)"), (1.0, "a (alpha = 1)")):
        fig.add_vline(x=a, line_dash="dot", annotation_text=label)
    fig.update_layout(title=_title(c.meta), xaxis_title="alpha", yaxis_title="loss")
    return fig


def write_html(fig, path: str | Path) -> Path:
    path = Path(path)
    # plotly.min.js is written once beside the pages, not fetched from a CDN: dstab runs offline
    fig.write_html(str(path), include_plotlyjs="directory")
    return path
