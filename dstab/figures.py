"""Small PNG charts drawn with PIL (no plotting library): the CLI's figures for curves."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def line_image(
    x: np.ndarray,
    curves: dict[str, np.ndarray],
    title: str = "",
    log_y: bool = False,
    marks: list[float] | None = None,
    size: tuple[int, int] = (640, 400),
) -> Image.Image:
    """Curves y(x) over a shared x axis with min/max labels; `marks` draws vertical ticks (e.g. eigenvalues).
    log_y plots log10(max(y, 1e-12 * max y)), as spectral density plots do."""
    w, h = size
    left, right, top, bottom = 70, 20, 30, 40
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    ys = {k: np.asarray(v, dtype=float) for k, v in curves.items()}
    if log_y:
        peak = max(float(np.max(v)) for v in ys.values())
        ys = {k: np.log10(np.maximum(v, 1e-12 * max(peak, 1e-300))) for k, v in ys.items()}
    lo, hi = min(float(v.min()) for v in ys.values()), max(float(v.max()) for v in ys.values())
    hi = hi if hi > lo else lo + 1.0
    x0, x1 = float(np.min(x)), float(np.max(x))
    x1 = x1 if x1 > x0 else x0 + 1.0

    def px(xv, yv):
        return left + (xv - x0) / (x1 - x0) * (w - left - right), h - bottom - (yv - lo) / (hi - lo) * (
            h - top - bottom
        )

    draw.rectangle((left, top, w - right, h - bottom), outline=(0, 0, 0))
    for m in marks or []:
        mx, _ = px(m, lo)
        draw.line((mx, h - bottom, mx, h - bottom - 8), fill=(214, 39, 40), width=2)
    for i, (name, y) in enumerate(ys.items()):
        colour = COLOURS[i % len(COLOURS)]
        draw.line([px(a, b) for a, b in zip(x, y)], fill=colour, width=2)
        draw.text((left + 8, top + 6 + 14 * i), name, fill=colour)
    ylab = "log10 " if log_y else ""
    draw.text((4, top), f"{ylab}{hi:.3g}", fill=(0, 0, 0))
    draw.text((4, h - bottom - 10), f"{ylab}{lo:.3g}", fill=(0, 0, 0))
    draw.text((left, h - bottom + 6), f"{x0:.4g}", fill=(0, 0, 0))
    draw.text((w - right - 60, h - bottom + 6), f"{x1:.4g}", fill=(0, 0, 0))
    draw.text((left, 8), title, fill=(0, 0, 0))
    return img
