"""Download buttons: every chart as PNG, SVG, PDF and HTML, images as PNG, numbers as CSV and JSON.

The payloads are built only when the user clicks (callable data), so pages
with many figures do not serialise them on every rerun. Labels name the file,
so two charts' buttons never read the same. A chart's PNG, SVG and PDF are
drawn as the CLI draws its PNG (dstab.plots.figpng): by plotly's own renderer,
kaleido (1.x drives the system's Chromium, offline; one browser per server
process, started on the first image asked for, and kept), or without a browser
from its PIL drawing of the same figure. A chart's four buttons sit in one
"Download" popover, so a page on a projector is not a wall of buttons. CSV rows
carry the columns that say what they are of (model, parameters), so a file read
on its own still tells.
"""

from __future__ import annotations

import csv
import io
import json

import streamlit as st

from dstab.plots import figpng


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


def chart_image(fig, fmt: str) -> bytes:
    """The figure as PNG, SVG or PDF: `dstab.plots.figpng`, the CLI's renderer too."""
    return figpng.image_bytes(fig, fmt)


def figure(fig, name: str, where=st) -> None:
    """The chart as PNG, SVG and PDF (for slides and papers) and as a self-contained interactive HTML file
    (plotly.js inlined, works offline), in one popover named after the chart."""
    box = where.popover(f"Download {name}", icon=":material/download:")
    for fmt, mime in figpng.FORMATS.items():
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
