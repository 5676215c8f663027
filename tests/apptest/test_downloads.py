"""Download payloads: a chart as a real PNG (kaleido and the system Chromium), CSV rows that say what
they are of."""

import csv
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from dashboard import downloads
from dstab import cli
from dstab.plots import figpng
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
    assert img.size == (figpng.WIDTH * figpng.SCALE, 420 * figpng.SCALE)  # the figure's height
    colours = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 100  # a drawn contour map, not a blank page
    # the same figure for slides and papers: vector SVG at the figure's size, a one-page PDF
    svg = downloads.chart_image(fig, "svg").decode()
    assert svg.startswith("<svg") and f'width="{figpng.WIDTH}"' in svg and 'height="420"' in svg
    assert "a bowl" in svg  # the title is text, not pixels
    pdf = downloads.chart_image(fig, "pdf")
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") == 1


def _without_title(fig) -> dict:
    d = fig.to_dict()
    d["layout"].pop("title", None)  # the model's name as each names it: the zoo id, the sidebar's label
    return d


def test_the_cli_png_and_the_pages_png_of_one_result_are_one_figure(app, monkeypatch, tmp_path):
    """`dstab surface` / `dstab interpolate` write their PNG from the figure the page shows for the same
    result (same traces, data, colour scale, colour bar, axis titles), through the renderer the page's PNG
    download uses."""
    drawn, shown = [], {}
    monkeypatch.setattr(figpng, "png_bytes", lambda fig, scale=figpng.SCALE: drawn.append(fig) or b"\x89PNG")
    monkeypatch.setattr(downloads, "figure", lambda fig, name, where=None: shown.setdefault(name, fig))
    assert not app("pages/landscape.py", data="toy2d", t="500", grid="5").exception
    assert not app("pages/interpolation.py", data="toy2d", t="500", steps="4").exception
    argv = ["surface", "toy2d/dm-eps-s0", "--timestep", "500", "--grid", "5", "--out", str(tmp_path)]
    assert cli.main([*argv, "--device", "cpu"]) == 0
    assert _without_title(drawn[-1]) == _without_title(shown["contour-dm"])
    contour = drawn[-1].data[0]
    assert contour.colorbar.title.text == "loss" and contour.colorscale == shown["contour-dm"].data[0].colorscale
    argv = ["interpolate", "toy2d/dm-eps-s0", "--timestep", "500", "--steps", "4", "--out", str(tmp_path)]
    assert cli.main([*argv, "--device", "cpu"]) == 0
    page, cli_fig = shown["interpolation"], drawn[-1]  # the page draws the DM and the GAN on one chart
    assert cli_fig.layout.to_plotly_json() == page.layout.to_plotly_json()
    dm_cli, dm_page = cli_fig.data[0].to_plotly_json(), page.data[0].to_plotly_json()
    assert dm_cli.pop("name").startswith("toy2d/dm-eps-s0") and dm_page.pop("name").startswith("dm-eps-s0")
    assert json.dumps(dm_cli, default=list, sort_keys=True) == json.dumps(dm_page, default=list, sort_keys=True)
    downloads.chart_image(shown["contour-dm"], "png")  # the page's PNG download: the same renderer
    assert drawn[-1] is shown["contour-dm"]


def test_csv_rows_carry_model_and_parameter_columns():
    rows = downloads.labelled([{"alpha": 0.0, "loss": 1.5}], {"model": "dm-eps-s0", "grid": 21})
    assert rows == [{"model": "dm-eps-s0", "grid": 21, "alpha": 0.0, "loss": 1.5}]
    table = list(csv.DictReader(io.StringIO(downloads._csv(rows).decode())))
    assert table == [{"model": "dm-eps-s0", "grid": "21", "alpha": "0.0", "loss": "1.5"}]
