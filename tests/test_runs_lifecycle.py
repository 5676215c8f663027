"""A real `python -m dstab train` run driven through runs.py: read while it trains, stop, resume,
SIGKILL, resume again; the metrics must continue without gaps or duplicates and keep every row."""

import os
import signal
import sqlite3
import time

import pytest

from dstab import runs
from dstab.runs.runmetrics import RunMetrics

# real processes racing on shared CPU cores: a rerun separates a timing flake from a regression
pytestmark = pytest.mark.flaky(reruns=2, reruns_delay=2)

STEPS = 150
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


def _wait_step(name, at_least, timeout=120):
    deadline = time.monotonic() + timeout
    while (s := runs.status(name)).step < at_least:
        assert s.state == "running", (s.state, s.reason, s.log_tail)
        assert time.monotonic() < deadline, f"run stuck at step {s.step}"
        time.sleep(0.02)
    return s


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

    runs.stop("real")
    stopped = runs.wait("real", timeout=120)
    assert stopped.state == "stopped" and 0 < stopped.step < STEPS, (stopped.state, stopped.reason)
    assert max(runs.checkpoint_steps(ws / "real")) == stopped.step  # SIGTERM: finish the step, checkpoint
    db = ws / "real" / "run" / "metrics.sqlite"
    before_stop = _rows(db)
    assert [st for st, _ in before_stop] == list(range(1, stopped.step + 1))

    runs.resume("real")
    s = _wait_step("real", stopped.step + 25)
    trainer_pid = runs._read_json(ws / "real" / "run" / "heartbeat")["pid"]
    os.kill(trainer_pid, signal.SIGKILL)
    died = runs.wait("real", timeout=120)
    assert died.state == "died" and died.reason == "killed by signal 9", (died.state, died.reason)
    before_kill = _rows(db)  # the database still opens and holds every row written before the kill
    assert [st for st, _ in before_kill] == list(range(1, len(before_kill) + 1))
    assert before_kill[: len(before_stop)] == before_stop
    last_ckpt = max(runs.checkpoint_steps(ws / "real"))
    assert last_ckpt < len(before_kill)  # rows past the last checkpoint exist and must survive the resume

    runs.resume("real")
    done = runs.wait("real", timeout=180)
    assert (done.state, done.step) == ("finished", STEPS), (done.state, done.reason, done.log_tail)
    after = _rows(db)
    assert [st for st, _ in after] == list(range(1, STEPS + 1))  # no gaps, no duplicates
    kept = [v for _, v in after[: len(before_kill)]]
    assert kept == pytest.approx([v for _, v in before_kill], rel=0, abs=1e-6)  # exact resume: same values
    live.refresh()
    assert live.series("loss")[0].tolist() == list(range(1, STEPS + 1))
    assert live.series("loss")[1].tolist() == [v for _, v in after]
