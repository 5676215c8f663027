"""runs.py's bookkeeping: names, the queue, broken runs, delete. Driven by a stand-in trainer
(tests/fake_trainer.py, same run-directory contract) because only process behaviour is under test."""

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest
import torch

from dstab import runs
from dstab.errors import DstabError
from dstab.training import config as train_config

FAKE = Path(__file__).with_name("fake_trainer.py")
HANG = 600  # seconds: a guard against a hung process, far above any run's duration, never a speed limit
TINY = ["dataset=toy2d:8gaussians", 'arch={"arch": "mlp_denoiser"}', "eval_every=null", "batch_size=8"]


def _start(name, steps=10, **kw):
    return runs.start(name, preset="baseline", overrides=[*TINY, f"steps={steps}"], device="cpu", **kw)


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("DSTAB_TRAIN_COMMAND", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("FAKE_STEP_S", "0.02")
    monkeypatch.setenv("DSTAB_MAX_RUNS_PER_DEVICE", "1")
    return runs.workspace_root()


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "a..b", "/etc", "x" * 65, "a b", "-rf"])
def test_bad_run_names_are_refused(ws, bad):
    with pytest.raises(DstabError, match="invalid run name"):
        _start(bad)
    assert sorted(p.name for p in ws.iterdir()) == [".lock"] or not any(ws.iterdir())
    assert not (ws.parent / "x").exists()


def test_a_symlink_out_of_the_workspace_is_refused(ws, tmp_path):
    (ws / "evil").symlink_to(tmp_path)
    with pytest.raises(DstabError, match="outside the workspace"):
        runs.run_dir("evil")


def test_a_config_the_trainer_refuses_creates_nothing(ws):
    with pytest.raises(DstabError, match="steps must be a positive integer"):
        _start("bad", steps=0)
    with pytest.raises(DstabError, match="expects samples of shape"):  # caught by building the trainer
        runs.start("bad", preset="baseline", overrides=["dataset=toy2d:8gaussians"], device="cpu")
    assert not (ws / "bad").exists()


def test_a_queued_request_the_trainer_refuses_fails_with_its_reason(ws, monkeypatch):
    """`start` refuses such a config before queueing (above); a request.json queued some other way is
    refused by the real trainer before it writes anything, and the run reads 'failed' with the reason."""
    monkeypatch.delenv("DSTAB_TRAIN_COMMAND")
    config = train_config.resolve("baseline", overrides=["dataset=toy2d:8gaussians"], networks=False)
    runs.queue("bad", config, {"preset": "baseline"}, device="cpu", root=ws)
    runs.schedule(ws)
    st = runs.wait("bad", timeout=HANG)
    assert st.state == "failed" and "expects samples of shape" in st.reason
    assert not (ws / "bad" / runs.RUN / "config.json").exists()


def test_second_run_waits_for_the_slot_and_starts_without_anybody_polling(ws):
    a = _start("a", steps=100, group="sweep1")
    b = _start("b", group="sweep1")
    assert (a.state, b.state) == ("running", "queued")
    # nobody calls schedule(): a's supervisor hands the slot to b when a exits
    assert runs.wait("a", timeout=HANG).state == "finished"
    assert runs.wait("b", states=("running", "finished"), timeout=HANG).state in ("running", "finished")
    done = runs.wait("b", timeout=HANG)
    assert (done.state, done.step, done.total_steps, done.group) == ("finished", 10, 10, "sweep1")


def _held(name: str, step: int, timeout: float = HANG):
    """The run, held by the fake trainer at `step` ($FAKE_HOLD): surely running there, whatever the load."""
    deadline = time.monotonic() + timeout  # a hang guard, not a speed limit
    while (st := runs.status(name)).step < step:
        assert st.state in ("queued", "running") and time.monotonic() < deadline, (st.state, st.reason, st.step)
        time.sleep(0.01)
    return st


def test_stopping_a_queued_run_takes_it_off_the_queue_and_resume_requeues_it(ws, monkeypatch):
    monkeypatch.setenv("FAKE_HOLD", "a=2")
    _start("a", steps=400)
    _start("b")
    assert runs.stop("b").state == "stopped"
    assert _held("a", 2).state == "running"
    runs.stop("a")
    a = runs.wait("a", timeout=HANG)
    assert (a.state, a.step) == ("stopped", 2)
    assert runs.status("b").state == "stopped"  # not started by a's supervisor
    runs.resume("b")
    assert runs.wait("b", timeout=HANG).state == "finished"


def _finished_run(name):
    _start(name)
    return runs.wait(name, timeout=HANG)


def test_damaged_runs_are_broken_with_a_reason_and_the_others_keep_working(ws):
    for name in ("good", "nodb", "nockpt"):
        assert _finished_run(name).state == "finished"
    (ws / "nodb" / "run" / "metrics.sqlite").write_bytes(b"this is not a database" * 100)
    for f in (ws / "nockpt" / "run" / "checkpoints").glob("*.safetensors"):
        f.unlink()
    (ws / "stray").mkdir()
    states = {s.name: (s.state, s.reason) for s in runs.list_runs()}
    assert states["good"] == ("finished", None)
    assert states["nodb"][0] == "broken" and "metrics database unreadable" in states["nodb"][1]
    assert states["nockpt"][0] == "broken" and "checkpoint is missing" in states["nockpt"][1]
    assert states["stray"][0] == "broken" and "launch.json" in states["stray"][1]
    gone = runs.status("deleted-meanwhile")
    assert gone.state == "broken" and "deleted" in gone.reason


def test_delete_needs_the_name_repeated(ws):
    _finished_run("a")
    with pytest.raises(DstabError, match="confirm"):
        runs.delete("a", confirm="b")
    assert (ws / "a").is_dir()
    runs.delete("a", confirm="a")
    assert not (ws / "a").exists()
    with pytest.raises(DstabError, match="invalid run name"):
        runs.delete("../ws", confirm="../ws")


def test_cli_lists_and_refuses_bad_input_with_exit_2(ws, capsys):
    from dstab.cli import main

    _finished_run("a")
    assert main(["runs", "list", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (row["name"], row["state"], row["step"]) == ("a", "finished", 10)
    assert main(["runs", "start", "../x", "--preset", "baseline"]) == 2
    assert "invalid run name" in capsys.readouterr().err
    assert main(["runs", "start", "x", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["runs", "stop", "a"]) == 2
    assert main(["runs", "logs", "a", "-n", "3"]) == 0
    assert main(["runs", "delete", "a", "--yes"]) == 0 and not (ws / "a").exists()


def test_dead_pid_without_status_is_died_and_a_corrupt_heartbeat_is_tolerated(ws):
    _finished_run("a")
    (ws / "a" / "run" / "status.json").unlink()
    (ws / "a" / "exit_code").unlink()
    (ws / "a" / "run" / "heartbeat").write_text("{not json")
    (ws / "a" / "pid").write_text(json.dumps({"pgid": os.getpid(), "mode": "start"}))  # alive, but not this run
    s = runs.status("a")
    assert s.state == "died" and s.step == 10 and s.log_tail


def test_metrics_db_is_opened_read_only(ws):
    _finished_run("a")
    db = ws / "a" / "run" / "metrics.sqlite"
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    assert con.execute("SELECT count(*) FROM metrics").fetchone()[0] == 10


def test_a_stop_before_the_trainer_starts_is_a_stop_and_resume_begins_afresh(ws, monkeypatch):
    monkeypatch.setenv("FAKE_HOLD", "blocker=1")  # it holds the slot until it is stopped
    _start("blocker", steps=400)
    _start("a")
    (ws / "a" / "stop_requested").write_text("{}")  # as if SIGTERM had landed before the trainer existed
    _held("blocker", 1)  # its trainer is up (a stop before then is the supervisor's to see)
    runs.stop("blocker")
    runs.wait("blocker", timeout=HANG)
    runs.schedule()  # as the page does on every read; the launched supervisor sees the stop file
    s = runs.wait("a", timeout=HANG)
    assert (s.state, s.step, s.reason) == ("stopped", 0, "stopped during start-up, before the trainer could checkpoint")
    assert not (ws / "a" / "run").exists()
    assert runs.resume("a").state == "running"
    assert runs.wait("a", timeout=HANG).state == "finished"


def test_cli_start_from_a_config_file_and_refusals_before_anything_exists(ws, tmp_path, capsys):
    from dstab.cli import main

    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"preset": "md-lrc", "dataset": "toy2d:swissroll", "arch": {"arch": "mlp_denoiser"}}))
    assert main(["runs", "start", "c", "--config", str(cfg), "--set", "steps=10", "--set", "eval_every=null"]) == 0
    request = json.loads((ws / "c" / "request.json").read_text())
    assert (request["dataset"], request["steps"], request["momentum"], request["beta1"]) == (
        "toy2d:swissroll",
        10,
        {"name": "md-lrc"},
        0.8,
    )
    assert runs.wait("c", timeout=HANG).state == "finished"
    if not torch.cuda.is_available():
        assert main(["runs", "start", "gpu", "--config", str(cfg), "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err and not (ws / "gpu").exists()
    assert main(["runs", "start", "c", "--config", str(cfg)]) == 2
    assert "already exists" in capsys.readouterr().err
