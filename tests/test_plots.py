"""dstab.plots draws what the analysis layer computed: the CLI's and the page's figures are one, with
numbers pinned on analytic inputs; and the one cost estimator and progress protocol."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from dstab import cli
from dstab.analysis import cost
from dstab.analysis.interpolation import rise_over_end
from dstab.analysis.landscape import rise_over_centre
from dstab.analysis.trajectory import trajectory_rows
from dstab.plots import png
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


def test_colour_maps_hit_their_anchors_and_the_heatmap_is_symmetric():
    np.testing.assert_array_equal(png.colours(np.array([0.0, 0.5, 1.0]), png.RDBU_R), png.RDBU_R[[0, 2, 4]])
    np.testing.assert_array_equal(png.colours(np.array([0.25]), png.VIRIDIS)[0], [59, 82, 139])
    z = np.array([[-1.0, 0.0, 1.0]] * 3)
    img = np.asarray(png.heatmap_image(z, -1.0, 1.0, png.RDBU_R, scale=4))
    top = 4  # no title: the cells start 4 px down
    assert tuple(img[top + 1, 1]) == tuple(png.RDBU_R[0]) and tuple(img[top + 1, 9]) == tuple(png.RDBU_R[4])


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
    """The CLI's HTML is the page's 3-D surface: the relative rise on a symmetric +-zmax scale."""
    out = caches / "out"
    argv = ["surface", str(ckpts["toy_dm"]), "--grid", "5", "--timestep", "50", "--batch-size", "8"]
    assert cli.main([*argv, "--out", str(out), "--device", "cpu"]) == 0
    stem = out / "surface_toy_dm_t50"
    loss = np.load(stem.with_suffix(".npz"))["loss"]
    html = stem.with_suffix(".html").read_text()
    rel = rise_over_centre(loss)
    zmax = float(np.abs(rel).max())
    call = html.split("Plotly.newPlot(", 1)[1]
    traces, _ = json.JSONDecoder().raw_decode(call, call.index("["))  # newPlot(div id, data, layout, config)
    trace = traces[0]
    assert trace["type"] == "surface" and trace["cmin"] == pytest.approx(-zmax) and trace["cmax"] == pytest.approx(zmax)
    np.testing.assert_allclose(_array(trace["z"]), rel, rtol=1e-12)


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
