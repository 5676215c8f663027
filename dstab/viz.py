"""PNG output without plotting libraries: image grids and 2-D scatter plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from . import budgets


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def grid_image(images: torch.Tensor, nrow: int | None = None, scale: int = 1, pad: int = 1) -> Image.Image:
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


def scatter_image(
    points: torch.Tensor, size: int = 256, extent: float = 3.5, reference: torch.Tensor | None = None
) -> Image.Image:
    """Points in [-extent, extent]^2; optional reference points drawn in grey beneath."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(p):
        return ((p[:, 0] + extent) / (2 * extent) * size, (extent - p[:, 1]) / (2 * extent) * size)

    for pts, colour in ((reference, (200, 200, 200)), (points, (31, 119, 180))):
        if pts is None:
            continue
        xs, ys = px(pts.detach().float().cpu().numpy())
        for x, y in zip(xs, ys):
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=colour)
    return img


def save_samples(samples: torch.Tensor, path: str | Path, scale: int = 4) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = grid_image(samples, scale=scale) if samples.ndim == 4 else scatter_image(samples)
    img.save(path)
    return path
