"""Download payloads: a chart as a real PNG (kaleido and the system Chromium), CSV rows that say what
they are of."""

import csv
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from dashboard import downloads
from dstab.plots import surface as surface_plots


@pytest.mark.skipif(shutil.which("chromium") is None, reason="kaleido draws with the system Chromium")
def test_a_chart_png_is_a_real_image_of_the_figure_size():
    pytest.importorskip("kaleido", reason="kaleido is in requirements.txt; install it to export PNGs")
    a = np.linspace(-1, 1, 11)
    view = surface_plots.views({"dm": np.add.outer(a**2, a**2)})["dm"]
    fig = surface_plots.contour(a, a, view, "a bowl")
    data = downloads.chart_image(fig, "png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    img = Image.open(io.BytesIO(data))
    assert img.size == (downloads.PNG_WIDTH * downloads.PNG_SCALE, 420 * downloads.PNG_SCALE)  # the figure's height
    colours = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 100  # a drawn contour map, not a blank page
    # the same figure for slides and papers: vector SVG at the figure's size, a one-page PDF
    svg = downloads.chart_image(fig, "svg").decode()
    assert svg.startswith("<svg") and f'width="{downloads.PNG_WIDTH}"' in svg and 'height="420"' in svg
    assert "a bowl" in svg  # the title is text, not pixels
    pdf = downloads.chart_image(fig, "pdf")
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") == 1


def test_csv_rows_carry_model_and_parameter_columns():
    rows = downloads.labelled([{"alpha": 0.0, "loss": 1.5}], {"model": "dm-eps-s0", "grid": 21})
    assert rows == [{"model": "dm-eps-s0", "grid": 21, "alpha": 0.0, "loss": 1.5}]
    table = list(csv.DictReader(io.StringIO(downloads._csv(rows).decode())))
    assert table == [{"model": "dm-eps-s0", "grid": "21", "alpha": "0.0", "loss": "1.5"}]
