"""Download buttons: every chart as PNG, SVG, PDF and HTML, images as PNG, numbers as CSV and JSON.

The payloads are built only when the user clicks (callable data), so pages
with many figures do not serialise them on every rerun. Labels name the file,
so two charts' buttons never read the same. A chart's PNG, SVG and PDF are
drawn by plotly's own renderer, kaleido (1.x drives the system's Chromium,
offline); one browser is started per server process, on the first image asked
for, and kept. A chart's four buttons sit in one "Download" popover, so a
page shown on a projector is not a wall of buttons. CSV rows carry the columns that say what they are of (model,
parameters), so a file read on its own still tells.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import threading

import streamlit as st

_kaleido_lock = threading.Lock()
_kaleido_started = False
PNG_WIDTH, PNG_HEIGHT, PNG_SCALE = 900, 500, 2  # width when a figure sets none; 2x for print


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def png_available() -> bool:
    return importlib.util.find_spec("kaleido") is not None


IMAGE_FORMATS = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


def chart_image(fig, fmt: str) -> bytes:
    """The figure as PNG, SVG or PDF, drawn by kaleido in a headless Chromium kept for this process (the
    first call starts it: a few seconds). One at a time: sessions share that browser."""
    global _kaleido_started
    import kaleido
    import plotly.io as pio

    with _kaleido_lock:
        if not _kaleido_started:
            kaleido.start_sync_server(silence_warnings=True)
            _kaleido_started = True
        width = fig.layout.width or PNG_WIDTH
        height = fig.layout.height or PNG_HEIGHT
        return pio.to_image(fig, format=fmt, width=width, height=height, scale=PNG_SCALE if fmt == "png" else 1)


def figure(fig, name: str, where=st) -> None:
    """The chart as PNG, SVG and PDF (for slides and papers) and as a self-contained interactive HTML file
    (plotly.js inlined, works offline), in one popover named after the chart."""
    box = where.popover(f"Download {name}", icon=":material/download:")
    if png_available():
        for fmt, mime in IMAGE_FORMATS.items():
            box.download_button(
                f"{name}.{fmt}",
                lambda fmt=fmt: chart_image(fig, fmt),
                f"{name}.{fmt}",
                mime,
                key=f"dl-{name}-{fmt}",
                on_click="ignore",
                icon=":material/download:",
            )
    box.download_button(
        f"{name}.html",
        lambda: fig.to_html(include_plotlyjs=True, full_html=True).encode(),
        f"{name}.html",
        "text/html",
        key=f"dl-{name}-html",
        on_click="ignore",
        icon=":material/download:",
    )


def image(img, name: str, where=st) -> None:
    where.download_button(
        f"{name}.png",
        lambda: _png(img),
        f"{name}.png",
        "image/png",
        key=f"dl-{name}-png",
        on_click="ignore",
        icon=":material/download:",
    )


def labelled(rows: list[dict], columns: dict) -> list[dict]:
    """Rows with `columns` (model, parameters) in front of their own."""
    return [{**columns, **r} for r in rows]


def numbers(rows: list[dict], name: str, where=st, extra: dict | None = None, columns: dict | None = None) -> None:
    """Rows as CSV, and rows plus any extra JSON (settings, provenance) as JSON. `columns` (model,
    parameters) go in front of every row of both."""
    rows = labelled(rows, columns or {})
    c1, c2 = where.columns(2)
    c1.download_button(
        f"{name}.csv",
        lambda: _csv(rows),
        f"{name}.csv",
        "text/csv",
        key=f"dl-{name}-csv",
        on_click="ignore",
        icon=":material/download:",
    )
    c2.download_button(
        f"{name}.json",
        lambda: json.dumps({"rows": rows, **(extra or {})}, indent=1, default=float).encode(),
        f"{name}.json",
        "application/json",
        key=f"dl-{name}-json",
        on_click="ignore",
        icon=":material/download:",
    )
