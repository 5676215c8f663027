"""AppTest of the training page: no runs, a finished real run (table and curves equal the
database), a running one that the Stop button stops."""

import base64
import json
import re
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dstab import runs
from dstab.experiments import headtohead
from dstab.runs.rundir import METRICS_TABLE

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "fake_trainer.py"
TINY = [
    "dataset=toy2d:8gaussians",
    'arch={"arch": "mlp_denoiser", "hidden": 32}',
    "batch_size=16",
    "steps=40",
    "log_every=5",
    "checkpoint_every=20",
    "eval_every=null",
]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_WORKSPACE", str(tmp_path / "ws"))
    yield runs.workspace_root()
    for s in runs.list_runs():  # leave no process behind
        if s.active:
            runs.stop(s.name)
            runs.wait(s.name, timeout=600)


def _values(v) -> list:
    """A plotly trace array: plain list, or plotly's base64 typed array."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def figures(at) -> dict[str, dict]:
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"]["title"]["text"]: f for f in figs}


def page() -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "training.py"), default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_with_no_runs_offers_the_launch_form(ws):
    at = page()
    assert any("No runs yet" in i.value for i in at.info)
    assert at.button(key="launch").label == "Launch 1 run"
    assert not at.error
    # the CLTS pmf and the beta1/lr schedules before launching, and every preset's P(t) on one axis
    assert len(at.get("plotly_chart")) == 3


def test_every_presets_distribution_over_t_with_its_share_below_half_and_formula(ws):
    at = page()
    field = next(f for title, f in figures(at).items() if title.startswith("Where each preset puts its training"))
    names = [t["name"] for t in field["data"]]
    assert "clts: 52.4% below T/2, mean t 483.4" in names and "laplace: 99.6% below T/2, mean t 261.1" in names
    table = next(d.value for d in at.dataframe if "preset" in d.value.columns).set_index("preset")
    assert table.loc["lognormal", "P(t < 500) draws"] == 0.9787
    assert table.loc["lognormal", "rule"].startswith("ln sigma ~ N(-1.2, 1.2^2)")
    sentence = next(m.value for m in at.markdown if m.value.startswith("CLTS puts"))
    assert sentence == (
        "CLTS puts 52.4% of its effective mass below T/2, +2.4 points from uniform; the other presets range "
        "from 3.3% (debias) to 99.6% (laplace)."
    )
    # how the rules trained against CLTS on digits: the committed head-to-head's headline, RESULTS.md's lines
    saved = json.loads((REPO / headtohead.SAVED).read_text())
    shown = "\n".join(m.value for m in at.markdown)
    assert "CLTS against today's timestep rules on digits" in shown
    assert all(line in shown for line in headtohead.page_lines(saved) if line)
    next(r for r in at.radio if r.label == "View").set_value("draws").run()
    field = next(f for title, f in figures(at).items() if title.startswith("Where each preset draws"))
    assert "speed: 75.0% below T/2, mean t 338.9" in [t["name"] for t in field["data"]]


def test_the_launch_is_sized_before_it_starts(ws):
    at = page()
    sizes = [c.value for c in at.code if "total (1 run)" in c.value]
    assert sizes and sizes[0].splitlines()[-1].startswith("total (1 run): 3,000 iterations, 192,000 images")
    at.button(key="size").click().run()
    assert not at.exception and not at.error
    sized = next(c.value for c in at.code if "total (1 run)" in c.value).splitlines()
    assert "CPU-hours" in sized[0] and "; disk " in sized[0]  # the dry run's numbers, measured here
    assert sized[-1].startswith("measured on cpu (no GPU here: these are CPU-hours of this machine)")
    assert runs.run_names() == []


def test_a_config_the_trainer_refuses_is_shown_before_anything_starts(ws):
    at = page()
    at.number_input(key="launch_mdlrc-clts_beta0").set_value(0.3).run()  # below the 0.4 floor
    assert any("The trainer refuses this configuration" in e.value and "floor" in e.value for e in at.error)
    assert runs.run_names() == []


def test_finished_run_table_and_curves_equal_the_database(ws):
    runs.start("done", preset="baseline", overrides=TINY, device="cpu", threads=1)
    assert runs.wait("done", timeout=600).state == "finished"
    at = page()
    table = at.dataframe[0].value
    row = table[table["run"] == "done"].iloc[0]
    assert (row["status"], row["step"], row["of"]) == ("finished", 40, 40)
    con = sqlite3.connect(ws / "done" / "run" / "metrics.sqlite")
    db_loss = con.execute("SELECT step, value FROM metrics WHERE name = 'loss' ORDER BY step").fetchall()
    figs = figures(at)
    trace = figs["Training loss"]["data"][0]
    assert _values(trace["x"]) == [s for s, _ in db_loss]
    assert _values(trace["y"]) == pytest.approx([v for _, v in db_loss], rel=1e-12)
    quartiles = next(f for title, f in figs.items() if title.startswith("Loss per quartile"))
    runs_ = [t for t in quartiles["data"] if t["name"] == "done"]  # one colour for the run, a dash per quartile
    assert [t["line"]["dash"] for t in runs_] == ["solid", "dot", "dash", "dashdot"]
    assert len({t["line"]["color"] for t in runs_}) == 1 and runs_[0]["line"]["color"] == trace["line"]["color"]
    assert [t["name"] for t in quartiles["data"] if t not in runs_] == ["q0", "q1", "q2", "q3"]  # the dash legend
    assert quartiles["layout"]["legend"]["orientation"] == "h"  # below the chart, not squeezing it
    assert at.select_slider(key="sample_step_done").options == ["20", "40"]
    assert len(at.get("image")) == 1  # the EMA sample grid of the latest checkpoint
    # 2-D points: 16 x 16 of them drawn (the caption said 16 beside a scatter of 256)
    caption = at.get("image")[0].proto.imgs[0].caption
    assert caption == "done, step 40: 256 DDIM-50 samples, seed 0 (the same noise at every step)"


def start_fake_run(name: str, steps: int, monkeypatch) -> None:
    """A run of the fake trainer (0.05 s a step), returned once it has logged 2 steps."""
    monkeypatch.setenv("DSTAB_TRAIN_COMMAND", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("FAKE_STEP_S", "0.05")
    runs.start(name, preset="baseline", overrides=[*TINY, f"steps={steps}"], device="cpu")
    deadline = time.monotonic() + 600  # a hang guard, no speed limit
    while runs.status(name).step < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_running_run_is_polled_and_the_stop_button_stops_it(ws, monkeypatch):
    start_fake_run("live", 100000, monkeypatch)
    at = page()
    table = at.dataframe[0].value
    assert table.iloc[0]["status"] == "running" and table.iloc[0]["step"] >= 2
    at.button(key="stop").click().run()
    assert runs.wait("live", timeout=600).state == "stopped"
    at.run()
    assert at.dataframe[0].value.iloc[0]["status"] == "stopped"


def loss_traces(at) -> set[str]:
    fig = figures(at).get("Training loss")
    return {t["name"] for t in fig["data"] if t.get("showlegend") is not False} if fig else set()


def test_a_run_watched_while_active_stays_on_the_charts_when_it_finishes(ws, monkeypatch):
    # seen in Chromium: a tab opened while the runs trained showed them, and the moment they finished
    # they left every chart ("all active + chosen", and they had never been chosen)
    start_fake_run("watched", 40, monkeypatch)
    at = page()
    assert "watched" in loss_traces(at)
    assert runs.wait("watched", timeout=600).state == "finished"
    at.run()
    assert not at.exception
    assert "watched" in loss_traces(at)
    assert at.multiselect(key="training_chosen").value == ["watched"]
    at.multiselect(key="training_chosen").set_value([]).run()  # the user's removal holds
    assert "watched" not in loss_traces(at)


def test_a_sweep_of_presets_and_seeds_is_queued_as_one_group(ws, monkeypatch):
    monkeypatch.setenv("DSTAB_TRAIN_COMMAND", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("FAKE_STEP_S", "0.05")
    monkeypatch.setenv("DSTAB_MAX_RUNS_PER_DEVICE", "1")
    at = page()
    at.selectbox[0].set_value("toy2d:8gaussians").run()  # dataset
    at.text_input(key="launch_name").set_value("abl").run()
    at.multiselect(key="sweep_variants").set_value(["baseline", "mdlrc-clts"]).run()
    # a sweep starts at the seeds its compare panel needs (it refused the old default of 1)
    assert at.number_input(key="sweep_seeds_sweep").value == 2
    at.text_area(key="sweep_axes").set_value("lr=1e-3,2e-3").run()
    assert not at.error, [e.value for e in at.error]
    assert at.button(key="launch").label == "Launch 8 runs"
    # the preview offers every variant, and the time is every run's, one at a time on the device
    preview = next(s for s in at.selectbox if s.label.startswith("Preview a variant"))
    assert preview.label == "Preview a variant (4)" and "mdlrc-clts lr=0.002" in preview.options
    next(b for b in at.button if b.label.startswith("Measure steps/s")).click().run()
    eta = next(i.value for i in at.info if "min of training" in i.value)
    found = re.search(r"≈ ([\d.]+) min of training for 8 runs of ([\d.]+)-([\d.]+) min, 1 at a time", eta)
    assert found, eta
    assert float(found.group(1)) == pytest.approx(8 * float(found.group(3)), abs=0.8)  # one setup, taking turns
    at.button(key="launch").click().run()
    assert not at.exception and not at.error
    statuses = {s.name: s for s in runs.list_runs()}
    assert sorted(statuses) == sorted(
        f"abl-{v}-lr{lr}-s{s}" for v in ("baseline", "mdlrc-clts") for lr in ("0.001", "0.002") for s in (0, 1)
    )
    assert {s.group for s in statuses.values()} == {"abl"}
    assert sorted(s.state for s in statuses.values()).count("running") == 1
    cfg = runboard_config("abl-baseline-lr0.002-s1")
    assert (cfg["beta1"], cfg["momentum"], cfg["timesteps"]) == (0.9, {"name": "constant"}, {"name": "uniform"})
    assert (cfg["lr"], cfg["seed"], cfg["data_seed"], cfg["dataset"]) == (2e-3, 1, 1, "toy2d:8gaussians")
    assert runboard_config("abl-mdlrc-clts-lr0.001-s0")["momentum"]["name"] == "md-lrc"


def test_a_sweep_the_runs_would_refuse_is_refused_before_the_launch_button(ws):
    """Issue 27: the page checked a sweep's networks only when Launch was clicked; now as the form is filled,
    by the trainer's own rule (the single run's form did so already)."""
    at = page()
    at.multiselect(key="sweep_variants").set_value(["baseline", "mdlrc-clts"]).run()
    at.text_area(key="sweep_axes").set_value("width=-5,16").run()
    assert any(
        "The trainer refuses this configuration" in e.value
        and "model_channels must be a positive integer, got -5" in e.value
        for e in at.error
    ), [e.value for e in at.error]
    assert not [b for b in at.button if b.key == "launch"] and runs.run_names() == []


def test_typing_a_sweep_on_a_dataset_not_downloaded_fetches_nothing(ws, tmp_path, monkeypatch):
    """The page checks a sweep as its axes are typed: `dataset=cifar10` built the trainer, which fetched
    CIFAR-10 (170 MB) on that rerun. Now the check downloads nothing, says so, and offers the launch."""
    import torchvision.datasets.utils as tv_utils

    fetched = []
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", lambda url, *a, **k: fetched.append(url))
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    at = page()
    at.multiselect(key="sweep_variants").set_value(["baseline", "mdlrc-clts"]).run()
    at.text_area(key="sweep_axes").set_value("dataset=cifar10").run()
    assert [i.value for i in at.info if "CIFAR-10 is not downloaded yet" in i.value], [i.value for i in at.info]
    assert not at.error and [b for b in at.button if b.key == "launch"] and fetched == []


def runboard_config(name):
    from dstab.runs import runboard

    return runboard.run_config(name)


def test_broken_and_vanished_runs_are_shown_with_reasons_and_the_rest_keeps_working(ws, monkeypatch):
    monkeypatch.setenv("DSTAB_TRAIN_COMMAND", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    monkeypatch.setenv("DSTAB_MAX_RUNS_PER_DEVICE", "3")
    for name in ("good", "corrupt", "vanishing"):
        runs.start(name, preset="baseline", overrides=[*TINY, "steps=10"], device="cpu")
    for name in ("good", "corrupt", "vanishing"):
        assert runs.wait(name, timeout=600).state == "finished"
    (ws / "corrupt" / "run" / "metrics.sqlite").write_bytes(b"garbage" * 1000)
    at = page()
    shutil.rmtree(ws / "vanishing")
    at.run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("run")
    assert table.loc["good", "status"] == "finished" and table.loc["good", "step"] == 10
    assert table.loc["corrupt", "status"] == "broken" and "metrics database unreadable" in table.loc["corrupt", "note"]
    assert table.loc["vanishing", "status"] == "broken" and "was deleted" in table.loc["vanishing", "note"]
    shown = [e.value.split(":")[0] for e in at.error]
    assert "corrupt is broken" in shown and "vanishing is broken" in shown and "good is broken" not in shown
    assert "Training loss" in figures(at)  # the good run's curves still draw


def _finished_dir(root, name, fd_rows, created):
    """A finished run's directory as runs.py and the trainer leave it (no process needed)."""
    d = root / name
    (d / "run" / "checkpoints").mkdir(parents=True)
    (d / "launch.json").write_text(json.dumps({"device": "cpu", "total_steps": 400, "created": created}))
    (d / "pid").write_text(json.dumps({"pgid": 2**22 + 11, "started": 0.0}))
    (d / "exit_code").write_text("0")
    (d / "run" / "checkpoints" / "step0000400.safetensors").write_bytes(b"x")
    (d / "run" / "status.json").write_text(json.dumps({"state": "finished", "step": 400, "error": None}))
    con = sqlite3.connect(d / "run" / "metrics.sqlite")
    con.execute(METRICS_TABLE)
    con.executemany("INSERT INTO metrics VALUES (?, 'fd_local@64x10ddim', ?, ?)", [(s, v, s) for s, v in fd_rows])
    con.commit()
    con.close()


def test_compare_panel_shows_the_verdict_the_cli_prints(ws):
    from dstab.experiments import compare, verdict
    from tests.compare_helpers import fake_group

    rate = {"baseline": 2.0, "mdlrc-clts": 4.0}
    fake_group(
        ws,
        "g",
        {v: (lambda r: lambda step, seed: 10 * (20.0 + seed - r * step / 1000))(r) for v, r in rate.items()},
        steps=2000,
    )
    at = page()
    result = compare.compare("g")
    shown = "\n".join(m.value for m in at.markdown)
    assert all(t in shown for t in verdict.sentences(result)), shown
    rows = next(d.value for d in at.dataframe if "ladder crossings" in d.value.columns)  # the readout table
    assert rows.iloc[0]["ladder crossings"] == verdict.rows(result)[0]["ladder crossings"]
    assert rows.iloc[0]["verdict"] == result["comparisons"][0]["verdict"]["word"] == "depends on the readout"
    fig = figures(at)["g: FD (local features), 250 samples, 10 DDIM steps"]
    legend = [t["name"] for t in fig["data"] if t.get("showlegend") is not False]
    assert [n for n in legend if "mean of" in n] == [
        "baseline (mean of 3, 90% t-band)",
        "mdlrc-clts (mean of 3, 90% t-band)",
    ]
    assert any(n.startswith("ladder levels: ") for n in legend)
    assert any(n.startswith("floor: real data vs reference") for n in legend)


def test_the_previews_follow_the_run_and_the_charts_read_on_a_projector(ws):
    at = page()
    at.number_input(key="launch_mdlrc-clts_steps").set_value(200).run()
    # P(t) at the iterations of this run (CLTS's target at 20% of 200), not a 3,000-step run's
    assert at.text_input(key="pmf_its_200_40").value == "0, 20, 40, 200"
    schedules = next(f for title, f in figures(at).items() if title.startswith("beta1 and learning rate"))
    lr = max(_values(schedules["data"][1]["y"]))
    assert schedules["layout"]["yaxis"]["range"] == [0, 1.05]  # beta1 in its own panel, above the lr's
    assert schedules["layout"]["yaxis2"]["range"] == pytest.approx([0, 1.1 * lr])
    assert schedules["layout"]["yaxis"]["domain"][0] > schedules["layout"]["yaxis2"]["domain"][1]


def test_show_group_is_in_the_url_and_a_stop_is_confirmed_until_its_run_has_ended(ws, monkeypatch):
    start_fake_run("kept", 100000, monkeypatch)
    runs.start("g-a", preset="baseline", overrides=[*TINY, "steps=4"], device="cpu", group="grp")
    at = page()
    at.selectbox(key="training.show").set_value("group grp").run()
    assert at.query_params["show"] == "group grp"
    again = AppTest.from_file(str(REPO / "pages" / "training.py"), default_timeout=120)
    again.query_params["show"] = "group grp"
    again.run()
    assert again.selectbox(key="training.show").value == "group grp"  # a reload shows the same runs
    at.selectbox(key="training.run").set_value("kept").run()
    at.button(key="stop").click().run()
    assert any("kept: stop requested" in s.value for s in at.success)
    runs.wait("kept", timeout=60)
    at.run()  # the run's end reruns the page: the confirmation is still there
    assert any("kept: stop requested" in s.value for s in at.success)
