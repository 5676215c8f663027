"""What the training page shows, without streamlit: metric names, launch requests, previews, table rows."""

import json
import sqlite3

import numpy as np
import pytest

from dstab import runs
from dstab.metricnames import metric_label
from dstab.runs import runboard
from dstab.runs.rundir import METRICS_TABLE
from dstab.runs.runmetrics import RunMetrics
from dstab.training import config as train_config


def test_eval_metric_prefers_fid_and_labels_local_features_honestly():
    assert runboard.eval_metric(["loss", "fd_local@500x50ddim", "fid@500x50ddim"]) == "fid@500x50ddim"
    assert runboard.eval_metric(["loss", "fd_local@500x50ddim"]) == "fd_local@500x50ddim"
    assert runboard.eval_metric(["loss", "lr"]) is None
    assert metric_label("fd_local@500x50ddim", short=True) == "FD (local features), 500x50ddim"
    assert metric_label("fid@10000x100ddim", short=True) == "FID, 10000x100ddim"


def test_page_requests_resolve_to_what_the_trainer_will_run():
    hyper = {"steps": 2000, "lr": 5e-4, "timesteps": {"name": "clts", "mu": 300.0, "sigma": 1000.0, "target_iter": 400}}
    sets = runboard.request_overrides("toy2d:swissroll", "small", hyper)
    cfg = train_config.resolve("mdlrc-clts", None, sets)
    assert cfg["dataset"] == "toy2d:swissroll" and cfg["arch"] == {"arch": "mlp_denoiser", "hidden": 64}
    assert (cfg["steps"], cfg["lr"], cfg["timesteps"]["target_iter"]) == (2000, 5e-4, 400)
    assert cfg["momentum"] == {"name": "md-lrc"}  # the preset's own, untouched


def test_preview_pmf_and_schedules_match_the_paper_formulas():
    cfg = train_config.resolve("mdlrc-clts", None, ["steps=1200", "lr=1e-3"])
    T = cfg["diffusion"]["T"]
    target = 0.2 * 1200  # the preset's target_frac
    view = runboard.preview(cfg, [0, int(target), 1199])
    np.testing.assert_allclose(view["pmf"][0], np.full(T, 1.0 / T), rtol=1e-12)
    t = np.arange(T)
    gauss = np.exp(-0.5 * ((t - 0.3 * T) / T) ** 2)
    np.testing.assert_allclose(view["pmf"][240], gauss / gauss.sum(), rtol=1e-9)  # g = 1 at target_iter
    assert view["pmf"][240].max() / view["pmf"][240][-1] == pytest.approx(
        np.exp(0.5 * 0.699**2), rel=1e-9
    )  # the ~1.28x of DESIGN.md
    assert view["beta1"][0] == pytest.approx(0.8) and view["lr"][0] == pytest.approx(1e-3)
    assert view["beta1"][-1] == pytest.approx(0.4)  # the floor
    assert view["lr"][-1] == pytest.approx(1e-3 * 0.2 / 0.6)  # LRC: l0 (1 - beta0) / (1 - beta_t) = l0 / 3


def test_table_row_numbers_come_from_the_database(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_WORKSPACE", str(tmp_path))
    root = runs.workspace_root()
    d = root / "r"
    (d / "run" / "checkpoints").mkdir(parents=True)
    (d / "launch.json").write_text(json.dumps({"device": "cpu", "total_steps": 100, "created": 1.0, "group": "g"}))
    (d / "pid").write_text(json.dumps({"pgid": 2**22 + 9, "started": 1000.0}))
    (d / "exit_code").write_text("0")
    (d / "run" / "checkpoints" / "step0000040.safetensors").write_bytes(b"x")
    (d / "run" / "status.json").write_text(json.dumps({"state": "stopped", "step": 40, "error": None}))
    con = sqlite3.connect(d / "run" / "metrics.sqlite")
    con.execute(METRICS_TABLE)
    rows = [(s, "loss", 1.0 / s, 1000.0 + s / 4) for s in range(10, 41, 10)]  # 4 steps/s
    rows += [(20, "fd_local@64x10ddim", 9.5, 1005.0), (40, "fd_local@64x10ddim", 7.25, 1010.0)]
    con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", rows)
    con.commit()
    st = runs.status("r")
    m = RunMetrics(d / "run" / "metrics.sqlite")
    m.refresh()
    row = runboard.table_row(st, m)
    assert row["status"] == "stopped" and row["step"] == 40 and row["of"] == 100 and row["group"] == "g"
    assert row["latest FD/FID"] == 7.25 and row["metric"] == "FD (local features), 64x10ddim"
    assert row["steps/s"] == 4.0 and row["ETA (h:mm)"] == "" and row["progress"] == 0.4  # stopped: no ETA
    assert [runboard.hours_minutes(s) for s in (0, 1, 60, 61, 3599, 3600, 36000)] == [
        "0:00",
        "0:01",
        "0:01",
        "0:02",
        "1:00",
        "1:00",
        "10:00",
    ]
    assert runboard.checkpoint_files("r") == {40: d / "run" / "checkpoints" / "step0000040.safetensors"}
