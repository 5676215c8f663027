"""Runs recover the way their messages say: real kills (SIGKILL) during an evaluation and during the
write of the resume state, resumed to the same weights and the same metric series as an uninterrupted
run; a damaged newest resume state or checkpoint, a missing resume.pt, a damaged metrics database, a
failed run resumed from the run manager."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dstab import checkpoints, runs
from dstab.errors import DstabError
from dstab.runs import rundir, runner
from dstab.runs.runmetrics import RunMetrics
from dstab.training import resume_state
from tests.training_helpers import one_thread, tiny_dm  # noqa: F401 (one_thread is a fixture)

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "fake_trainer.py"
CFG = tiny_dm(steps=8, checkpoint_every=2, eval_every=4)

# runs the trainer with a deterministic stand-in for FD (a number of the EMA weights) and kills itself
# (SIGKILL: no handler, no cleanup) at the named point of step KILL_AT
DRIVER = r"""
import json, os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from dstab.runs import runner
from dstab.training import resume_state
point, run_dir, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[4])

def evaluator(trainer):
    def evaluate(tr):
        if point == "evaluation" and tr.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"fd_fake@1": float(sum(p.double().sum() for p in tr.eval_modules()["model"].parameters()))}
    return evaluate

runner._evaluator = evaluator
real_write = resume_state.atomic_write_bytes
resume_writes = []

def write(path, payload):
    resume_writes.extend([1] if Path(path).name == ".resume.pt.next.tmp" else [])
    if point == "resume-write" and len(resume_writes) == kill_at // 2:  # checkpoint_every = 2
        tmp = Path(path).with_name(f".{Path(path).name}.killed.tmp")
        tmp.write_bytes(payload[: len(payload) // 2])  # half written when the kill lands
        os.kill(os.getpid(), signal.SIGKILL)
    real_write(path, payload)

resume_state.atomic_write_bytes = write
runner.start(run_dir, json.loads(sys.argv[3]), echo=False)
"""


def fake_fd(trainer):
    return lambda tr: {"fd_fake@1": float(sum(p.double().sum() for p in tr.eval_modules()["model"].parameters()))}


def final(run_dir: Path) -> dict[str, torch.Tensor]:
    state = resume_state.load_resume_state(run_dir / "checkpoints")
    return {**state["modules"]["model"], **{f"ema.{k}": v for k, v in state["ema"]["module"].items()}}


def rows(run_dir: Path) -> list[tuple]:
    return [
        (s, n, v)
        for s, n, v, _ in RunMetrics.read(run_dir / "metrics.sqlite").rows()
        if n not in ("samples_per_s", "cpu_s")
    ]


@pytest.fixture
def reference(tmp_path, monkeypatch, one_thread):  # noqa: F811
    monkeypatch.setattr(runner, "_evaluator", fake_fd)
    runner.start(tmp_path / "whole", CFG, echo=False)
    return tmp_path / "whole"


def killed(tmp_path, point: str, step: int) -> Path:
    run_dir = tmp_path / f"killed-{point}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, point, str(run_dir), json.dumps(CFG), str(step)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL
    return run_dir


def test_a_kill_during_an_evaluation_is_redone_on_resume(tmp_path, reference):
    run_dir = killed(tmp_path, "evaluation", 4)
    assert ("fd_fake@1" not in {n for s, n, _ in rows(run_dir) if s == 4}) and rundir.checkpoint_steps(run_dir)[-1] == 4
    runner.resume(run_dir, echo=False)
    assert rows(run_dir) == rows(reference)  # the FD point of step 4 is there: no gap
    assert [s for s, n, _ in rows(run_dir) if n == "fd_fake@1"] == [4, 8]
    a, b = final(reference), final(run_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_kill_while_the_resume_state_is_written_resumes_from_the_one_before(tmp_path, reference, capsys):
    run_dir = killed(tmp_path, "resume-write", 4)
    ckpts = run_dir / "checkpoints"
    assert any(p.name.endswith(".tmp") for p in ckpts.iterdir())  # the half-written file
    assert resume_state.load_resume_state(ckpts)["step"] == 2
    runner.resume(run_dir, echo=False)
    assert "removed 1 temporary files" in capsys.readouterr().out
    assert not [p for p in ckpts.iterdir() if p.name.endswith(".tmp")]
    assert rows(run_dir) == rows(reference)
    a, b = final(reference), final(run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _stopped_at_6(tmp_path, monkeypatch) -> Path:
    """A run stopped after step 6 (checkpoints 2, 4, 6; resume.pt at 6, resume.prev.pt at 4)."""
    run_dir = tmp_path / "stopped"
    real = rundir.MetricsDB.write

    def write(self, s, values, wall=None):
        real(self, s, values, wall)
        if s == 6 and "loss" in values:
            os.kill(os.getpid(), 15)

    monkeypatch.setattr(rundir.MetricsDB, "write", write)
    assert runner.start(run_dir, CFG, echo=False)["stopped"]
    monkeypatch.setattr(rundir.MetricsDB, "write", real)
    return run_dir


def test_a_damaged_newest_resume_state_falls_back_to_the_previous_with_a_note(tmp_path, reference, monkeypatch, capsys):
    run_dir = _stopped_at_6(tmp_path, monkeypatch)
    ckpts = run_dir / "checkpoints"
    (ckpts / "resume.pt").write_bytes((ckpts / "resume.pt").read_bytes()[:100])
    runner.resume(run_dir, echo=False)
    out = capsys.readouterr().out
    assert "resume.pt is damaged" in out and "resuming from resume.prev.pt at step 4" in out
    assert rows(run_dir) == rows(reference)
    a, b = final(reference), final(run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_damaged_checkpoint_at_the_resume_point_is_rewritten_with_a_note(tmp_path, reference, monkeypatch, capsys):
    run_dir = _stopped_at_6(tmp_path, monkeypatch)
    newest = run_dir / "checkpoints" / "step0000006.safetensors"
    newest.write_bytes(newest.read_bytes()[:-50])
    runner.resume(run_dir, echo=False)
    assert "checkpoint at the resume point was unusable" in capsys.readouterr().out
    assert checkpoints.load(newest).header["step"] == 6
    same = checkpoints.load(reference / "checkpoints" / newest.name).header["weights_sha256"]
    assert checkpoints.load(newest).header["weights_sha256"] == same


def test_a_missing_resume_state_is_reported_and_the_metrics_kept(tmp_path, monkeypatch):
    run_dir = _stopped_at_6(tmp_path, monkeypatch)
    for name in ("resume.pt", "resume.prev.pt"):
        (run_dir / "checkpoints" / name).unlink()
    before = rows(run_dir)
    with pytest.raises(DstabError, match="resume.pt is missing although checkpoints up to step 6 exist"):
        runner.resume(run_dir, echo=False)
    assert rows(run_dir) == before and max(s for s, _, _ in before) == 6


def test_a_damaged_metrics_database_is_named(tmp_path, monkeypatch):
    run_dir = _stopped_at_6(tmp_path, monkeypatch)
    for f in run_dir.glob("metrics.sqlite*"):
        f.unlink()
    (run_dir / "metrics.sqlite").write_bytes(b"garbage" * 1000)
    with pytest.raises(DstabError, match=r"metrics.sqlite is damaged \(file is not a database\); move it aside"):
        runner.resume(run_dir, echo=False)


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("DSTAB_TRAIN_COMMAND", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    return runs.workspace_root()


TINY = ["dataset=toy2d:8gaussians", 'arch={"arch": "mlp_denoiser"}', "eval_every=null", "batch_size=8", "steps=10"]


def test_a_failed_run_with_a_checkpoint_resumes_from_the_run_manager(ws, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_AT", "6")  # after the step-5 checkpoint
    runs.start("flaky", preset="baseline", overrides=TINY, device="cpu")
    st = runs.wait("flaky", timeout=600)
    assert st.state == "failed" and "boom" in st.reason
    monkeypatch.delenv("FAKE_FAIL_AT")
    runs.resume("flaky")
    st = runs.wait("flaky", states=("finished", "failed", "died", "broken"), timeout=600)
    assert st.state == "finished" and st.step == 10


def test_a_failed_run_without_a_checkpoint_is_not_resumed(ws, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_AT", "2")  # before any checkpoint
    runs.start("early", preset="baseline", overrides=TINY, device="cpu")
    assert runs.wait("early", timeout=600).state == "failed"
    with pytest.raises(DstabError, match="only a stopped or died run, or a failed one with a checkpoint"):
        runs.resume("early")
    with pytest.raises(DstabError, match="no run named 'ghost'"):
        runs.resume("ghost")


def test_right_after_a_resume_runs_list_says_resuming_not_the_killed_runs_heartbeat(ws, capsys):
    """Issue 27: `runs list` showed "no heartbeat for 977 s" (the killed launch's) right after a resume."""
    import json
    import subprocess
    import time

    from dstab.cli import main

    path = ws / "again"
    (path / runs.RUN).mkdir(parents=True)
    (path / "launch.json").write_text(json.dumps({"name": "again", "total_steps": 10, "device": "cpu"}))
    # the resumed launch: alive (its command line names the run folder), started now, no heartbeat of its own
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(path)])
    try:
        now = time.time()
        (path / "pid").write_text(json.dumps({"pgid": proc.pid, "mode": "resume", "started": now}))
        beat = path / runs.RUN / "heartbeat"
        beat.write_text(json.dumps({"time": now - 977, "step": 6, "pid": 0}))  # the killed launch's
        st = runs.status("again")
        assert st.state == "running" and st.heartbeat_age_s is None and st.step == 6
        assert st.reason.startswith("resuming: launched ") and st.reason.endswith("s ago, no heartbeat from it yet")
        assert main(["runs", "list"]) == 0
        out = capsys.readouterr().out
        assert "resuming: launched" in out and "no heartbeat for 977" not in out
        beat.write_text(json.dumps({"time": time.time(), "step": 7, "pid": proc.pid}))  # its first heartbeat
        st = runs.status("again")
        assert st.state == "running" and st.reason is None and st.step == 7 and st.heartbeat_age_s < 60
    finally:
        proc.kill()
        proc.wait()
