"""Download buttons: every figure as HTML (plotly) or PNG (images), numbers as CSV and JSON.

The payloads are built only when the user clicks (callable data), so pages
with many figures do not serialise them on every rerun.
"""

from __future__ import annotations

import csv
import io
import json

import streamlit as st


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


def figure(fig, name: str, where=st) -> None:
    """The interactive figure as a self-contained HTML file (plotly.js inlined, works offline)."""
    where.download_button(
        "Figure (HTML)",
        lambda: fig.to_html(include_plotlyjs=True, full_html=True).encode(),
        f"{name}.html",
        "text/html",
        key=f"dl-{name}-html",
        on_click="ignore",
    )


def image(img, name: str, where=st) -> None:
    where.download_button(
        "Image (PNG)", lambda: _png(img), f"{name}.png", "image/png", key=f"dl-{name}-png", on_click="ignore"
    )


def numbers(rows: list[dict], name: str, where=st, extra: dict | None = None) -> None:
    """Rows as CSV, and rows plus any extra JSON (settings, provenance) as JSON."""
    c1, c2 = where.columns(2)
    c1.download_button(
        "Numbers (CSV)", lambda: _csv(rows), f"{name}.csv", "text/csv", key=f"dl-{name}-csv", on_click="ignore"
    )
    c2.download_button(
        "Numbers (JSON)",
        lambda: json.dumps({"rows": rows, **(extra or {})}, indent=1, default=float).encode(),
        f"{name}.json",
        "application/json",
        key=f"dl-{name}-json",
        on_click="ignore",
    )
