"""dstab.plots draws what the analysis layer computed: the CLI's and the page's figures are one, with
numbers pinned on analytic inputs; and the one cost estimator and progress protocol."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from dstab import cli
from dstab.analysis import cost
from dstab.analysis.interpolation import rise_over_end
from dstab.analysis.landscape import rise_over_centre
from dstab.analysis.trajectory import trajectory_rows
from dstab.errors import DstabError
from dstab.plots import figpng, png
from dstab.plots import surface as surface_plots


def test_relative_rise_and_relative_curve_are_analytic():
    loss = np.array([[4.0, 3.0, 4.0], [3.0, 2.0, 3.0], [4.0, 3.0, 6.0]])
    np.testing.assert_allclose(rise_over_centre(loss), [[1, 0.5, 1], [0.5, 0, 0.5], [1, 0.5, 2]])
    np.testing.assert_allclose(rise_over_centre(loss - 2.0), loss - 2.0)  # zero centre: plain differences
    alphas = np.array([-0.5, 0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(rise_over_end(alphas, np.array([3.0, 2.0, 1.5, -1.0, 0.0])), [4, 3, 2.5, 0, 1])
    views = surface_plots.views({"a": loss, "b": loss + 2.0}, surface_plots.SHARED_RISE)  # one scale for both
    assert views["a"].hi == views["b"].hi == 2.0 and views["a"].lo == -2.0
    own = surface_plots.views({"a": loss, "b": 100 * loss}, surface_plots.OWN)  # each its own loss range
    assert (own["a"].lo, own["a"].hi, own["b"].lo, own["b"].hi) == (2.0, 6.0, 200.0, 600.0)


def _bowl():
    a = np.linspace(-1, 1, 11)
    return a, np.add.outer(a**2, 0.5 * a**2) + 0.25


@pytest.mark.parametrize("scale", [surface_plots.OWN, surface_plots.SHARED_RISE])
def test_the_pil_drawing_uses_the_figures_own_colour_scale_labels_and_units(scale):
    """Without a browser the PNG is drawn from the same figure: its colour scale (plotly's own stops), its
    colour bar and axis titles; the highest cell has the scale's top colour, the lowest its bottom."""
    import plotly.colors as pc

    a, loss = _bowl()
    view = surface_plots.views({"dm": loss}, scale)["dm"]
    fig = surface_plots.contour(a, a, view, "a bowl")
    p = figpng.plan(fig)
    assert p["colorbar"]["title"] == view.unit and (p["x"]["title"], p["y"]["title"]) == ("d2", "d1")
    stops = pc.get_colorscale(view.colours)
    np.testing.assert_allclose([s for s, _ in p["colorbar"]["stops"]], [float(s) for s, _ in stops], rtol=1e-12)
    assert [c for _, c in p["colorbar"]["stops"]] == [figpng.colour(c) for _, c in stops]
    img = np.asarray(figpng.draw(fig, scale=1))
    assert img.shape[:2] == (420, figpng.WIDTH)  # the figure's own height, the default width
    colours = img.reshape(-1, 3)
    count = lambda stop: int((colours == np.array(figpng.colour(stop[1])[:3])).all(axis=1).sum())  # noqa: E731
    assert count(stops[-1]) > 100  # the corner cells: the scale's top colour
    # the centre: the bottom of its own loss range, the middle (no rise) of the symmetric one
    assert count(stops[0]) > 100 if scale == surface_plots.OWN else count(stops[len(stops) // 2]) > 100


def test_a_log_axis_is_labelled_in_the_datas_units_and_the_legend_names_the_traces():
    from dstab import cache
    from dstab.plots import hessian as hessian_plots

    grid = np.linspace(-5, 60, 200)
    density = np.exp(-0.5 * (grid / 3) ** 2) + 1e-12
    res = cache.Result({}, {"density_grid": grid, "density": density}, "", "shipped", params={"probe": {"kind": "dm"}})
    fig = hessian_plots.spectral_density({"dm": ("dm-eps-s0", res)})
    p = figpng.plan(fig)
    assert p["y"]["log"] and [label for _, label in p["y"]["ticks"]][-3:] == ["0.01", "0.1", "1"]
    assert p["legend"] == [(fig.data[0].name, figpng.colour(fig.data[0].line.color))]
    assert p["title"] == fig.layout.title.text and p["y"]["title"] == "density"


def test_the_pil_drawing_reads_a_two_line_title_as_one_line_without_markup():
    import plotly.graph_objects as go

    fig = go.Figure(layout={"title": "Where each preset puts its signal<br><b>linear</b> schedule, T = 1000"})
    assert figpng.plan(fig)["title"] == "Where each preset puts its signal linear schedule, T = 1000"


def test_without_a_browser_every_png_is_the_pil_drawing(monkeypatch):
    from choreographer.browsers.chromium import Chromium
    from PIL import Image

    monkeypatch.setattr(Chromium, "find_browser", staticmethod(lambda *a, **k: None))
    monkeypatch.delenv("DSTAB_PNG_RENDERER", raising=False)
    assert figpng.renderer() == "pil"
    a, loss = _bowl()
    fig = surface_plots.contour(a, a, surface_plots.views({"dm": loss})["dm"], "a bowl")
    img = Image.open(io.BytesIO(figpng.png_bytes(fig)))
    assert img.size == (figpng.WIDTH * figpng.SCALE, 420 * figpng.SCALE)
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), np.asarray(figpng.draw(fig)))
    monkeypatch.setenv("DSTAB_PNG_RENDERER", "svg")
    with pytest.raises(DstabError, match="DSTAB_PNG_RENDERER must be one of auto, kaleido, pil"):
        figpng.renderer()


def test_trajectory_rows_measure_the_settling_of_the_x0_estimate():
    final = np.ones((2, 3))
    x0_hat = np.stack([final * 3, final * 2, final])  # 3 steps: 2 and 1 away from the final sample, then 0
    rows = trajectory_rows(np.array([900, 500, 0]), x0_hat)
    assert [r["rms_to_final"] for r in rows] == [2.0, 1.0, 0.0]
    assert [r["rms_change"] for r in rows] == [0.0, 1.0, 1.0] and [r["t"] for r in rows] == [900, 500, 0]


def _array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or plotly 6's {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict):
        shape = [int(n) for n in str(value.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value, dtype=float)


def test_the_cli_surface_html_is_the_pages_figure(ckpts, caches):
    """The CLI's HTML is the page's 3-D surface at the page's default scale: its own loss range, viridis,
    the colour bar titled 'loss' (it used to be a relative rise the page does not open on)."""
    out = caches / "out"
    argv = ["surface", str(ckpts["toy_dm"]), "--grid", "5", "--timestep", "50", "--batch-size", "8"]
    assert cli.main([*argv, "--out", str(out), "--device", "cpu"]) == 0
    stem = out / "surface_toy_dm_t50"
    loss = np.load(stem.with_suffix(".npz"))["loss"]
    html = stem.with_suffix(".html").read_text()
    call = html.split("Plotly.newPlot(", 1)[1]
    traces, _ = json.JSONDecoder().raw_decode(call, call.index("["))  # newPlot(div id, data, layout, config)
    trace = traces[0]
    assert trace["type"] == "surface" and trace["colorbar"]["title"]["text"] == "loss"
    assert trace["cmin"] == pytest.approx(loss.min()) and trace["cmax"] == pytest.approx(loss.max())
    np.testing.assert_allclose(_array(trace["z"]), loss, rtol=1e-12)
    view = surface_plots.views({"dm": loss})["dm"]
    assert trace["colorscale"] == surface_plots.surface_3d(loss, loss, view, "").to_dict()["data"][0]["colorscale"]


def test_one_timing_per_key_and_no_warm_up_when_asked():
    calls = []
    cost.forget()
    assert cost.seconds_per_call(lambda: calls.append(1), key=("k",)) >= 0 and len(calls) == 3  # warm-up + 2
    cost.seconds_per_call(lambda: calls.append(1), key=("k",))
    assert len(calls) == 3  # remembered
    cost.seconds_per_call(lambda: calls.append(1), repeats=1, warmup=False)
    assert len(calls) == 4
    with pytest.warns(cost.CostWarning, match=r"7 Hessian-vector products at about 20000 ms each: roughly 2\.3 min"):
        assert cost.warn_if_slow(7, 20.0, "H", unit="Hessian-vector products") == 140.0
    cost.forget()


def test_trajectory_command_equals_the_library_and_hits_the_cache(ckpts, caches, capsys):
    from dstab import checkpoints
    from dstab.analysis.trajectory import trajectory

    out = caches / "traj"
    argv = ["trajectory", str(ckpts["toy_dm"]), "-o", str(out), "--steps", "4", "-n", "3", "--device", "cpu"]
    assert cli.main(argv) == 0
    record = json.loads((out / "trajectory.json").read_text())
    arrays = np.load(out / "trajectory.npz")
    _, direct = trajectory(checkpoints.load(ckpts["toy_dm"]), "ddim", 4, 0, 3)
    np.testing.assert_array_equal(arrays["x0_hat"], direct["x0_hat"])
    assert arrays["x0_hat"].shape == (4, 3, 2) and record["source"] == "computed"
    assert [r["rms_to_final"] for r in record["rows"]] == [
        r["rms_to_final"] for r in trajectory_rows(direct["t"], direct["x0_hat"])
    ] and record["rows"][-1]["rms_to_final"] == 0.0
    assert (out / "trajectory.png").stat().st_size > 0 and (out / "trajectory.html").stat().st_size > 0
    assert cli.main(argv) == 0 and json.loads((out / "trajectory.json").read_text())["source"] == "user"
    assert cli.main(["trajectory", str(ckpts["toy_gan"]), "-o", str(out)]) == 2
    assert "one DM checkpoint" in capsys.readouterr().err


def test_consistency_grid_wraps_m_samples_into_bands_of_16():
    # seen in Chromium: M = 32 in one row drew each 8x8 digit ~30 px wide under a tall blank figure
    from dstab.plots import consistency as consistency_plots

    n, m = 3, 20
    samples = np.linspace(-1, 1, n * m * 4).reshape(n, m, 1, 2, 2).astype(np.float32)
    fig = consistency_plots.image_grid(samples, ["a", "b", "c"], "t", scale=1)
    z = np.asarray(fig.data[0].z)
    assert z.shape[:2] == (2 * n * 3 + 1, 16 * 3 + 1)  # 2 bands of 3 rows, 16 columns; cells 2 px + 1 px pad
    assert list(fig.layout.yaxis.ticktext) == [
        "a (1-16)",
        "b (1-16)",
        "c (1-16)",
        "a (17-20)",
        "b (17-20)",
        "c (17-20)",
    ]
    assert list(fig.layout.xaxis.ticktext) == ["1 / 17", "3 / 19", "5", "7", "9", "11", "13", "15"]
    # model b's sample 18 sits in band 2, row 2, column 2; blank (white) cells after sample 20
    want = png.to_uint8(samples[1, 17][None])[0, :, :, 0]
    np.testing.assert_array_equal(z[1 + 4 * 3 : 3 + 4 * 3, 4:6, 0], want)
    assert (z[1 + 3 * 3 : 3 + 3 * 3, 1 + 4 * 3 :, :] == 255).all()
    assert consistency_plots.image_grid(samples[:, :5], ["a", "b", "c"], "t").layout.yaxis.ticktext == ("a", "b", "c")


@pytest.mark.parametrize(("count", "columns", "hspace", "vspace"), [(11, 4, 0.04, 0.12), (3, 3, 0.04, 0.0)])
def test_subplot_grid_is_make_subplots_layout(count, columns, hspace, vspace):
    # the landscape's small multiples and the reverse steps lay out their panels as plotly's make_subplots
    # would (0.34 s for 12 panels on the shared CPU, a third of the page) from one plain dict
    from plotly.subplots import make_subplots

    from dstab.plots.subplots import grid

    rows = -(-count // columns)
    titles = [f"panel {i}" for i in range(count)]
    ref = make_subplots(
        rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=hspace, vertical_spacing=vspace
    ).to_dict()["layout"]
    layout, axes = grid(count, columns, hspace, vspace, titles, font_size=16)
    for i, (x, y) in enumerate(axes):
        k = "" if i == 0 else str(i + 1)
        assert (x, y) == (f"x{k}", f"y{k}")
        for axis in (f"xaxis{k}", f"yaxis{k}"):
            assert layout[axis]["anchor"] == ref[axis]["anchor"]
            assert layout[axis]["domain"] == pytest.approx(ref[axis]["domain"], abs=1e-12)
    for mine, theirs in zip(layout["annotations"], ref["annotations"]):
        assert mine["text"] == theirs["text"] and mine["font"] == theirs["font"]
        assert (mine["x"], mine["y"]) == pytest.approx((theirs["x"], theirs["y"]), abs=1e-12)
        assert all(mine[k] == theirs[k] for k in ("xref", "yref", "xanchor", "yanchor", "showarrow"))
