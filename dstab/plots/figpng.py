"""A plotly figure as PNG, for the CLI and the pages alike: one look per figure.

`png_bytes(fig)` renders the very figure a page shows. By kaleido, plotly's own renderer (1.x drives
the system's Chromium, offline): one browser per process, started on the first PNG and kept until the
process exits. Where no Chromium is found, or DSTAB_PNG_RENDERER=pil, by `draw`: a small PIL drawing
of the same figure object (its lines, markers, bands, bars, heatmaps and contours in the figure's own
colour scale, its title, axis titles in their units, log axes, ranges, reference lines and legend), so
the colours, labels and units are the figure's whichever draws it. DSTAB_PNG_RENDERER: auto (the
default: kaleido when a Chromium is found), kaleido or pil.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import re
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageColor, ImageDraw, ImageFont

from ..errors import require
from ..fileio import atomic_write_bytes

WIDTH, HEIGHT, SCALE = 900, 500, 2  # the size when a figure sets none; 2x for print
RENDERERS = ("auto", "kaleido", "pil")
_lock = threading.Lock()
_started = False


def renderer() -> str:
    """'kaleido' or 'pil': DSTAB_PNG_RENDERER, and for 'auto' whether kaleido finds a Chromium."""
    choice = os.environ.get("DSTAB_PNG_RENDERER", "auto").strip().lower() or "auto"
    require(choice in RENDERERS, f"DSTAB_PNG_RENDERER must be one of {', '.join(RENDERERS)}, got {choice!r}")
    if choice != "auto":
        return choice
    try:
        from choreographer.browsers.chromium import Chromium

        return "kaleido" if Chromium.find_browser(skip_local=False) else "pil"
    except ImportError:
        return "pil"


def size(fig) -> tuple[int, int]:
    return int(fig.layout.width or WIDTH), int(fig.layout.height or HEIGHT)


def _kaleido(fig, scale: int, fmt: str = "png") -> bytes:
    global _started
    import kaleido
    import plotly.io as pio

    with _lock:  # one browser per process, shared by a server's sessions, one figure at a time
        if not _started:
            kaleido.start_sync_server(silence_warnings=True)  # kaleido stops it at exit
            _started = True
        width, height = size(fig)
        with warnings.catch_warnings():  # plotly passes browser options a running server already has
            warnings.filterwarnings("ignore", "The kopts argument is ignored", UserWarning)
            return pio.to_image(fig, format=fmt, width=width, height=height, scale=scale)


def png_bytes(fig, scale: int = SCALE) -> bytes:
    """`fig` as PNG bytes, by kaleido or, without a browser, by `draw` (see the module docstring)."""
    if renderer() == "kaleido":
        try:
            return _kaleido(fig, scale)
        except Exception as exc:  # a browser that fails to start: the drawing below, said once per figure
            logging.getLogger("dstab").warning("note: kaleido could not draw the figure (%s); drawn by PIL", exc)
    buf = io.BytesIO()
    draw(fig, scale).save(buf, format="PNG")
    return buf.getvalue()


FORMATS = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


def image_bytes(fig, fmt: str = "png") -> bytes:
    """`fig` as PNG, SVG or PDF (for slides and papers). kaleido writes SVG and PDF as vectors at the
    figure's size; without a browser the PIL drawing is the picture: a PDF page of it, an SVG holding it."""
    require(fmt in FORMATS, f"image format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "png":
        return png_bytes(fig)
    if renderer() == "kaleido":
        try:
            return _kaleido(fig, 1, fmt)
        except Exception as exc:
            logging.getLogger("dstab").warning("note: kaleido could not draw the figure (%s); drawn by PIL", exc)
    img = draw(fig, SCALE).convert("RGB")
    buf = io.BytesIO()
    if fmt == "pdf":
        img.save(buf, format="PDF", resolution=72.0 * SCALE)
        return buf.getvalue()
    img.save(buf, format="PNG")
    w, h = size(fig)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
        f'<image width="{w}" height="{h}" href="{uri}"/></svg>'
    ).encode()


def write_png(fig, path: str | Path, scale: int = SCALE) -> Path:
    """`fig` as a PNG file, written whole or not at all (`fileio.atomic_write_bytes`)."""
    path = Path(path)
    atomic_write_bytes(path, png_bytes(fig, scale))
    return path


# --- the PIL drawing -------------------------------------------------------------------------------------


def colour(text, default=(0, 0, 0)) -> tuple[int, int, int, int]:
    """A plotly colour ('#1f77b4', 'rgb(..)', 'rgba(..)', a name) as RGBA."""
    if not text:
        return (*default, 255)
    text = str(text).strip()
    if text.startswith("rgba("):
        r, g, b, a = (float(v) for v in text[5:-1].split(","))
        return int(r), int(g), int(b), int(round(a * 255))
    return (*ImageColor.getrgb(text)[:3], 255)


def colour_scale(scale) -> list[tuple[float, tuple[int, int, int, int]]]:
    """A trace's colorscale (a plotly name or [[position, colour], ...]) as [(position, RGBA)]."""
    import plotly.colors as pc

    stops = pc.get_colorscale(scale) if isinstance(scale, str) else scale or pc.get_colorscale("Viridis")
    return [(float(p), colour(c)) for p, c in stops]


def scale_colours(values: np.ndarray, stops) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB along the stops (NaN: white)."""
    pos = np.array([p for p, _ in stops])
    rgb = np.array([c[:3] for _, c in stops], dtype=float)
    v = np.clip(np.nan_to_num(values, nan=0.0), 0, 1)
    out = np.stack([np.interp(v, pos, rgb[:, k]) for k in range(3)], axis=-1).round().astype(np.uint8)
    out[~np.isfinite(values)] = 255
    return out


def _title(value) -> str:
    """A title's text as the fallback draws it: one line, plotly's <br> a space, its <b>/<i> tags dropped."""
    text = (value.get("text") if isinstance(value, dict) else value) or ""
    return re.sub(r"</?(b|i)>", "", re.sub(r"<br\s*/?>", " ", str(text)))


def _font(px: int):
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def ticks(lo: float, hi: float, log: bool, count: int = 5) -> list[tuple[float, str]]:
    """(position in axis units, label in the data's own units): a log axis is labelled 1e-05, 0.001, ..."""
    if log:
        return [(float(e), f"{10.0**e:g}") for e in range(math.ceil(lo), math.floor(hi) + 1)][-(count + 3) :]
    step = 10 ** math.floor(math.log10((hi - lo) / count)) if hi > lo else 1.0
    step *= next(m for m in (1, 2, 5, 10) if (hi - lo) / (step * m) <= count)
    first = math.ceil(lo / step) * step
    return [(v, f"{v:.4g}") for v in np.arange(first, hi + step * 1e-9, step)]


def _numbers(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in np.ravel(np.asarray(values, dtype=object))], dtype=float)


def _array(value):
    """A figure dict's array: a list, or plotly 6's {"dtype", "bdata" (base64), "shape"} for numpy data."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value["shape"]).split(",")]) if value.get("shape") else flat
    return value


def _values(trace: dict, key: str) -> list:
    """A trace's x or y as a list ([] when absent)."""
    v = _array(trace.get(key))
    return [] if v is None else list(v)


def plan(fig) -> dict:
    """What `draw` puts on the canvas, read from the figure alone: titles, axes (range, log, reversed,
    ticks), legend entries, the colour bar. Every label is the figure's own."""
    d = fig.to_plotly_json()
    layout, traces = d["layout"], d["data"]
    colorway = layout.get("template", {}).get("layout", {}).get("colorway") or ["#636efa", "#EF553B", "#00cc96"]
    axes = {}
    for name in ("x", "y"):
        ax = layout.get(f"{name}axis", {})
        log = ax.get("type") == "log"
        vals = []
        for t in traces:
            values = _values(t, name)
            if t.get("type", "scatter") in ("scatter", "bar", "contour", "heatmap", "surface") and values:
                vals.append(np.arange(len(values), dtype=float) if isinstance(values[0], str) else _numbers(values))
        for s in layout.get("shapes", []):
            if s.get(f"{name}ref") == name:
                vals.append(np.array([s[f"{name}0"], s[f"{name}1"]], dtype=float))
        v = np.concatenate(vals) if vals else np.array([0.0, 1.0])
        v = np.log10(v[v > 0]) if log else v[np.isfinite(v)]
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
        if ax.get("range"):
            lo, hi = (float(r) for r in ax["range"])
        hi = hi if hi > lo else lo + 1.0
        reversed_ = ax.get("autorange") == "reversed"
        axes[name] = {"lo": lo, "hi": hi, "log": log, "reversed": reversed_, "title": _title(ax.get("title"))}
        axes[name]["ticks"] = ticks(lo, hi, log)
    legend, bar = [], None
    for i, t in enumerate(traces):
        kind = t.get("type", "scatter")
        if kind in ("contour", "heatmap", "surface"):
            z = _numbers(_array(t["z"]))
            zmin = t.get("zmin", t.get("cmin", float(np.nanmin(z))))
            zmax = t.get("zmax", t.get("cmax", float(np.nanmax(z))))
            stops = colour_scale(t.get("colorscale"))
            bar = {"title": _title(t.get("colorbar", {}).get("title")), "lo": zmin, "hi": zmax, "stops": stops}
            continue
        c = t.get("line", {}).get("color") or t.get("marker", {}).get("color") or colorway[i % len(colorway)]
        t["_colour"] = colour(c if isinstance(c, str) else None)
        if t.get("name") and t.get("showlegend", True) and layout.get("showlegend", True):
            legend.append((t["name"], t["_colour"]))
    title = _title(layout.get("title"))
    return {"title": title, **axes, "legend": legend, "colorbar": bar, "traces": traces, "layout": layout}


def draw(fig, scale: int = SCALE) -> Image.Image:
    """The figure drawn by PIL (no browser): see the module docstring for what it draws."""
    p = plan(fig)
    width, height = (v * scale for v in size(fig))
    img = Image.new("RGBA", (width, height), "white")
    over = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d, o = ImageDraw.Draw(img), ImageDraw.Draw(over)
    font, small = _font(14 * scale), _font(11 * scale)
    names = max((d.textlength(name, font=small) for name, _ in p["legend"]), default=0.0)
    right = int(min(max(110 * scale if p["colorbar"] else 30 * scale, names + 60 * scale), 0.45 * width))
    right += 80 * scale if p["colorbar"] and p["legend"] else 0
    left, top, bottom = 80 * scale, 50 * scale, 60 * scale
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    if p["layout"].get("yaxis", {}).get("scaleanchor") == "x":  # one unit as long on both axes: widen one range
        ax, ay = p["x"], p["y"]
        per = min((x1 - x0) / (ax["hi"] - ax["lo"]), (y1 - y0) / (ay["hi"] - ay["lo"]))
        for a, pixels in ((ax, x1 - x0), (ay, y1 - y0)):
            mid, half = (a["lo"] + a["hi"]) / 2, pixels / per / 2
            a.update(lo=mid - half, hi=mid + half, ticks=ticks(mid - half, mid + half, a["log"]))

    def to_px(name: str, v):
        a = p[name]
        v = np.asarray(v, dtype=float)
        if a["log"]:
            v = np.log10(np.where(v > 0, v, np.nan))
        f = (v - a["lo"]) / (a["hi"] - a["lo"])
        f = 1 - f if a["reversed"] else f
        return x0 + f * (x1 - x0) if name == "x" else y1 - f * (y1 - y0)

    for t in p["traces"]:
        kind = t.get("type", "scatter")
        if kind in ("contour", "heatmap", "surface"):
            bar = p["colorbar"]
            z = np.asarray(_array(t["z"]), dtype=float)
            span = (bar["hi"] - bar["lo"]) or 1.0
            xs = to_px("x", _numbers(_values(t, "x") or range(z.shape[1])))
            ys = to_px("y", _numbers(_values(t, "y") or range(z.shape[0])))
            cells = Image.fromarray(scale_colours((z - bar["lo"]) / span, bar["stops"]))
            box = (int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys)))
            cells = cells.transpose(Image.FLIP_TOP_BOTTOM) if ys[0] > ys[-1] else cells  # row 0 at the bottom
            cells = cells.transpose(Image.FLIP_LEFT_RIGHT) if xs[0] > xs[-1] else cells
            img.paste(cells.resize((max(box[2] - box[0], 1), max(box[3] - box[1], 1)), Image.NEAREST), box[:2])
        elif kind == "bar":
            cats, bars = _values(t, "x"), [tr for tr in p["traces"] if tr.get("type") == "bar"]
            k, n, w = bars.index(t), len(bars), (x1 - x0) / max(len(cats), 1)
            for j, y in enumerate(t["y"]):
                bx = x0 + j * w + w * (0.1 + 0.8 * k / n)
                o.rectangle((bx, to_px("y", y), bx + 0.8 * w / n, to_px("y", max(p["y"]["lo"], 0))), fill=t["_colour"])
        elif kind == "scatter":
            y = _numbers(_values(t, "y"))
            xs, ys = to_px("x", _numbers(_values(t, "x") or range(len(y)))), to_px("y", y)
            ok = np.isfinite(xs) & np.isfinite(ys)
            pts = list(zip(xs[ok], ys[ok]))
            mode = t.get("mode") or ("lines+markers" if len(pts) <= 20 else "lines")
            if t.get("fill") == "toself" and len(pts) > 2:
                o.polygon(pts, fill=colour(t.get("fillcolor"), t["_colour"][:3]))
            elif "lines" in mode and len(pts) > 1 and t.get("line", {}).get("width", 2) > 0:
                o.line(pts, fill=t["_colour"], width=max(1, round(t.get("line", {}).get("width", 2) * scale)))
            if "markers" in mode:
                r = 3 * scale
                for x, y in pts:
                    o.ellipse((x - r, y - r, x + r, y + r), fill=t["_colour"])
    clip = Image.new("L", img.size, 0)  # traces stay inside the plot area, as plotly clips them
    ImageDraw.Draw(clip).rectangle((x0, y0, x1, y1), fill=255)
    over.putalpha(ImageChops.multiply(over.getchannel("A"), clip))
    img = Image.alpha_composite(img, over)
    d = ImageDraw.Draw(img)
    for s in p["layout"].get("shapes", []):  # add_vline / add_hline: across the plot area
        if s.get("type") != "line":
            continue
        line = colour(s.get("line", {}).get("color"), (120, 120, 120))
        if s.get("xref") == "x":
            x = float(to_px("x", s["x0"]))
            d.line((x, y0, x, y1), fill=line, width=scale)
        elif s.get("yref") == "y":
            y = float(to_px("y", s["y0"]))
            d.line((x0, y, x1, y), fill=line, width=scale)
    for a in p["layout"].get("annotations", []):
        ax = float(to_px("x", a["x"])) if a.get("xref") == "x" else x0 + 4 * scale
        ay = float(to_px("y", a["y"])) - 16 * scale if a.get("yref") == "y" else y0 + 2 * scale
        d.text((ax + 3 * scale, ay), a.get("text", ""), fill="black", font=small)
    d.rectangle((x0, y0, x1, y1), outline="black", width=scale)
    for value, label in p["x"]["ticks"]:
        x = float(to_px("x", 10**value if p["x"]["log"] else value))
        d.line((x, y1, x, y1 + 5 * scale), fill="black", width=scale)
        d.text((x, y1 + 8 * scale), label, fill="black", font=small, anchor="ma")
    for value, label in p["y"]["ticks"]:
        y = float(to_px("y", 10**value if p["y"]["log"] else value))
        d.line((x0 - 5 * scale, y, x0, y), fill="black", width=scale)
        d.text((x0 - 8 * scale, y), label, fill="black", font=small, anchor="rm")
    d.text((x0, 12 * scale), p["title"], fill="black", font=font)
    d.text(((x0 + x1) / 2, height - 22 * scale), p["x"]["title"], fill="black", font=font, anchor="ma")
    if p["y"]["title"]:
        tw = int(d.textlength(p["y"]["title"], font=font)) + 4
        label = Image.new("RGBA", (tw, 20 * scale), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((0, 0), p["y"]["title"], fill="black", font=font)
        label = label.rotate(90, expand=True)
        img.alpha_composite(label, (4 * scale, max(int((y0 + y1) / 2 - tw / 2), 0)))
    bx = x1 + 16 * scale
    if p["colorbar"]:
        bar = p["colorbar"]
        ramp = scale_colours(np.linspace(1, 0, int(y1 - y0))[:, None].repeat(14 * scale, axis=1), bar["stops"])
        img.paste(Image.fromarray(ramp), (int(bx), int(y0)))
        d.text((bx, y0 - 18 * scale), bar["title"], fill="black", font=small)
        d.text((bx + 18 * scale, y0), f"{bar['hi']:.4g}", fill="black", font=small)
        d.text((bx + 18 * scale, y1 - 12 * scale), f"{bar['lo']:.4g}", fill="black", font=small)
        bx += 80 * scale
    for i, (name, c) in enumerate(p["legend"]):  # in the right margin, never over a curve
        ly = y0 + i * 18 * scale
        d.line((bx, ly + 7 * scale, bx + 20 * scale, ly + 7 * scale), fill=c, width=3 * scale)
        d.text((bx + 26 * scale, ly), name, fill="black", font=small)
    return img.convert("RGB")
