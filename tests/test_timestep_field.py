"""The P(t) picture (issue 23 item 2): every preset's distribution over t on one schedule, its numbers,
its figures and `dstab timesteps`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from dstab.cli import main
from dstab.errors import DstabError
from dstab.plots import figpng
from dstab.plots import timesteps as figures
from dstab.training import timestep_field

ZOO_SCHEDULE = {"schedule": "linear", "T": 1000, "prediction": "eps"}
SHOWN = ["baseline", "clts", "min-snr", "p2", "debias", "lognormal", "edm", "logit-normal", "sd3-mode", "laplace"]


@pytest.fixture(scope="module")
def zoo_field():
    return timestep_field.field(ZOO_SCHEDULE)


def by_preset(result) -> dict:
    return {r["preset"]: r for r in result["rows"]}


def test_every_preset_with_its_own_rule_is_drawn_and_the_others_are_not(zoo_field):
    assert [r["preset"] for r in zoo_field["rows"]] == [*SHOWN, "speed"]
    assert "loss-second-moment" not in timestep_field.field_presets()  # its P(t) follows the losses
    assert "mdlrc-clts" not in timestep_field.field_presets()  # the same rule as clts
    for r in zoo_field["rows"]:
        for view in timestep_field.VIEWS:
            assert r[view].sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "preset,effective,draws,kind",
    [
        ("baseline", (0.5, 499.5), (0.5, 499.5), "uniform"),
        ("clts", (0.5244, 483.4), (0.5244, 483.4), "sampler"),
        ("debias", (0.0333, 869.2), (0.5, 499.5), "weighting"),
        ("lognormal", (0.9787, 133.2), (0.9787, 133.2), "sampler"),
        ("edm", (0.4389, 501.3), (0.9787, 133.2), "sampler and weighting"),
        ("logit-normal", (0.8913, 278.8), (0.8913, 278.8), "sampler"),
        ("laplace", (0.9964, 261.1), (0.9964, 261.1), "sampler"),
        ("speed", (0.5841, 459.0), (0.7501, 338.9), "sampler and weighting"),
    ],
)
def test_mass_below_half_and_mean_t_on_the_zoo_schedule(zoo_field, preset, effective, draws, kind):
    r = by_preset(zoo_field)[preset]
    assert (round(r["effective_below_half"], 4), round(r["effective_mean_t"], 1)) == effective
    assert (round(r["draws_below_half"], 4), round(r["draws_mean_t"], 1)) == draws
    assert r["kind"] == kind


def test_formulas_are_written_from_the_rules_values(zoo_field):
    f = {r["preset"]: r["formula"] for r in zoo_field["rows"]}
    assert f["lognormal"] == "ln sigma ~ N(-1.2, 1.2^2), sigma_t = sqrt((1 - abar_t) / abar_t)"
    assert "x0 weight (sigma^2 + 0.5^2) / (sigma · 0.5)^2" in f["edm"]
    assert "tau = 642" in f["speed"] and "mirrored" in f["speed"] and "1 / (1 + SNR_t)" in f["speed"]
    assert "mu = " not in f["clts"] and "(t - 300)^2 / (2 · 1000^2)" in f["clts"]
    assert "n ~ N(0, 1^2)" in f["logit-normal"] and "1.29" in f["sd3-mode"]
    small = timestep_field.field({"schedule": "linear", "T": 200, "prediction": "eps"}, ["clts", "speed"])
    assert "(t - 60)^2 / (2 · 200^2)" in by_preset(small)["clts"]["formula"]
    assert "tau = 642" not in by_preset(small)["speed"]["formula"]  # the threshold follows the schedule


def test_the_model_schedule_and_prediction_change_the_picture(zoo_field):
    x0 = by_preset(timestep_field.field({**ZOO_SCHEDULE, "prediction": "x0"}, ["debias", "lognormal"]))
    assert x0["debias"]["effective_below_half"] == pytest.approx(0.9710, abs=1e-4)  # weight times SNR for x0
    assert x0["lognormal"]["draws_below_half"] == by_preset(zoo_field)["lognormal"]["draws_below_half"]
    cosine = by_preset(timestep_field.field({**ZOO_SCHEDULE, "schedule": "cosine"}, ["lognormal"]))
    assert cosine["lognormal"]["draws_below_half"] < 0.97  # the cosine schedule keeps more SNR at mid t


def test_summary_and_curve_rows(zoo_field):
    rows = {r["preset"]: r for r in timestep_field.summary_rows(zoo_field)}
    assert rows["laplace"]["P(t < 500) effective"] == 0.9964 and rows["laplace"]["mean t draws"] == 261.1
    curves = timestep_field.curve_rows(zoo_field, "draws")
    assert len(curves) == 1000 and list(curves[0]) == ["t", *SHOWN, "speed"]
    assert sum(c["speed"] for c in curves) == pytest.approx(1.0)
    with pytest.raises(DstabError, match="view must be one of"):
        timestep_field.curve_rows(zoo_field, "both")


def test_the_figure_carries_each_presets_share_in_its_legend(zoo_field, tmp_path):
    fig = figures.figure(zoo_field, "effective")
    names = [t.name for t in fig.data]
    assert len(names) == 11 and "lognormal: 97.9% below T/2, mean t 133.2" in names
    dashes = {t.name.split(":")[0]: t.line.dash for t in fig.data}
    assert dashes["debias"] == dashes["min-snr"] == "dash" and dashes["edm"] == dashes["clts"] == "solid"
    assert np.allclose(fig.data[1].y, by_preset(zoo_field)["clts"]["effective"])
    draws = figures.figure(zoo_field, "draws", log_y=True)
    assert "speed: 75.0% below T/2, mean t 338.9" in [t.name for t in draws.data]
    assert draws.layout.yaxis.type == "log"
    path = figures.save_png(zoo_field, tmp_path / "f.png")
    width, height = figpng.size(figures.figure(zoo_field))  # the page's figure, as figpng draws every PNG
    assert Image.open(path).size == (width * figpng.SCALE, height * figpng.SCALE)


def test_cli_writes_json_csv_html_png(tmp_path, capsys):
    out = tmp_path / "tf"
    assert main(["timesteps", "-o", str(out), "--presets", "baseline,clts,laplace", "--view", "draws"]) == 0
    printed = capsys.readouterr().out
    assert "laplace" in printed and "0.9964" in printed
    record = json.loads((out / "timesteps.json").read_text())
    assert record["schedule"]["T"] == 1000 and [p["preset"] for p in record["presets"]] == [
        "baseline",
        "clts",
        "laplace",
    ]
    with open(out / "timesteps.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1000 and sum(float(r["laplace"]) for r in rows) == pytest.approx(1.0)
    assert (out / "timesteps.html").stat().st_size > 0 and Image.open(out / "timesteps.png").format == "PNG"


def test_cli_takes_a_models_schedule_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["timesteps", "-o", str(out), "--model", "digits/dm-x0-s0", "--presets", "debias"]) == 0
    assert json.loads((out / "timesteps.json").read_text())["schedule"]["prediction"] == "x0"
    assert main(["timesteps", "-o", str(out), "--model", "digits/gan-s0"]) == 2
    assert "error: digits/gan-s0 is a GAN" in capsys.readouterr().err
    assert main(["timesteps", "-o", str(out), "--presets", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["timesteps", "-o", str(out), "--presets", "loss-second-moment"]) == 2
    assert "follows the run's losses" in capsys.readouterr().err
