"""Where runs train: torchrun with 2 CPU processes (gloo) keeping the global batch, and Slurm job
arrays through submitit's local executor, a preempted job requeued and resumed from its checkpoint;
the same run folders and readers everywhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file as load_tensors

from dstab import runs
from dstab.cli import main
from dstab.errors import DstabError
from dstab.experiments import speedup
from dstab.runs import runboard, slurm
from dstab.training.config import TrainConfig
from dstab.training.trainer import Trainer
from tests.cifar_helpers import tiny_sets, write_cifar
from tests.training_helpers import one_thread, tiny_dm  # noqa: F401 (one_thread is a fixture)

TOY = ["dataset=toy2d:8gaussians", 'arch={"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2}']


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.delenv("DSTAB_TRAIN_COMMAND", raising=False)
    monkeypatch.setenv("DSTAB_MAX_RUNS_PER_DEVICE", "1")
    return runs.workspace_root(tmp_path / "runs")


def _final_weights(root, name: str, steps: int) -> dict[str, torch.Tensor]:
    return load_tensors(root / name / "run" / "checkpoints" / f"step{steps:07d}.safetensors")


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_torchrun_with_two_gloo_processes_follows_one_process(root, tmp_path, monkeypatch):
    """The tiny CIFAR-10 setup (learned sigma, L_hybrid, mdlrc-clts) at a global batch of 4: 2 per rank."""
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    cifar = f"cifar10:{write_cifar(tmp_path / 'cifar', per_batch=2)}"
    sets = [*tiny_sets(steps=6, batch=4, every=3), "eval_every=null"]
    _, planned = speedup.plan(cifar, ["baseline", "mdlrc-clts"], [0], sets=sets)
    cfg = planned[1].config  # mdlrc-clts (the plan needs the report's baseline beside it)
    runs.queue("two", cfg, {"preset": "x"}, device="cpu", threads=1, root=root, nproc=2)
    with pytest.raises(DstabError, match="batch_size 4 must be divisible by the 3 processes"):
        runs.queue("three", cfg, {"preset": "x"}, device="cpu", root=root, nproc=3)
    assert not (root / "three").exists()
    assert json.loads((root / "two" / "launch.json").read_text())["nproc"] == 2
    runs.schedule(root)
    Trainer(TrainConfig.from_dict(cfg), tmp_path / "one").run()  # the same run in one process, meanwhile
    st = runs.wait("two", timeout=600, root=root)
    assert (st.state, st.step) == ("finished", 6), (st.reason, st.log_tail)
    log = (root / "two" / "console.log").read_text()
    assert log.count("finished at step 6") == 2  # two processes, each through the whole run
    one, two = load_tensors(tmp_path / "one" / "step0000006.safetensors"), _final_weights(root, "two", 6)
    assert one.keys() == two.keys()
    for k in one:  # each rank trained on half of every global batch: DDP's average is the same step
        assert torch.allclose(one[k], two[k], atol=1e-6, rtol=1e-5), k


def _launch_slurm(root, names_and_configs) -> dict:
    options = slurm.launcher(None, 0, 60, "cpu", root, cluster="local")
    paths = [
        runs.queue(n, c, {"preset": "x"}, device="slurm:default", threads=1, root=root, launcher=options)
        for n, c in names_and_configs
    ]
    slurm.submit(paths, options)
    return options


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="holds the trainer and reads its signals in /proc")
def test_a_sweep_runs_as_a_job_array_on_submitits_local_executor(root, capsys):
    steps = 200
    argv = ["sweep", "--root", str(root), "--variants", "baseline,mdlrc-clts", "--seeds", "1", "--group", "arr"]
    argv += [f"--set={s}" for s in [*TOY, f"steps={steps}", "batch_size=8", "checkpoint_every=100", "log_every=1"]]
    argv += ["--device", "cpu", "--launcher", "slurm", "--slurm-cluster", "local", "--gpus-per-job", "0"]
    assert main(argv) == 0
    assert "2 runs of group arr submitted to Slurm as one job array" in capsys.readouterr().out
    names = ["arr-baseline-s0", "arr-mdlrc-clts-s0"]
    first_jobs = {}
    for name in names:
        assert not (root / name / "queued").exists()  # in the cluster's queue, not this machine's
        submitted = json.loads((root / name / "submitted.json").read_text())
        assert submitted["launcher"] == "slurm" and submitted["job_id"]
        first_jobs[name] = submitted["job_id"]
    # `runs stop` reaches a job through its stop file; `runs resume` submits it again
    _wait_step(root, names[1], 5)
    # the job looks at the stop file once a second and 200 toy steps can take less: the trainer is held
    # (SIGSTOP) until the job's SIGTERM is pending, so the stop lands mid-run on any machine
    pgid = json.loads((root / names[1] / "pid").read_text())["pgid"]
    os.killpg(pgid, signal.SIGSTOP)
    try:
        runs.stop(names[1], root)
        _wait_pending(pgid, signal.SIGTERM)
    finally:
        os.killpg(pgid, signal.SIGCONT)
    stopped = runs.wait(names[1], timeout=600, root=root)
    assert stopped.state == "stopped" and 5 <= stopped.step < steps, (stopped.reason, stopped.log_tail)
    runs.resume(names[1], root)
    assert json.loads((root / names[1] / "submitted.json").read_text())["job_id"] != first_jobs[names[1]]
    for name in names:
        st = runs.wait(name, timeout=600, root=root)
        assert (st.state, st.step, st.device) == ("finished", steps, "slurm:default"), (st.reason, st.log_tail)
        row = runboard.table_row(st, None)  # the Training page's table reads it as any run
        assert (row["status"], row["step"], row["device"]) == ("finished", steps, "slurm:default")
    assert {s.name for s in runs.list_runs(root) if s.group == "arr"} == set(names)
    log = (root / names[1] / "console.log").read_text()
    assert f"stopped at step {stopped.step}" in log and "=== resume" in log
    rows = [s for s, _, _ in _metric_rows(root / names[1] / "run" / "metrics.sqlite")]
    assert rows == list(range(1, steps + 1))


def _wait_pending(pid: int, sig: int) -> None:
    """Until `sig` is pending at process `pid` (held there by a SIGSTOP): /proc's shared-pending mask."""
    deadline = time.monotonic() + 300
    while True:
        fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
        if int(fields["ShdPnd"], 16) >> (sig - 1) & 1 or int(fields["SigPnd"], 16) >> (sig - 1) & 1:
            return
        assert time.monotonic() < deadline, f"signal {sig} never reached process {pid}"
        time.sleep(0.05)


def _wait_step(root, name: str, at_least: int) -> None:
    deadline = time.monotonic() + 300
    while runs.status(name, root).step < at_least:
        assert time.monotonic() < deadline, runs.status(name, root)
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_a_preempted_job_is_requeued_and_resumes_from_its_checkpoint(root, tmp_path):
    steps = 150
    cfg = TrainConfig.from_dict(tiny_dm(steps=steps, checkpoint_every=50, log_every=1)).to_dict()
    _launch_slurm(root, [("pre", cfg)])
    _wait_step(root, "pre", 5)  # training (rows are written every step)
    job = json.loads((root / "pre" / "pid").read_text())
    os.kill(job["job_pid"], signal.SIGUSR2)  # what Slurm sends before preempting a job (submitit's signal)
    st = runs.wait("pre", timeout=600, root=root)
    assert (st.state, st.step) == ("finished", steps), (st.reason, st.log_tail)
    log = (root / "pre" / "console.log").read_text()
    stopped = int(log.split("stopped at step ")[1].split()[0])
    assert 5 <= stopped < steps and "=== resume" in log  # stopped cleanly, then resumed in the requeued job
    rows = [s for s, _, _ in _metric_rows(root / "pre" / "run" / "metrics.sqlite")]
    assert rows == list(range(1, steps + 1))  # no gap, no duplicate across the requeue
    uninterrupted = Trainer(TrainConfig.from_dict(cfg), tmp_path / "straight")
    uninterrupted.run()
    straight = load_tensors(tmp_path / "straight" / f"step{steps:07d}.safetensors")
    resumed = _final_weights(root, "pre", steps)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)  # dstab's exact resume


def _metric_rows(db):
    import sqlite3

    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return con.execute("SELECT step, value, wall FROM metrics WHERE name = 'loss' ORDER BY step").fetchall()
    finally:
        con.close()


def test_a_job_whose_folder_was_submitted_again_leaves_it_alone(root):
    cfg = TrainConfig.from_dict(tiny_dm()).to_dict()
    path = runs.queue("twice", cfg, {"preset": "x"}, device="slurm:default", root=root, launcher={"name": "slurm"})
    (path / "submitted.json").write_text(json.dumps({"launcher": "slurm", "token": "second", "job_id": "2"}))
    assert runs.status("twice", root).reason == "slurm job 2: waiting to (re)start"
    assert slurm.RunJob(str(path), "first")() == "superseded: the run folder was submitted again"
    assert sorted(p.name for p in path.iterdir()) == ["launch.json", "request.json", "submitted.json"]


def test_submitit_is_imported_only_by_the_slurm_launcher(monkeypatch, tmp_path):
    code = (
        "import sys; import dstab.runs, dstab.experiments.sweep, dstab.commands.sweep, dstab.commands.reproduce; "
        "print('submitit' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(runs.REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
    monkeypatch.setitem(sys.modules, "submitit", None)  # not installed
    with pytest.raises(DstabError, match=r"needs submitit: pip install 'dstab\[slurm\]'"):
        slurm.submit([tmp_path], slurm.launcher(None, 1, 60, "auto", tmp_path))


def test_launcher_options_are_checked_before_anything_is_queued(root, capsys):
    base = ["sweep", "--root", str(root), "--variants", "baseline", "--seeds", "1", "--group", "bad", "--device", "cpu"]
    assert main([*base, "--launcher", "slurm", "--nproc", "2"]) == 2
    assert "--nproc applies to the local launcher" in capsys.readouterr().err
    assert main([*base, "--partition", "gpu"]) == 2
    assert "--partition applies to --launcher slurm" in capsys.readouterr().err
    assert main([*base, "--nproc", "3", "--set", "batch_size=16"]) == 2
    assert "batch_size 16 must be divisible by the 3 processes" in capsys.readouterr().err
    slurm3 = ["--launcher", "slurm", "--slurm-cluster", "local", "--gpus-per-job", "3", "--set", "batch_size=16"]
    assert main([*base, *slurm3]) == 2  # a job's GPUs are its torchrun processes
    assert "batch_size 16 must be divisible by the 3 processes" in capsys.readouterr().err
    one = ["runs", "--root", str(root), "start", "one", "--preset", "baseline", "--set", "batch_size=16"]
    assert main([*one, "--nproc", "3", "--device", "cpu"]) == 2
    assert "batch_size 16 must be divisible by the 3 processes" in capsys.readouterr().err
    assert not any(root.iterdir())


def test_runs_start_nproc_queues_one_run_for_torchrun(root, monkeypatch, capsys):
    """`runs start --nproc 2`: the run folder records 2 processes and its trainer starts under torchrun
    (the training itself is test_torchrun_with_two_gloo_processes_follows_one_process's)."""
    from dstab.runs import process

    monkeypatch.setattr(runs, "schedule", lambda root=None: [])  # stays queued: nothing is started here
    argv = ["runs", "--root", str(root), "start", "two", "--preset", "baseline", "--device", "cpu"]
    assert main([*argv, "--nproc", "2", "--set", "batch_size=16", "--set", "steps=10"]) == 0
    assert capsys.readouterr().out.startswith("two")
    launch = json.loads((root / "two" / "launch.json").read_text())
    assert (launch["nproc"], launch["device"]) == (2, "cpu")
    words = process.trainer_command(launch).split()
    assert words[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dstab", "train"]
    assert json.loads((root / "two" / "request.json").read_text())["batch_size"] == 16  # the global batch
    assert runs.status("two", root).state == "queued"


def test_ranks_wait_for_rank_zeros_evaluations_hours_not_minutes(monkeypatch):
    from datetime import timedelta

    from dstab import distributed

    monkeypatch.delenv("DSTAB_COLLECTIVE_TIMEOUT_H", raising=False)
    assert distributed.collective_timeout() == timedelta(hours=6)
    monkeypatch.setenv("DSTAB_COLLECTIVE_TIMEOUT_H", "0.5")
    assert distributed.collective_timeout() == timedelta(minutes=30)
    monkeypatch.setenv("DSTAB_COLLECTIVE_TIMEOUT_H", "0")
    with pytest.raises(DstabError, match="DSTAB_COLLECTIVE_TIMEOUT_H must be a positive number of hours"):
        distributed.collective_timeout()
