"""Runs as a Slurm job array through submitit, in the same run folders as local runs.

submitit (`pip install 'dstab[slurm]'`) is imported only here, only when this launcher is used.
`submit` sends one job per run folder, all in one array (`executor.batch()`); each job is a
`RunJob`, which starts `dstab train` in its folder (under torchrun when the job has several GPUs)
and waits. The folder must lie on a disk the cluster's nodes share with the machine that reads
it (`runs list`, `compare`, the Training page: they read it exactly as a local run's).

Preemption and time limits: submitit catches Slurm's warning signal (USR2) and calls
`RunJob.checkpoint`, which stops the trainer as `dstab runs stop` does (SIGTERM: it finishes its
step, writes a checkpoint and its resume state) and hands submitit a fresh `RunJob` for the same
folder; submitit requeues the job, whose new start finds the run's config.json and continues with
`dstab train --resume`, dstab's own exact resume. `runs stop` writes the stop file, which the job
watches; `runs resume` of a stopped Slurm run submits it again.

Files a job writes in the run folder, beside the trainer's: pid ({"pgid", "host", "job_id", ...}:
the trainer process on its node), exit_code, console.log; `submitted.json` is written here at
submission ({"launcher": "slurm", "token", "submitted", "job_id"}; a job runs only while the token
is its own).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from unittest import mock

from ..errors import DstabError, require
from ..fileio import write_json
from .process import set_aside_status, trainer_args, trainer_command, trainer_env
from .runstate import LOG_NAME, RUN, STOP_FILE, SUBMITTED, _read_json

STOP_POLL_S = 1.0  # how often a job looks at its run's stop file
STOP_WAIT_S = 600.0  # how long a stopped trainer may take to finish its step and checkpoint


def _submitit():
    try:
        import submitit
    except ImportError:
        raise DstabError(
            "--launcher slurm needs submitit: pip install 'dstab[slurm]' (or pip install submitit)"
        ) from None
    return submitit


def launcher(
    partition: str | None,
    gpus_per_job: int,
    time_min: int,
    device: str,
    root: Path,
    cluster: str | None = None,
    cpus_per_job: int | None = None,
) -> dict:
    """The launcher record launch.json keeps: what `submit` needs to (re)submit a run."""
    require(gpus_per_job >= 0, f"--gpus-per-job must be >= 0, got {gpus_per_job}")
    require(time_min >= 1, f"--time-min must be >= 1 minute, got {time_min}")
    return {
        "name": "slurm",
        "partition": partition,
        "gpus_per_job": gpus_per_job,
        "time_min": time_min,
        "device": device,
        "cluster": cluster,
        "cpus_per_job": cpus_per_job,
        "folder": str(Path(root) / ".submitit"),
    }


def processes(options: dict) -> int:
    """Trainer processes per job: one per GPU (torchrun), one on a CPU-only job."""
    return max(1, int(options["gpus_per_job"]))


def submit(paths: list[Path], options: dict) -> list[str]:
    """Submit the run folders as one job array; returns the job ids (also in each submitted.json)."""
    submitit = _submitit()
    executor = submitit.AutoExecutor(folder=options["folder"], cluster=options["cluster"])
    params = {"timeout_min": options["time_min"], "gpus_per_node": options["gpus_per_job"], "tasks_per_node": 1}
    if options.get("cpus_per_job"):
        params["cpus_per_task"] = options["cpus_per_job"]
    if options.get("partition"):
        params["slurm_partition"] = options["partition"]
    executor.update_parameters(**params)
    # the jobs get this environment (sbatch exports it; the local executor copies it): this checkout
    # on PYTHONPATH, so that a job can unpickle its RunJob from a checkout that is not installed
    # each submission's token is on disk before its job can start: a job whose folder was handed to a
    # later submission (`runs stop` while pending, then `runs resume`) finds another token and leaves
    records = {p: {"launcher": "slurm", "token": uuid.uuid4().hex, "submitted": time.time()} for p in paths}
    for path, record in records.items():
        write_json(path / SUBMITTED, record)
    with mock.patch.dict(os.environ, {"PYTHONPATH": trainer_env()["PYTHONPATH"]}), executor.batch():
        jobs = [executor.submit(RunJob(str(p), records[p]["token"])) for p in paths]
    for path, job in zip(paths, jobs):
        write_json(path / SUBMITTED, {**records[path], "job_id": job.job_id})
    return [job.job_id for job in jobs]


class RunJob:
    """What a Slurm job runs (pickled by submitit): `dstab train` in one run folder, to the end or
    until stopped; on preemption or timeout, `checkpoint` stops it cleanly and requeues."""

    def __init__(self, path: str, token: str):
        self.path, self.token = path, token
        self._proc: subprocess.Popen | None = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "token": self.token}  # a live process handle does not travel

    def __setstate__(self, state: dict) -> None:
        self.path, self.token, self._proc = state["path"], state["token"], None

    def __call__(self) -> str:
        path = Path(self.path)
        if (_read_json(path / SUBMITTED) or {}).get("token") != self.token:
            return "superseded: the run folder was submitted again"
        if (path / STOP_FILE).exists():
            (path / "exit_code").write_text("143\n")
            return "stopped before it started"
        launch = _read_json(path / "launch.json")
        require(launch is not None, f"{path}: launch.json is missing; not a dstab run folder")
        mode = "resume" if (path / RUN / "config.json").exists() else "start"
        command = shlex.split(trainer_command({**launch, "nproc": processes(launch["launcher"])}))
        set_aside_status(path)
        started = time.time()
        with open(path / LOG_NAME, "ab") as log:
            log.write(f"=== {mode} {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()} ===\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [*command, *trainer_args(path, launch, mode)],
                env=trainer_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        job_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")
        pid = {"pgid": self._proc.pid, "mode": mode, "started": started, "host": socket.gethostname()}
        pid.update(job=job_id, job_pid=os.getpid())  # the job's own process: where Slurm's signals land
        write_json(path / "pid", pid)
        while True:
            try:
                code = self._proc.wait(STOP_POLL_S)
                break
            except subprocess.TimeoutExpired:
                if (path / STOP_FILE).exists():
                    self._stop()
        # the run's state comes from the trainer's status.json the moment it exits; a `runs resume` may
        # already have handed the folder to a new job, whose pid file then is not ours: leave it alone
        if (_read_json(path / "pid") or {}).get("job_pid") == os.getpid():
            (path / "exit_code").write_text(f"{code}\n")
        return f"exit code {code}"

    def _stop(self) -> None:
        """SIGTERM to the trainer's process group: each process finishes its step and checkpoints."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            self._proc.wait(STOP_WAIT_S)

    def checkpoint(self):
        """submitit's hook on preemption or timeout: stop the trainer (it checkpoints), mark the
        folder as waiting in the queue again, and requeue a fresh job that resumes it."""
        # the folder reads as waiting again before the trainer stops: once the trainer has exited its
        # status.json says "stopped", and a reader between that and the requeued job's start (`runs wait`,
        # the Training page) took the preempted run for one a user had stopped
        path = Path(self.path)
        for name in ("pid", "exit_code"):
            (path / name).unlink(missing_ok=True)
        self._stop()
        return _submitit().helpers.DelayedSubmission(RunJob(self.path, self.token))
