"""Run length decided by the data: the reference first, extended until its plateau test fires on every
seed (an extended run equals a longer launch), then the other arms at the length decided."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from dstab import runs
from dstab.errors import DstabError
from dstab.experiments import protocol, runlength, speedup
from dstab.experiments.protocol import Protocol
from dstab.fileio import write_json
from dstab.runs import runner
from dstab.training import config as train_config
from tests.compare_helpers import fake_run
from tests.test_train_runs import final_params, metric_rows
from tests.training_helpers import one_thread, tiny_dm  # noqa: F401 (one_thread is a fixture)


@pytest.mark.parametrize(
    ("fired", "current", "want"),
    [
        ({0: 1200, 1: 2400}, 3000, ("extend", 4000)),  # 1.5 x 2400 = 3600, up to a checkpoint
        ({0: 1200, 1: 1800}, 3000, ("launch", 3000)),  # 2700 <= 3000: the runs are long enough
        ({0: None, 1: 1000}, 3000, ("extend", 6000)),  # a seed still improving: twice as long
        ({0: 5000, 1: 6000}, 6000, ("extend", 9000)),
        ({0: 7000, 1: 8000}, 9000, ("extend", 12000)),  # 1.5 x 8000 = 12000: the maximum
        ({0: None, 1: 1000}, 12000, ("launch", 12000)),  # still improving at the maximum: say so, go on
    ],
)
def test_the_length_decision(fired, current, want):
    assert runlength.decide(fired, current, 12000, 1.5, 1000) == want


def test_only_a_reference_whose_schedules_ignore_the_length_can_be_extended():
    assert runlength.length_free(train_config.resolve("baseline", networks=False)) == []
    assert runlength.length_free(train_config.resolve("clts", networks=False)) == ["its timestep sampler (clts)"]
    assert runlength.length_free(train_config.resolve("mdlrc-clts", networks=False)) == [
        "its beta1 / lr schedule",
        "its timestep sampler (clts)",
    ]


def finished_run(root, name: str, cfg: dict):
    path = root / name
    path.mkdir(parents=True)
    write_json(path / "pid", {"pgid": 2**22 + 12345, "mode": "start", "started": time.time() - 5})
    runner.start(path / "run", cfg, echo=False)
    write_json(path / "request.json", cfg)
    launch = {"name": name, "group": "g", "preset": "baseline", "device": "cpu", "total_steps": cfg["steps"]}
    write_json(path / "launch.json", {**launch, "created": time.time()})
    (path / "exit_code").write_text("0\n")
    return path


@pytest.mark.usefixtures("one_thread")
def test_an_extended_reference_equals_a_run_launched_at_that_length(tmp_path, monkeypatch):
    cfg = tiny_dm(steps=8, beta1=0.9, momentum={"name": "constant"}, timesteps={"name": "uniform"})
    path = finished_run(tmp_path, "ref", cfg)
    assert runs.status("ref", tmp_path).state == "finished"
    monkeypatch.setattr(runs, "schedule", lambda root=None: [])  # the test resumes it in this process
    assert runs.extend("ref", 16, tmp_path).state == "queued"
    assert json.loads((path / "launch.json").read_text())["total_steps"] == 16
    runner.resume(path / "run", echo=False)
    runner.start(tmp_path / "whole", {**cfg, "steps": 16}, echo=False)
    a, b = final_params(tmp_path / "whole"), final_params(path / "run")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert metric_rows(tmp_path / "whole") == metric_rows(path / "run")
    with pytest.raises(DstabError, match="only a finished run can be extended"):
        runs.extend("ref", 32, tmp_path)  # queued, not finished


def flat(step, seed):  # level, +-5% alternating noise: the plateau test fires at its first full window
    return 150.0 * np.exp(0.05 * (1 if (step // 100 + seed) % 2 else -1))


def test_advance_runs_the_reference_first_then_extends_or_launches(tmp_path, monkeypatch):
    root = tmp_path / "ws" / "runs"
    root.mkdir(parents=True)
    _, planned = speedup.plan("digits", ["baseline", "mdlrc-clts"], [0, 1], ["steps=3000"], "g")
    launched, extended = [], []

    def replan(n):  # as reproduce's: the arms other than the reference (plan wants the baseline named)
        arms = speedup.plan("digits", ["baseline", "mdlrc-clts"], [0, 1], [f"steps={n}"], "g")[1]
        return [r for r in arms if r.variant != "baseline"]

    def step():
        return runlength.advance("g", planned, replan, Protocol(), 12000, root, launched.append)

    stage, text = step()
    assert stage == "launched" and [r.name for r in launched[0]] == ["g-baseline-s0", "g-baseline-s1"]
    assert "queued the reference arm first (2 runs of baseline, 3000 iterations)" in text
    for s in (0, 1):  # the reference's runs, done: flat from the start, the test fires at 2000
        fake_run(root, f"g-baseline-s{s}", "g", "baseline", s, lambda st, s=s: flat(st, s), steps=3000)
    stage, text = step()
    assert stage == "launched" and [(r.variant, r.config["steps"]) for r in launched[1]] == [("mdlrc-clts", 3000)] * 2
    assert "fired at seed 0: 2000, seed 1: 2000" in text
    record = protocol.read_record("g", root)
    assert record["length"]["decided"] == 3000 and record["length"]["history"][-1]["fired"] == {"0": 2000, "1": 2000}
    # a reference that is still falling is extended (twice as long), once it has finished
    monkeypatch.setattr(runs, "extend", lambda name, n, root=None: extended.append((name, n)))
    _, planned = speedup.plan("digits", ["baseline", "clts"], [0, 1], ["steps=3000"], "h")
    for s in (0, 1):
        fake_run(root, f"h-baseline-s{s}", "h", "baseline", s, lambda st: 600.0 - 0.1 * st, steps=3000)
    stage, text = runlength.advance("h", planned, replan, Protocol(), 12000, root, launched.append)
    assert stage == "extended" and extended == [("h-baseline-s0", 6000), ("h-baseline-s1", 6000)]
    assert "seed 0: not yet" in text


def test_a_reference_with_length_dependent_schedules_is_refused(tmp_path):
    _, planned = speedup.plan("digits", ["mdlrc-clts", "baseline"], [0], [], "g")
    with pytest.raises(DstabError, match="depend on the run's length"):
        runlength.advance("g", planned, None, Protocol(reference="mdlrc-clts"), 12000, tmp_path, None)
