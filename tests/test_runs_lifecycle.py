"""A real `python -m dstab train` run driven through runs.py: read while it trains, stop, resume,
SIGKILL, resume again; the metrics must continue without gaps or duplicates and keep every row.

Where the test must act at a point of the run (a stop before the end, a kill between two checkpoints),
it freezes the run's process group (SIGSTOP), checks where it is, and acts on the frozen run, so no
outcome depends on how fast the machine trains."""

import os
import signal
import sqlite3
import time

import pytest

from dstab import runs
from dstab.runs.runmetrics import RunMetrics

STEPS = 150
HANG = 900  # seconds: a guard against a hung run, far above its duration, never a speed limit
TINY = [
    "dataset=toy2d:8gaussians",
    'arch={"arch": "mlp_denoiser"}',
    "batch_size=16",
    f"steps={STEPS}",
    "log_every=1",
    "checkpoint_every=10",
    "eval_every=null",
]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("DSTAB_TRAIN_COMMAND", raising=False)
    return runs.workspace_root()


def _wait_step(name, at_least, timeout=HANG):
    deadline = time.monotonic() + timeout
    while (s := runs.status(name)).step < at_least:
        assert s.state == "running", (s.state, s.reason, s.log_tail)
        assert time.monotonic() < deadline, f"run stuck at step {s.step}"
        time.sleep(0.02)
    return s


def _freeze(name, at_least):
    """The run frozen (SIGSTOP to its process group) once at step >= at_least: it stays there until thawed."""
    pgid = _wait_step(name, at_least).pgid
    os.killpg(pgid, signal.SIGSTOP)
    return pgid


def _thaw(pgid):
    os.killpg(pgid, signal.SIGCONT)


def _rows(db, name="loss"):
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return con.execute("SELECT step, value FROM metrics WHERE name = ? ORDER BY step", (name,)).fetchall()
    finally:
        con.close()


def test_real_run_reads_live_stops_resumes_survives_sigkill_and_keeps_its_rows(ws):
    s = runs.start("real", preset="baseline", overrides=TINY, device="cpu", threads=1)
    assert s.state == "running" and s.total_steps == STEPS
    live = RunMetrics(ws / "real" / "run" / "metrics.sqlite")
    _wait_step("real", 3)
    assert live.refresh() > 0 and runs.status("real").state == "running"  # read while it trains
    first = live.series("loss")[0].tolist()
    _wait_step("real", first[-1] + 2)
    live.refresh()
    assert live.series("loss")[0].tolist()[: len(first)] == first  # grows, never rewrites the past

    pgid = _freeze("real", first[-1] + 2)
    assert runs.status("real").step < STEPS - 1  # frozen before its last step: the stop lands before the end
    runs.stop("real")  # SIGTERM waits in the frozen group, taken at once on thawing
    _thaw(pgid)
    stopped = runs.wait("real", timeout=HANG)
    assert stopped.state == "stopped" and 0 < stopped.step < STEPS, (stopped.state, stopped.reason)
    assert max(runs.checkpoint_steps(ws / "real")) == stopped.step  # SIGTERM: finish the step, checkpoint
    db = ws / "real" / "run" / "metrics.sqlite"
    before_stop = _rows(db)
    assert [st for st, _ in before_stop] == list(range(1, stopped.step + 1))

    runs.resume("real")
    pgid = _freeze("real", stopped.step + 12)  # past the resumed run's first checkpoint (every 10 steps)
    while len(_rows(db)) <= max(runs.checkpoint_steps(ws / "real")):  # frozen on a checkpoint: one more row
        _thaw(pgid)
        pgid = _freeze("real", len(_rows(db)) + 1)
    trainer_pid = runs._read_json(ws / "real" / "run" / "heartbeat")["pid"]
    os.kill(trainer_pid, signal.SIGKILL)  # the trainer dies frozen, rows past its last checkpoint written
    _thaw(pgid)  # the supervisor records how it ended
    died = runs.wait("real", timeout=HANG)
    assert died.state == "died" and died.reason == "killed by signal 9", (died.state, died.reason)
    before_kill = _rows(db)  # the database still opens and holds every row written before the kill
    assert [st for st, _ in before_kill] == list(range(1, len(before_kill) + 1))
    assert before_kill[: len(before_stop)] == before_stop
    last_ckpt = max(runs.checkpoint_steps(ws / "real"))
    assert last_ckpt < len(before_kill)  # rows past the last checkpoint exist and must survive the resume

    runs.resume("real")
    done = runs.wait("real", timeout=HANG)
    assert (done.state, done.step) == ("finished", STEPS), (done.state, done.reason, done.log_tail)
    after = _rows(db)
    assert [st for st, _ in after] == list(range(1, STEPS + 1))  # no gaps, no duplicates
    kept = [v for _, v in after[: len(before_kill)]]
    assert kept == pytest.approx([v for _, v in before_kill], rel=0, abs=1e-6)  # exact resume: same values
    live.refresh()
    assert live.series("loss")[0].tolist() == list(range(1, STEPS + 1))
    assert live.series("loss")[1].tolist() == [v for _, v in after]
