"""PNG images without a plotting library: sample grids and 2-D scatter panels (a chart's PNG: figpng)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .. import budgets
from ..fileio import save_with


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
    return save_with(path, samples_image(samples, scale).save)
