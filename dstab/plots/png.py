"""PNG figures without a plotting library: image grids, 2-D scatter panels, line charts and heatmaps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .. import budgets

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
# colour-map anchors, interpolated linearly: viridis (matplotlib's, public domain) and a blue-white-red
# diverging map like plotly's RdBu_r (negative blue, zero white, positive red)
VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)
RDBU_R = np.array([[5, 10, 172], [106, 137, 247], [220, 220, 220], [230, 145, 90], [178, 10, 28]], dtype=np.float64)


def to_uint8(images) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8."""
    x = np.asarray(images.detach().float().cpu().numpy() if hasattr(images, "detach") else images, dtype=np.float32)
    x = np.round((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8)
    return x.transpose(0, 2, 3, 1)


def rgb(img) -> np.ndarray:
    """A PIL image as an (H, W, 3) uint8 array (grey repeated), as plotly's Image trace takes it."""
    arr = np.asarray(img)
    return np.repeat(arr[..., None], 3, axis=2) if arr.ndim == 2 else arr


def data_uri(img) -> str:
    """A PIL image as a PNG data URI (plotly's Image trace `source`: a few kB, where `z` sends every pixel
    as a JSON number and plotly validates each array)."""
    import base64
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def grid_image(images, nrow: int | None = None, scale: int = 1, pad: int = 1) -> Image.Image:
    arr = to_uint8(images)
    n, h, w, c = arr.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    canvas = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        canvas[y : y + h, x : x + w] = arr[i]
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    budgets.check_count(img.width * img.height * scale * scale, "DSTAB_MAX_IMAGE_PIXELS", f"a grid at scale {scale}")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def _numpy(points) -> np.ndarray:
    return points.detach().float().cpu().numpy() if hasattr(points, "detach") else np.asarray(points, dtype=float)


def scatter_image(points, size: int = 256, extent: float = 3.5, reference=None) -> Image.Image:
    """Points in [-extent, extent]^2; optional reference points drawn in grey beneath."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(p):
        return ((p[:, 0] + extent) / (2 * extent) * size, (extent - p[:, 1]) / (2 * extent) * size)

    for pts, colour in ((reference, (200, 200, 200)), (points, (31, 119, 180))):
        if pts is None:
            continue
        xs, ys = px(_numpy(pts))
        for x, y in zip(xs, ys):
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=colour)
    return img


def samples_image(samples, scale: int = 4) -> Image.Image:
    """A grid of images, or a scatter panel of 2-D points."""
    return grid_image(samples, scale=scale) if samples.ndim == 4 else scatter_image(samples)


def save_samples(samples, path: str | Path, scale: int = 4) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples_image(samples, scale).save(path)
    return path


def colours(values: np.ndarray, anchors: np.ndarray = VIRIDIS) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB along a colour map's anchors."""
    x = np.clip(np.nan_to_num(values, nan=0.0), 0, 1) * (len(anchors) - 1)
    lo = np.floor(x).astype(int).clip(0, len(anchors) - 2)
    frac = (x - lo)[..., None]
    return ((1 - frac) * anchors[lo] + frac * anchors[lo + 1]).round().astype(np.uint8)


def heatmap_image(
    z: np.ndarray, zmin: float, zmax: float, anchors: np.ndarray = VIRIDIS, scale: int = 16, title: str = ""
) -> Image.Image:
    """z (rows top to bottom) coloured over [zmin, zmax], upscaled, the centre marked with a black cross,
    a colour bar with its end values on the right."""
    span = zmax - zmin if zmax > zmin else 1.0
    cells = Image.fromarray(colours((z - zmin) / span, anchors))
    cells = cells.resize((cells.width * scale, cells.height * scale), Image.NEAREST)
    top, bar = 24 if title else 4, 60
    img = Image.new("RGB", (cells.width + bar, cells.height + top + 4), "white")
    img.paste(cells, (0, top))
    draw = ImageDraw.Draw(img)
    cx, cy = (z.shape[1] // 2 + 0.5) * scale, top + (z.shape[0] // 2 + 0.5) * scale
    draw.line((cx - scale, cy, cx + scale, cy), fill="black", width=2)
    draw.line((cx, cy - scale, cx, cy + scale), fill="black", width=2)
    ramp = colours(np.linspace(1, 0, cells.height)[:, None].repeat(10, axis=1), anchors)
    img.paste(Image.fromarray(ramp), (cells.width + 6, top))
    draw.text((cells.width + 18, top), f"{zmax:.3g}", fill="black")
    draw.text((cells.width + 18, top + cells.height - 10), f"{zmin:.3g}", fill="black")
    if title:
        draw.text((4, 6), title, fill="black")
    return img


def line_image(
    x: np.ndarray,
    curves: dict[str, np.ndarray],
    title: str = "",
    log_y: bool = False,
    marks: list[float] | None = None,
    size: tuple[int, int] = (640, 400),
    colours: list[tuple[int, int, int]] | None = None,
    legend: int = 0,
) -> Image.Image:
    """Curves y(x) over a shared x axis with min/max labels; `marks` draws vertical ticks (e.g. eigenvalues).
    log_y plots log10(max(y, 1e-12 * max y)), as spectral density plots do; non-finite points are skipped.
    `colours`: one per curve (default COLOURS, cycled); `legend` > 0: a right margin that wide holds the
    curve names, never over a curve (default: names in the plot's top-left corner)."""
    w, h = size
    left, right, top, bottom = 70, 20 + legend, 30, 40
    colours = colours or COLOURS
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    ys = {k: np.asarray(v, dtype=float) for k, v in curves.items()}
    if log_y:
        peak = max(float(np.nanmax(v)) for v in ys.values())
        ys = {k: np.log10(np.maximum(v, 1e-12 * max(peak, 1e-300))) for k, v in ys.items()}
    finite = np.concatenate([v[np.isfinite(v)] for v in ys.values()] or [np.zeros(1)])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    x = np.asarray(x, dtype=float)
    x0, x1 = float(np.min(x)), float(np.max(x))
    x1 = x1 if x1 > x0 else x0 + 1.0

    def px(xv, yv):
        return (
            left + (xv - x0) / (x1 - x0) * (w - left - right),
            h - bottom - (yv - lo) / (hi - lo) * (h - top - bottom),
        )

    draw.rectangle((left, top, w - right, h - bottom), outline=(0, 0, 0))
    for m in marks or []:
        mx, _ = px(m, lo)
        draw.line((mx, h - bottom, mx, h - bottom - 8), fill=(214, 39, 40), width=2)
    for i, (name, y) in enumerate(ys.items()):
        colour = colours[i % len(colours)]
        pts = [px(a, b) for a, b in zip(x, y) if np.isfinite(b)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        draw.text((w - right + 10 if legend else left + 8, top + 6 + 14 * i), name, fill=colour)
    ylab = "log10 " if log_y else ""
    draw.text((4, top), f"{ylab}{hi:.3g}", fill=(0, 0, 0))
    draw.text((4, h - bottom - 10), f"{ylab}{lo:.3g}", fill=(0, 0, 0))
    draw.text((left, h - bottom + 6), f"{x0:.4g}", fill=(0, 0, 0))
    draw.text((w - right - 60, h - bottom + 6), f"{x1:.4g}", fill=(0, 0, 0))
    draw.text((left, 8), title, fill=(0, 0, 0))
    return img
