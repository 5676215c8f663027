"""The background-run manager: detached `python -m dstab train` processes and their state on disk.

(The paper's method, the trainer and its schedules, is `dstab.training`; this package only launches,
queues, watches and reads runs of it.) A run is a directory `<workspace>/<name>/`, where
<workspace> is `runstate.workspace_root()` ($DSTAB_WORKSPACE/runs, default
~/.local/share/dstab/workspace/runs, or --root). It holds: request.json (the resolved, validated
trainer config the run was launched with: what `dstab train --config` receives), launch.json (how it
was asked for: preset, config file, overrides, device, threads, group, total_steps, created, nproc:
torchrun processes, launcher: null for this machine's queue or a cluster's record, runs/slurm.py), pid
(the supervisor's process group; a cluster job's also names its host), queued (waiting for a slot
here), submitted.json (in a cluster's queue), stop_requested, exit_code, console.log (the process's
stdout and stderr), and `run/`, the trainer's RUN_DIR (its own copy of the config as config.json,
checkpoints/, metrics.sqlite, heartbeat, status.json, train.log; see rundir.py) which the trainer
creates itself. Nothing is kept in memory: every status is derived from those files on each read
(runstate.py), so runs survive closed tabs, reloads and server restarts.

Each run is a new session (`start_new_session=True`) led by a tiny `sh`
supervisor that runs the trainer and then `python -m dstab runs schedule`,
so a queued run starts as soon as a slot frees even if nobody is watching.
Every read (`list_runs`, the CLI, the page) calls `schedule()` as well, which
also covers runs whose whole process group was killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from ..device import concrete_name
from ..errors import DstabError, is_int, require
from ..fileio import write_json
from ..training import config as train_config
from ..training import resume_state
from . import rundir
from .process import REPO_ROOT, set_aside_status, trainer_args, trainer_command, trainer_env  # noqa: F401
from .runstate import (  # noqa: F401 (the run manager's API: pages and the CLI import these from here)
    LOG_NAME,
    RUN,
    STOP_FILE,
    RunStatus,
    _read_json,
    check_name,
    checkpoint_steps,
    log_tail,
    run_dir,
    run_names,
    slots_per_device,
    status,
    workspace_root,
)


@contextlib.contextmanager
def _locked(root: Path):
    """One scheduler at a time across processes (the page, the CLI, finishing runs)."""
    with open(root / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------- processes


def _spawn(path: Path, launch: dict, mode: str) -> int:
    python = shlex.quote(sys.executable)
    train = f"{trainer_command(launch)} {shlex.join(trainer_args(path, launch, mode))}"
    after = f"{python} -m dstab runs --root {shlex.quote(str(path.parent))} schedule"
    exit_file, stop_file = (shlex.quote(str(path / f)) for f in ("exit_code", STOP_FILE))
    # `trap true TERM`: the supervisor outlives the SIGTERM sent to the group, waits for the trainer's
    # clean exit, records its code and hands the slot on. A trap with a command is reset in children,
    # so the trainer still receives SIGTERM normally. A stop that lands before the trainer is forked
    # is seen through the stop file (143 = what SIGTERM would have given).
    queued = f"{shlex.quote(str(path.parent))}/*/queued"  # hand on only if some run waits (saves an interpreter)
    script = (
        f"trap true TERM; if [ -e {stop_file} ]; then code=143; else {train}; code=$?; fi; "
        f'echo $code > {exit_file}; for q in {queued}; do [ -e "$q" ] && {after}; break; done'
    )
    env = trainer_env()
    set_aside_status(path)
    started = time.time()  # before the fork: a fast trainer may finish before Popen returns
    with open(path / LOG_NAME, "ab") as log:
        log.write(f"=== {mode} {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    write_json(path / "pid", {"pgid": proc.pid, "mode": mode, "started": started})
    return proc.pid


def list_runs(root: Path | None = None) -> list[RunStatus]:
    """Every run in the workspace, oldest first, after starting queued runs that now have a slot."""
    root = workspace_root(root)
    schedule(root)
    return sorted((status(n, root) for n in run_names(root)), key=lambda s: (s.created, s.name))


# ---------------------------------------------------------------- actions


def schedule(root: Path | None = None) -> list[str]:
    """Start queued runs, oldest first, while their device has a free slot. Returns the names started."""
    root = workspace_root(root)
    started = []
    with _locked(root):
        runs = [status(n, root) for n in run_names(root)]
        busy = Counter(r.device for r in runs if r.state == "running")
        # queued here (a `queued` file), not in a cluster's queue
        here = (r for r in runs if r.state == "queued" and (root / r.name / "queued").exists())
        waiting = sorted(here, key=lambda r: _queued_at(root / r.name))
        for run in waiting:
            if busy[run.device] >= slots_per_device():
                continue
            path = root / run.name
            mode = (_read_json(path / "queued") or {}).get("mode", "start")
            _spawn(path, _read_json(path / "launch.json"), mode)
            (path / "queued").unlink()
            busy[run.device] += 1
            started.append(run.name)
    return started


def _queued_at(path: Path) -> float:
    return float((_read_json(path / "queued") or {}).get("time", 0.0))


def _enqueue(path: Path, mode: str) -> None:
    write_json(path / "queued", {"mode": mode, "time": time.time()})


def resolved_config(preset: str | None = None, config_file: Path | None = None, overrides=()) -> dict:
    """The trainer's full config for a request, refused (DstabError) on anything the run itself would
    refuse: every option (`TrainConfig.check_options`), then what the trainer checks when it is built
    (`check_buildable`), before anything is queued."""
    require(preset or config_file, "a run needs a preset or a config file")
    config = train_config.resolve(preset, config_file, list(overrides), networks=False)
    check_buildable(config)
    return config


def check_buildable(config: dict) -> None:
    """The trainer built once, as `dstab train` builds it before its first step: so its own checks (the
    networks' parameter budget, the dataset, the diffusion and its timestep sampler, the optimiser's
    schedules, the model's sample shape against the data's) refuse a run before it is queued, by the
    rule the run would apply. Imports PyTorch; a sweep calls it once per distinct config."""
    from ..training.trainer import Trainer

    Trainer(train_config.TrainConfig.from_dict(config), REPO_ROOT, "cpu")


def check_launch(device: str, threads) -> str:
    """The launch options every way of starting runs shares (`runs start`, `sweep`, `reproduce`, the page):
    `threads` a positive integer or None, `device` a device this machine has; its concrete name."""
    require(threads is None or (is_int(threads) and threads >= 1), f"--threads must be >= 1, got {threads!r}")
    return concrete_name(device)


def start(
    name: str,
    *,
    preset: str | None = None,
    config_file: Path | None = None,
    overrides: list[str] | tuple = (),
    device: str = "auto",
    group: str | None = None,
    threads: int | None = None,
    root: Path | None = None,
    nproc: int = 1,
) -> RunStatus:
    """Queue a new run and start it at once if its device has a free slot.

    The request (preset or config file, then `key=value` overrides as for
    `dstab train --set`) is resolved and validated here, and the resolved
    config is what the trainer receives: a queued run cannot change meaning
    if a preset or the file changes before it starts. `nproc` > 1: under torchrun with that many
    processes (`check_processes`).
    """
    dev = check_launch(device, threads)
    require(not run_dir(name, root).exists(), f"a run named {name!r} already exists; pick another name or delete it")
    config = resolved_config(preset, config_file, overrides)
    request = {"preset": preset, "config_file": str(config_file) if config_file else None, "overrides": list(overrides)}
    queue(name, config, request, device=dev, group=group, threads=threads, root=root, nproc=nproc)
    schedule(root)
    return status(name, root)


def queue(
    name: str,
    config: dict,
    request: dict,
    *,
    device: str,
    group=None,
    threads=None,
    root: Path | None = None,
    nproc: int = 1,
    launcher: dict | None = None,
) -> Path:
    """Write a run whose `config` is already resolved and validated onto the queue, without
    scheduling: `start` for one run, a sweep for many (then one `schedule()`). `request` is
    what launch.json records of how the config was asked for (preset, overrides, ...). `nproc` > 1
    trains under torchrun with that many processes; a `launcher` (Slurm: runs/slurm.py) takes the
    run off the local queue: it submits the folder itself."""
    root = workspace_root(root)
    path = run_dir(name, root)
    check_processes(config, nproc)
    launch = {
        "name": name,
        **request,
        "device": device,
        "threads": threads,
        "group": group,
        "total_steps": config["steps"],
        "created": time.time(),
        "nproc": nproc,
        "launcher": launcher,
    }
    with _locked(root):
        require(not path.exists(), f"a run named {name!r} already exists in {root}; pick another name or delete it")
        path.mkdir()
        write_json(path / "request.json", train_config.stored(config))  # one spelling, whatever launched it
        write_json(path / "launch.json", launch)
        if launcher is None:
            _enqueue(path, "start")
    return path


def check_processes(config: dict, nproc: int) -> None:
    """A run of `nproc` processes splits the global batch evenly (DDP); diffusion models only."""
    require(isinstance(nproc, int) and nproc >= 1, f"the process count must be a positive integer, got {nproc!r}")
    if nproc > 1:
        require(config["kind"] == "dm", "multi-process (torchrun) training supports diffusion models only")
        require(
            config["batch_size"] % nproc == 0,
            f"batch_size {config['batch_size']} must be divisible by the {nproc} processes (the global batch is kept)",
        )


def stop(name: str, root: Path | None = None) -> RunStatus:
    """Ask a running run to stop (SIGTERM to its process group: the trainer checkpoints and exits);
    a queued run is taken off the queue."""
    root = workspace_root(root)
    path = _existing(name, root)
    with _locked(root):
        st = status(name, root)
        require(st.active, f"run {name!r} is {st.state}, not running or queued; nothing to stop")
        write_json(path / STOP_FILE, {"time": time.time()})
        if is_remote(_read_json(path / "launch.json")):
            pass  # its job watches the stop file: its process lives on another machine
        elif st.state == "queued":
            (path / "queued").unlink()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(st.pgid, signal.SIGTERM)
    return status(name, root)


def is_remote(launch: dict | None) -> bool:
    """Whether a run was handed to a cluster launcher (Slurm) rather than this machine's queue."""
    return bool((launch or {}).get("launcher"))


def _existing(name: str, root: Path) -> Path:
    path = run_dir(name, root)
    require(path.is_dir(), f"no run named {name!r} in {root}; `python -m dstab runs list` shows the runs")
    return path


def resume(name: str, root: Path | None = None) -> RunStatus:
    """Queue a stopped, died or failed run to continue from its last checkpoint (a stopped or died one
    from step 0 if it has none; a failed one needs its resume state: the failure may recur otherwise)."""
    root = workspace_root(root)
    path = _existing(name, root)
    with _locked(root):
        st = status(name, root)
        rd = path / RUN
        has_state = (rd / rundir.CHECKPOINTS / resume_state.RESUME).exists() or (
            rd / rundir.CHECKPOINTS / resume_state.PREVIOUS_RESUME
        ).exists()
        require(
            st.state in ("stopped", "died") or (st.state == "failed" and has_state),
            f"run {name!r} is {st.state}" + (f" ({st.reason})" if st.reason else "") + "; only a stopped or died "
            "run, or a failed one with a checkpoint, can be resumed"
            + ("; start a new run" if st.state == "failed" else ""),
        )
        for stale in ("exit_code", STOP_FILE):
            (path / stale).unlink(missing_ok=True)
        if rd.exists() and not (rd / rundir.CONFIG).exists():
            shutil.rmtree(rd)  # the trainer never got as far as writing its config: start afresh
        launch = _read_json(path / "launch.json")
        if is_remote(launch):
            from . import slurm

            (path / "pid").unlink(missing_ok=True)
            slurm.submit([path], launch["launcher"])
        else:
            _enqueue(path, "resume" if rd.exists() else "start")
    schedule(root)
    return status(name, root)


def extend(name: str, steps: int, root: Path | None = None) -> RunStatus:
    """Queue a finished run to train on from its last checkpoint to `steps` iterations in all: its
    config's length is raised (request.json, launch.json, run/config.json) and it resumes. Only for a
    run whose schedules do not depend on the run's length (the caller checks: a reference arm), so
    the longer run is the run that would have been launched at that length."""
    root = workspace_root(root)
    path = _existing(name, root)
    with _locked(root):
        st = status(name, root)
        require(st.state == "finished", f"run {name!r} is {st.state}; only a finished run can be extended")
        rd = path / RUN
        cfg = _read_json(rd / rundir.CONFIG)
        require(cfg is not None, f"run {name!r} has no readable {rundir.CONFIG}; it cannot be extended")
        require(steps > cfg["steps"], f"run {name!r} already has {cfg['steps']} steps; extend it to more")
        require(
            (rd / rundir.CHECKPOINTS / resume_state.RESUME).exists(),
            f"run {name!r} has no resume state at its last step; it cannot be extended exactly",
        )
        for f in (rd / rundir.CONFIG, path / "request.json"):
            doc = _read_json(f)
            if doc is not None:
                write_json(f, {**doc, "steps": int(steps)})
        write_json(path / "launch.json", {**(_read_json(path / "launch.json") or {}), "total_steps": int(steps)})
        status_file = rd / rundir.STATUS
        if status_file.exists():
            os.replace(status_file, status_file.with_name("status.previous.json"))
        (path / "exit_code").unlink(missing_ok=True)
        _enqueue(path, "resume")
    schedule(root)
    return status(name, root)


def delete(name: str, confirm: str, root: Path | None = None) -> None:
    """Remove a run's directory. `confirm` must repeat the name; a running run must be stopped first."""
    root = workspace_root(root)
    path = run_dir(name, root)
    require(confirm == name, f"to delete run {name!r}, confirm by typing its name exactly")
    with _locked(root):
        require(path.is_dir(), f"no run named {name!r} in {root}")
        st = status(name, root)
        require(st.state != "running", f"run {name!r} is running; stop it first, then delete it")
        shutil.rmtree(path)


def wait(name: str, states=("finished", "stopped", "failed", "died", "broken"), timeout: float = 60.0, root=None):
    """Block until the run reaches one of `states` (for scripts and tests); returns its status."""
    deadline = time.monotonic() + timeout
    while True:
        st = status(name, root)
        if st.state in states:
            return st
        if time.monotonic() > deadline:
            raise DstabError(f"run {name!r} is still {st.state} after {timeout:.0f} s")
        time.sleep(0.2)
