"""`reproduce speedup` as a preset of sweep + compare: its runs, its RESULTS.md section, refusals."""

from __future__ import annotations

import json
import shutil

import pytest

from dstab import resultsmd
from dstab.cli import main
from dstab.experiments import protocol, speedup, sweep
from dstab.experiments.protocol import Protocol
from tests.compare_helpers import fake_group, fake_run
from tests.test_compare import linear


def fd_like(rate):  # FD-sized (well above FD@250's floor band, which tops out near 48), falling linearly
    return lambda step, seed: 10 * linear(rate)(step, seed)


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
        {"baseline": fd_like(2.0), "mdlrc-clts": fd_like(2.4), "lr-matched": fd_like(2.4)},
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
    assert (
        "| mdlrc-clts vs baseline | 3 | 1.21x [1.18, 1.23], p = 0.00142, Holm 0.0114; sign-flip p = 0.25 (its floor) |"
        in text
    )
    assert "baseline is still improving at 3000 iterations on seeds [0, 1, 2]" in text
    assert "The paper's claim (about 2x sooner) at this scale, by the ladder readout: does not hold" in text
    assert "The floor is 20.3% of the best final level (148.8)" in text  # FD@250's floor: 30.1 +- 9
    assert "batch 32" in text and "3000 iterations" in text
    assert (tmp_path / "results" / "speedup-digits-curves.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "results" / "speedup-digits.json").read_text())
    assert summary["group"] == "speedup-digits" and summary["reference"] == "baseline"
    kept = sorted((tmp_path / "results" / "speedup-runs").glob("*.json"))  # each run's curves outlive the workspace
    assert not any(p.name.startswith("g-") for p in kept)
    assert len(kept) == len(summary["variants"]) * len(summary["variants"]["baseline"]["seeds"])
    one = json.loads(kept[0].read_text())
    assert one["status"]["state"] == "finished" and one["config"]["batch_size"] == 32
    assert [p[0] for p in one["metrics"][summary["metric"]]] == summary["variants"]["baseline"]["steps"]
    assert main(argv) == 0 and results.read_text().count("BEGIN dstab reproduce speedup") == 1  # replaced


def test_report_only_without_finished_runs_fails_loudly(tmp_path, capsys):
    runs_root = tmp_path / "runs"
    fake_run(runs_root, "speedup-digits-baseline-s0", "speedup-digits", "baseline", 0, lambda s: 300.0,
             steps=1000, state="running")  # fmt: skip
    code = main(
        ["reproduce", "speedup", "--report-only", "--root", str(runs_root), "--results", str(tmp_path / "R.md")]
    )
    assert code == 2 and "group 'speedup-digits' has no finished runs yet (1 runs: died 1)" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()


@pytest.mark.parametrize("bad", [["--variants", "baseline,nope"], ["--set", "nope=1"], ["--seeds", "0"]])
def test_bad_requests_are_refused_before_anything_is_queued(tmp_path, bad, capsys):
    assert main(["reproduce", "speedup", "--dry-run", "--root", str(tmp_path), *bad]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def confirm_args(root, *more):
    return ["reproduce", "speedup", "--confirm", "--root", str(root), "--variants", "baseline,mdlrc-clts", *more]


def test_a_confirmation_refuses_seeds_an_earlier_run_used(tmp_path, capsys, monkeypatch):
    root = tmp_path / "ws" / "runs"
    fake_group(root, "speedup-digits", {"baseline": fd_like(2.0)}, seeds=(0, 1, 2), steps=1000)
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "speedup-digits-baseline-s7.json").write_text(
        json.dumps({"name": "speedup-digits-baseline-s7", "launch": {"group": "speedup-digits"}, "config": {"seed": 7}})
    )
    launched = []
    monkeypatch.setattr(sweep, "launch", lambda group, planned, *a, **k: launched.append(planned) or [])
    assert main(confirm_args(root, "--seeds", "2,3,4", "--summaries", str(kept))) == 2
    err = capsys.readouterr().err
    assert "seeds [2] were already run in group 'speedup-digits' (its seeds: [0, 1, 2, 7])" in err
    assert main(confirm_args(root, "--seeds", "7,8", "--summaries", str(kept))) == 2  # a summary's seed too
    assert not launched and not protocol.record_path("speedup-digits-confirm", root).exists()
    assert main(confirm_args(root, "--seeds", "5,6", "--protocol", "final_k=3", "--summaries", str(kept))) == 2
    assert "cannot change a confirmation's readouts" in capsys.readouterr().err
    assert main(confirm_args(root, "--seeds", "5,6", "--summaries", str(kept))) == 0
    # fresh seeds: the protocol is fixed with the group first, then the reference arm alone is queued
    record = protocol.read_record("speedup-digits-confirm", root)
    # this group has a committed pre-registration (results/preregistered): its protocol is the one stored
    assert record["protocol"] == Protocol(metric="fd_local@1000x10ddim").to_dict() and record["seeds"] == [5, 6]
    assert record["exploration"] == "speedup-digits"
    assert [r.name for r in launched[0]] == ["speedup-digits-confirm-baseline-s5", "speedup-digits-confirm-baseline-s6"]


def test_the_confirmation_report_puts_its_verdicts_first_beside_the_exploration(tmp_path):
    root = tmp_path / "ws" / "runs"
    curves = {"baseline": fd_like(2.0), "mdlrc-clts": fd_like(2.4)}
    fake_group(root, "speedup-digits", curves, seeds=(0, 1, 2), steps=3000)
    speedup.save_run_summaries("speedup-digits", tmp_path / "results" / "speedup-runs", root)
    for p in root.glob("speedup-digits-*"):
        shutil.rmtree(p)  # the exploration lives on as summaries only
    protocol.store("speedup-digits-confirm", root, Protocol(), seeds=[5, 6, 7])
    fake_group(root, "speedup-digits-confirm", curves, seeds=(5, 6, 7), steps=3000)
    fake_run(root, "speedup-digits-confirm-baseline-s8", "speedup-digits-confirm", "baseline", 8,
             lambda st: 300.0, steps=3000, state="running")  # fmt: skip
    results = tmp_path / "RESULTS.md"
    assert main(confirm_args(root, "--report-only", "--results", str(results))) == 0
    text = results.read_text()
    head = text.index("**Confirmation (fresh seeds, readouts fixed before the runs):**")
    assert head < text.index("side by side") < text.index("### Confirmation") < text.index("### Exploration")
    assert "- mdlrc-clts vs baseline: **depends on the readout (" in text
    assert "Seeds finished per arm: baseline 3 of 3 (5, 6, 7), mdlrc-clts 3 of 3 (5, 6, 7).\n" in text
    assert (
        "| mdlrc-clts vs baseline | ladder crossings | 1.21x [1.18, 1.25], p = 0.00243, Holm 0.0038; sign-flip p = 0.25"
        in text
    )
    assert "Partial: not counted: speedup-digits-confirm-baseline-s8 (died" in text  # a fake run: no live process
    assert (
        "fixed for this group before its runs (" in text
        and (tmp_path / "results" / "speedup-digits-confirm.json").exists()
    )


def test_a_confirmation_without_finished_runs_says_how_far_it_is(tmp_path):
    root = tmp_path / "ws" / "runs"
    curves = {"baseline": fd_like(2.0), "mdlrc-clts": fd_like(2.4)}
    fake_group(root, "speedup-digits", curves, seeds=(0, 1, 2), steps=3000)
    for v in ("baseline", "mdlrc-clts"):
        fake_run(root, f"speedup-digits-confirm-{v}-s5", "speedup-digits-confirm", v, 5, lambda st: 300.0,
                 steps=3000, state="running")  # fmt: skip
    results = tmp_path / "RESULTS.md"
    assert main(confirm_args(root, "--report-only", "--results", str(results))) == 0
    text = results.read_text()
    assert "**Confirmation:** group `speedup-digits-confirm`: 0 of 2 runs finished (died 2); no verdict yet." in text
    assert "### Exploration: group `speedup-digits`" in text
