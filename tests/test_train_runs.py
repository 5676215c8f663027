"""The run directory contract: CLI, resume == uninterrupted, SIGTERM, crashes, full disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dstab import checkpoints
from dstab.cli import main
from dstab.errors import DstabError
from dstab.runs import rundir, runner
from dstab.runs.runmetrics import RunMetrics
from dstab.training import config as train_config
from dstab.training import resume_state
from tests.training_helpers import one_thread, tiny_dm  # noqa: F401 (one_thread is a fixture)

REPO = Path(__file__).resolve().parents[1]


def final_params(run_dir: Path) -> dict[str, torch.Tensor]:
    state = resume_state.load_resume_state(run_dir / "checkpoints")
    return {**state["modules"]["model"], **{f"ema.{k}": v for k, v in state["ema"]["module"].items()}}


def metric_rows(run_dir: Path, skip=("samples_per_s", "cpu_s")) -> list[tuple]:
    return [(s, n, v) for s, n, v, _ in RunMetrics.read(run_dir / "metrics.sqlite").rows() if n not in skip]


def signal_at(monkeypatch, step: int, action) -> None:
    """Run `action` right after the metrics of `step` are written (log_every=1)."""
    real = rundir.MetricsDB.write

    def write(self, s, values, wall=None):
        real(self, s, values, wall)
        if s == step and "loss" in values:
            action()

    monkeypatch.setattr(rundir.MetricsDB, "write", write)


@pytest.mark.usefixtures("one_thread")
def test_resume_after_sigterm_equals_uninterrupted_run(tmp_path, monkeypatch):
    cfg = tiny_dm(steps=8)
    runner.start(tmp_path / "whole", cfg, echo=False)
    signal_at(monkeypatch, 3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    result = runner.start(tmp_path / "split", cfg, echo=False)
    assert result["stopped"] and result["step"] == 3
    assert rundir.read_status(tmp_path / "split") == {"state": "stopped", "step": 3, "error": None}
    monkeypatch.undo()
    result = runner.resume(tmp_path / "split", echo=False)
    assert not result["stopped"] and result["step"] == 8
    a, b = final_params(tmp_path / "whole"), final_params(tmp_path / "split")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # metrics: same rows, no gaps, no duplicates (samples/s is a timing)
    assert metric_rows(tmp_path / "whole") == metric_rows(tmp_path / "split")
    steps = sorted({s for s, _, _ in metric_rows(tmp_path / "split")})
    assert steps == list(range(1, 9))
    assert rundir.checkpoint_steps(tmp_path / "split") == [2, 3, 4, 6, 8]


@pytest.mark.usefixtures("one_thread")
def test_crash_after_checkpoint_resumes_without_duplicate_rows(tmp_path, monkeypatch):
    cfg = tiny_dm(steps=8)
    runner.start(tmp_path / "whole", cfg, echo=False)

    def crash():
        raise RuntimeError("simulated crash")

    signal_at(monkeypatch, 5, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.start(tmp_path / "crash", cfg, echo=False)
    status = rundir.read_status(tmp_path / "crash")
    assert status["state"] == "failed" and "simulated crash" in status["error"]
    assert max(s for s, _, _ in metric_rows(tmp_path / "crash")) == 5  # written as it happened
    monkeypatch.undo()
    runner.resume(tmp_path / "crash", echo=False)  # from the step-4 checkpoint; row 5 recomputed
    assert metric_rows(tmp_path / "whole") == metric_rows(tmp_path / "crash")
    a, b = final_params(tmp_path / "whole"), final_params(tmp_path / "crash")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.usefixtures("one_thread")
def test_full_disk_never_replaces_a_good_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_fsync = os.fsync
    state = {"full": False}

    def fsync(fd):  # the big checkpoint writes hit the full disk; a tiny status.json still fits
        if state["full"] and "/checkpoints/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(checkpoints.os, "fsync", fsync)
    signal_at(monkeypatch, 3, lambda: state.update(full=True))
    with pytest.raises(DstabError, match="No space left on device.*previous checkpoint is intact"):
        runner.start(run, tiny_dm(steps=8), echo=False)
    state["full"] = False
    ckpt_dir = run / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["resume.pt", "step0000002.safetensors"]  # no temp files
    assert checkpoints.load(ckpt_dir / "step0000002.safetensors").header["step"] == 2
    assert resume_state.load_resume_state(ckpt_dir)["step"] == 2
    status = rundir.read_status(run)
    assert status["state"] == "failed" and "No space left" in status["error"]
    assert {s for s, _, _ in metric_rows(run)} == {1, 2, 3, 4}  # metrics already written are kept


@pytest.mark.usefixtures("one_thread")
def test_metrics_table_schema_and_wal(tmp_path):
    runner.start(tmp_path / "r", tiny_dm(steps=2), echo=False)
    conn = sqlite3.connect(tmp_path / "r" / "metrics.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = [(c[1], c[2], c[5]) for c in conn.execute("PRAGMA table_info(metrics)")]
    assert cols == [("step", "INTEGER", 1), ("name", "TEXT", 2), ("value", "REAL", 0), ("wall", "REAL", 0)]
    names = {r[0] for r in conn.execute("SELECT name FROM metrics WHERE step = 2")}
    assert {"loss", "lr", "beta1", "grad_norm", "samples_per_s"} <= names
    assert names & {"loss_q0", "loss_q1", "loss_q2", "loss_q3"}
    lr = conn.execute("SELECT value FROM metrics WHERE step = 2 AND name = 'lr'").fetchone()[0]
    assert lr == pytest.approx(1e-3 * 0.2 / (1 - 0.4 / (0.2 + 0.4)))  # md-lrc at tau = 1/2
    hb = json.loads((tmp_path / "r" / "heartbeat").read_text())
    assert hb["pid"] == os.getpid() and hb["step"] == 2


def test_cli_bad_config_exits_2_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--preset", "mdlrc-clts", "--set", "timesteps.mu=5000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "mu must lie in [0, T=1000)" in err and "\n" not in err
    assert not out.exists()
    for bad, msg in [
        ("lr=0", "lr must be > 0"),
        ("momentum.floor=0.9", "floor"),
        ("timesteps.target_iter=0", "exactly one of target_iter"),
        ("dataset=nowhere", "unknown dataset"),
        ("nonsense=1", "unknown training options"),
    ]:
        assert main(["train", "--out", str(out), "--preset", "mdlrc-clts", "--set", bad]) == 2
        assert msg in capsys.readouterr().err
        assert not out.exists()


@pytest.mark.usefixtures("one_thread")
def test_cli_refuses_an_out_folder_holding_another_run(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_dm(steps=2)))
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--config", str(cfg), "--quiet", "--device", "cpu"]) == 0
    before = (out / "config.json").read_bytes()
    assert main(["train", "--out", str(out), "--config", str(cfg), "--quiet", "--device", "cpu"]) == 2
    assert "already holds another run" in capsys.readouterr().err
    assert (out / "config.json").read_bytes() == before
    assert main(["train", "--resume", str(out), "--device", "cpu"]) == 2
    assert "already finished" in capsys.readouterr().err


def test_config_files_and_overrides_resolve_identically(tmp_path):
    (tmp_path / "a.toml").write_text('preset = "md-lrc"\nsteps = 50\n[timesteps]\nname = "clts"\ntarget_iter = 10\n')
    (tmp_path / "a.yaml").write_text("preset: md-lrc\nsteps: 50\ntimesteps: {name: clts, target_iter: 10}\n")
    (tmp_path / "a.json").write_text(json.dumps({"preset": "md-lrc", "steps": 50}))
    toml = train_config.resolve(None, tmp_path / "a.toml")
    yaml = train_config.resolve(None, tmp_path / "a.yaml")
    js = train_config.resolve(None, tmp_path / "a.json", ["timesteps.name=clts", "timesteps.target_iter=10"])
    assert toml == yaml == js
    assert toml["momentum"] == {"name": "md-lrc"} and toml["beta1"] == 0.8 and toml["steps"] == 50
    full = train_config.resolve("mdlrc-clts")
    assert full["timesteps"] == {"name": "clts", "target_frac": 0.2} and full["beta1"] == 0.8
    assert train_config.resolve("baseline")["beta1"] == 0.9
    (tmp_path / "bad.toml").write_text("steps = \n")
    with pytest.raises(DstabError, match="cannot be parsed"):
        train_config.resolve(None, tmp_path / "bad.toml")
    with pytest.raises(DstabError, match="does not exist"):
        train_config.resolve(None, tmp_path / "missing.json")


@pytest.mark.parametrize("preset", sorted(train_config.PRESETS))
def test_every_preset_is_a_valid_config(preset):
    cfg = train_config.resolve(preset)
    assert cfg["steps"] >= 1 and cfg["dataset"] == "digits"


def test_sigterm_to_a_cli_process_stops_cleanly_and_resume_finishes(tmp_path):
    """A real signal to a real `python -m dstab train` process."""
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(tiny_dm(steps=100_000, checkpoint_every=100_000, log_every=10)))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dstab", "train", "--out", str(out), "--config", str(cfg), "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # wait until it trains
            if line.startswith("step=20"):
                break
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    status = rundir.read_status(out)
    assert status["state"] == "stopped" and status["error"] is None and status["step"] >= 20
    assert rundir.checkpoint_steps(out) == [status["step"]]
    assert resume_state.load_resume_state(out / "checkpoints")["step"] == status["step"]


@pytest.mark.usefixtures("one_thread")
def test_gan_run_resumes_exactly(tmp_path, monkeypatch):
    arch = {
        "generator": {"arch": "mlp_g", "data_dim": 2, "latent_dim": 2, "hidden": 8, "depth": 2},
        "discriminator": {"arch": "mlp_d", "data_dim": 2, "hidden": 8, "depth": 2},
    }
    cfg = tiny_dm(kind="gan", arch=arch, steps=6, momentum={"name": "md"}, timesteps={"name": "uniform"})
    runner.start(tmp_path / "whole", cfg, echo=False)
    signal_at(monkeypatch, 3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert runner.start(tmp_path / "split", cfg, echo=False)["stopped"]
    monkeypatch.undo()
    runner.resume(tmp_path / "split", echo=False)
    a, b = (resume_state.load_resume_state(tmp_path / r / "checkpoints") for r in ("whole", "split"))
    for role in ("generator", "discriminator"):
        assert all(torch.equal(v, b["modules"][role][k]) for k, v in a["modules"][role].items())
    assert metric_rows(tmp_path / "whole") == metric_rows(tmp_path / "split")


@pytest.mark.usefixtures("one_thread")
def test_bf16_autocast_trains_close_to_fp32(tmp_path):
    """bf16 autocast is CUDA's default (amp=auto); forced here on the CPU to exercise the same path."""
    fp32 = runner.start(tmp_path / "fp32", tiny_dm(steps=4, amp="off"), echo=False)
    bf16 = runner.start(tmp_path / "bf16", tiny_dm(steps=4, amp="bf16"), echo=False)
    assert bf16["loss_last"] == pytest.approx(fp32["loss_last"], rel=0.05)
    assert bf16["loss_last"] != fp32["loss_last"]  # the autocast really ran in bf16
