"""`reproduce speedup` as a preset of sweep + compare: its runs, its RESULTS.md section, refusals."""

from __future__ import annotations

import json

import pytest

from dstab import resultsmd
from dstab.cli import main
from dstab.experiments import speedup
from tests.compare_helpers import fake_group
from tests.test_compare import linear


def test_the_preset_plans_the_setup_of_each_dataset():
    group, planned = speedup.plan("toy2d", ["baseline", "lr-matched"], [0, 1, 2])
    assert group == "speedup-toy2d" and len(planned) == 6
    cfg = planned[1].config
    assert (cfg["dataset"], cfg["steps"], cfg["batch_size"], cfg["eval_every"]) == ("toy2d:8gaussians", 8000, 256, 200)
    assert cfg["lr_schedule"] == {"name": "mdlrc", "beta0": 0.8, "floor": 0.4} and cfg["beta1"] == 0.9
    _, digits = speedup.plan("digits", ["baseline", "mdlrc-clts"], [0], sets=["steps=500", "lr=1e-3,2e-3"])
    assert [(r.config["steps"], r.config["lr"], r.config["arch"]["model_channels"]) for r in digits][1::2] == [
        (500, 1e-3, 16),
        (500, 2e-3, 16),
    ]  # the user's --set replaces the setup's value, or sweeps it
    _, paper = speedup.plan("digits", ["baseline", "md-lrc"], [0], use_paper=True)
    assert (paper[1].config["lr"], paper[1].config["batch_size"]) == (1e-4, 128)


def test_other_datasets_take_the_digits_scale_and_their_own_model():
    sets = speedup.setup_sets("toy2d:checkerboard")
    assert 'dataset="toy2d:checkerboard"' in sets
    sets = speedup.setup_sets("folder:/images")  # CIFAR-10 has the paper's own setup (tests/test_cifar10.py)
    assert 'dataset="folder:/images"' in sets and not any(s.startswith(("arch=", "eval_metric=")) for s in sets)


def test_report_only_regenerates_the_section_from_the_group(tmp_path, capsys):
    runs_root = tmp_path / "ws" / "runs"
    fake_group(
        runs_root,
        "speedup-digits",
        {"baseline": linear(2.0), "mdlrc-clts": linear(2.4), "lr-matched": linear(2.4)},
        steps=3000,
        batch_size=32,
    )
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Results\n\n"
        + resultsmd.markers("dstab report")[0]
        + "\nother\n"
        + resultsmd.markers("dstab report")[1]
        + "\n"
    )
    argv = [
        "reproduce",
        "speedup",
        "--report-only",
        "--root",
        str(runs_root),
        "--results",
        str(results),
        "--variants",
        "baseline,mdlrc-clts,lr-matched",
    ]
    assert main(argv) == 0
    text = results.read_text()
    assert "other" in text and text.count("BEGIN dstab reproduce speedup --dataset digits") == 1
    assert "mdlrc-clts reaches baseline's plateau" in text and "1.20x sooner than baseline" in text
    assert "The paper's claim (about 2x sooner) at this scale: does not hold" in text
    assert "Reading" not in text and "batch 32" in text and "3000 iterations" in text
    assert (tmp_path / "results" / "speedup-digits-curves.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "results" / "speedup-digits.json").read_text())
    assert summary["group"] == "speedup-digits" and summary["reference"] == "baseline"
    kept = sorted((tmp_path / "results" / "speedup-runs").glob("*.json"))  # each run's curves outlive the workspace
    assert len(kept) == len(summary["variants"]) * len(summary["variants"]["baseline"]["seeds"])
    one = json.loads(kept[0].read_text())
    assert one["status"]["state"] == "finished" and one["config"]["batch_size"] == 32
    assert [p[0] for p in one["metrics"][summary["metric"]]] == summary["variants"]["baseline"]["steps"]
    assert main(argv) == 0 and results.read_text().count("BEGIN dstab reproduce speedup") == 1  # replaced


def test_report_only_without_complete_seeds_fails_loudly(tmp_path, capsys):
    runs_root = tmp_path / "runs"
    fake_group(
        runs_root, "speedup-digits", {"baseline": linear(2.0), "mdlrc-clts": linear(2.4)}, seeds=(0,), steps=1000
    )
    code = main(
        ["reproduce", "speedup", "--report-only", "--root", str(runs_root), "--results", str(tmp_path / "R.md")]
    )
    assert code == 2 and "needs >= 2 complete seeds" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()


@pytest.mark.parametrize("bad", [["--variants", "baseline,nope"], ["--set", "nope=1"], ["--seeds", "0"]])
def test_bad_requests_are_refused_before_anything_is_queued(tmp_path, bad, capsys):
    assert main(["reproduce", "speedup", "--dry-run", "--root", str(tmp_path), *bad]) == 2
    assert capsys.readouterr().err.startswith("error: ")
