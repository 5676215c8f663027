"""Background training runs: detached `python -m dstab train` processes and their state on disk.

A run is a directory `<workspace>/<name>/` holding this module's files:
launch.json (the request and its resolved config), pid (the process group),
queued (waiting for a slot), stop_requested, exit_code and console.log (the
process's stdout and stderr), and `run/`, the trainer's RUN_DIR (config.json,
checkpoints/, metrics.sqlite, heartbeat, status.json, train.log; see
dstab/training/rundir.py) which the trainer creates itself. Nothing is kept
in memory: every status is derived from those files on each read, so runs
survive closed tabs, reloads and server restarts.

Each run is a new session (`start_new_session=True`) led by a tiny `sh`
supervisor that runs the trainer and then `python -m dstab runs schedule`,
so a queued run starts as soon as a slot frees even if nobody is watching.
Every read (`list_runs`, the CLI, the page) calls `schedule()` as well, which
also covers runs whose whole process group was killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..device import resolve_device
from ..errors import DstabError, require
from ..fileio import write_json
from . import config as train_config
from . import rundir
from .runmetrics import connect_ro

REPO_ROOT = Path(__file__).resolve().parents[2]
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
HEARTBEAT_STALE_S = 120.0  # the trainer rewrites it every few seconds; two minutes of silence is not a slow step
ACTIVE = ("queued", "running")
LOG_NAME = "console.log"
STOP_FILE = "stop_requested"
RUN = "run"  # the trainer's RUN_DIR inside a run's directory


def workspace_root(root: str | Path | None = None) -> Path:
    """Where runs live: `root` if given, else $DSTAB_WORKSPACE/runs, default <repo>/workspace/runs (created)."""
    root = Path(root or Path(os.environ.get("DSTAB_WORKSPACE") or REPO_ROOT / "workspace") / "runs")
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def slots_per_device() -> int:
    """How many runs may train at once on one device ($DSTAB_MAX_RUNS_PER_DEVICE, default 1)."""
    raw = os.environ.get("DSTAB_MAX_RUNS_PER_DEVICE", "1")
    require(raw.isdigit() and int(raw) >= 1, f"DSTAB_MAX_RUNS_PER_DEVICE must be a positive integer, got {raw!r}")
    return int(raw)


def check_name(name: str) -> str:
    require(
        isinstance(name, str) and NAME_RE.fullmatch(name) is not None and ".." not in name,
        f"invalid run name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit "
        "(no '/', no '..')",
    )
    return name


def run_dir(name: str, root: Path | None = None) -> Path:
    """The directory of run `name`, guaranteed to lie directly inside the workspace root."""
    root = workspace_root(root)
    path = root / check_name(name)
    require(path.parent == root and not path.is_symlink(), f"run {name!r} would lie outside the workspace {root}")
    return path


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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


def _alive(pid: int | None, marker: str) -> bool:
    """Whether `pid` is a live, non-zombie process whose command line mentions `marker` (guards pid reuse)."""
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            return False
        if state == "Z":  # exited; reap it if this process launched it, or it lingers as a zombie
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        # a process caught mid-exec shows an empty command line for a moment: it is alive but not yet
        # checkable, and calling it dead would mark a run that just launched as 'died'
        return state not in ("Z", "X") and (not cmdline.strip() or marker in cmdline)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def concrete_device(device: str | None) -> str:
    """A concrete device name ("cpu", "cuda:0"), so that slots are counted per real device; a CUDA
    request without CUDA is refused here rather than by a failed run."""
    dev = resolve_device(device)
    return f"cuda:{dev.index or 0}" if dev.type == "cuda" else str(dev)


def _trainer_args(path: Path, launch: dict, mode: str) -> list[str]:
    rd = str(path / RUN)
    args = ["--resume", rd] if mode == "resume" else ["--out", rd, "--config", str(path / "request.json")]
    threads = ["--threads", str(launch["threads"])] if launch.get("threads") else []
    return args + threads + ["--device", launch["device"], "--quiet"]


def _spawn(path: Path, launch: dict, mode: str) -> int:
    python = shlex.quote(sys.executable)
    trainer = os.environ.get("DSTAB_TRAIN_COMMAND") or f"{python} -m dstab train"  # tests may stand in a fake
    train = f"{trainer} {shlex.join(_trainer_args(path, launch, mode))}"
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
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    # the previous launch's status.json (e.g. 'stopped') must not describe this launch; a resume that
    # starts within the 1 s mtime slack of `_current_status` would otherwise inherit it
    stale = path / RUN / rundir.STATUS
    if stale.exists():
        os.replace(stale, stale.with_name("status.previous.json"))
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


# ---------------------------------------------------------------- status


@dataclass
class RunStatus:
    name: str
    state: str  # queued | running | finished | stopped | failed | died | broken
    step: int = 0
    total_steps: int | None = None
    reason: str | None = None  # why failed / died / broken, or a warning for a running one
    device: str | None = None
    group: str | None = None
    preset: str | None = None
    created: float = 0.0
    started: float | None = None  # when the current (or last) process was launched
    pgid: int | None = None
    heartbeat_age_s: float | None = None
    log_tail: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def log_tail(path: Path, lines: int = 20, file: str = LOG_NAME) -> list[str]:
    """The last `lines` lines of a log in `path` (default: the run's console log, the trainer's
    stdout and stderr), read from the end of the file."""
    try:
        with open(path / file, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 300 * (lines + 1)))
            return handle.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def last_db_step(db: Path) -> int:
    """The largest step in the metrics database (0 when it has none yet); raises on a corrupt file."""
    if not db.exists():
        return 0
    with contextlib.closing(connect_ro(db)) as con:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'metrics'").fetchone():
            return 0  # the trainer has created the file but not yet its table
        return int(con.execute("SELECT coalesce(max(step), 0) FROM metrics").fetchone()[0])


def checkpoint_steps(path: Path) -> list[int]:
    """Steps of the run's saved checkpoints, ascending."""
    rd = path / RUN
    return rundir.checkpoint_steps(rd) if (rd / rundir.CHECKPOINTS).is_dir() else []


def _alive_now(path: Path, pid_info: dict, heartbeat: dict | None) -> bool:
    if (path / "exit_code").exists():  # the trainer has exited; its supervisor may still be handing on the slot
        return False
    marker = str(path)
    return _alive(pid_info.get("pgid"), marker) or _alive((heartbeat or {}).get("pid"), marker)


def _ended_state(path: Path, final: dict | None) -> tuple[str, str | None]:
    """State and reason of a run whose process is gone."""
    if final and final.get("state") in rundir.STATES:
        return final["state"], final.get("error")
    code = (path / "exit_code").read_text().strip() if (path / "exit_code").exists() else ""
    if (path / STOP_FILE).exists() and (not code or code.isdigit() and int(code) >= 128):
        return "stopped", "stopped during start-up, before the trainer could checkpoint"
    if code.isdigit() and 0 < int(code) < 128:
        last = next((line for line in reversed(log_tail(path)) if line.strip()), "")
        return "failed", f"the trainer exited with code {code}: {last}"
    if code.isdigit() and int(code) >= 128:
        return "died", f"killed by signal {int(code) - 128}"
    return "died", "the training process is gone without writing a status"


def status(name: str, root: Path | None = None) -> RunStatus:
    """The state of one run, derived from its directory now. Never raises for a damaged run: it is 'broken'."""
    path = run_dir(name, root)
    if not path.is_dir():
        return RunStatus(name, "broken", reason=f"the run directory {path} was deleted")
    launch = _read_json(path / "launch.json")
    if launch is None:
        return RunStatus(name, "broken", reason="launch.json is missing or unreadable: not a run started by dstab")
    st = RunStatus(
        name,
        "queued",
        total_steps=launch.get("total_steps"),
        device=launch.get("device"),
        group=launch.get("group"),
        preset=launch.get("preset"),
        created=launch.get("created", 0.0),
    )
    rd = path / RUN
    heartbeat = _read_json(rd / rundir.HEARTBEAT)
    try:
        st.step = max(last_db_step(rd / rundir.METRICS), int((heartbeat or {}).get("step", 0)))
    except sqlite3.Error as exc:
        return _broken(st, f"metrics database unreadable ({exc})")
    if heartbeat:
        st.heartbeat_age_s = time.time() - float(heartbeat.get("time", 0))
    if (path / "queued").exists():
        return st
    pid_info = _read_json(path / "pid")
    if pid_info is None:
        if (path / STOP_FILE).exists():
            st.state, st.reason = "stopped", "taken off the queue before it ever ran"
            return st
        return _broken(st, "neither queued nor ever launched (no pid file)")
    st.pgid, st.started = pid_info.get("pgid"), pid_info.get("started")
    final = _current_status(rd, st.started)
    if _alive_now(path, pid_info, heartbeat):
        st.state = "running"
        if st.heartbeat_age_s is not None and st.heartbeat_age_s > HEARTBEAT_STALE_S:
            st.reason = f"alive but no heartbeat for {st.heartbeat_age_s:.0f} s"
        return st
    # the trainer may have written its status and exited between the read above and the liveness check
    final = final or _current_status(rd, st.started)
    st.state, st.reason = _ended_state(path, final)
    st.step = max(st.step, int((final or {}).get("step") or 0))
    has_ckpt = bool(checkpoint_steps(path))
    if st.state in ("finished", "stopped") and final and not has_ckpt:
        return _broken(st, f"the run {st.state} at step {st.step} but its checkpoint is missing from {rd}")
    if st.state in ("died", "failed"):
        if st.state == "died" and not has_ckpt:
            st.reason += "; no checkpoint yet, resume starts from step 0"
        st.log_tail = log_tail(path)
    return st


def _current_status(rd: Path, started: float | None) -> dict | None:
    """The trainer's status.json, unless it is left over from before the latest launch (a resumed
    run that was then killed must read as died, not as its earlier 'stopped')."""
    path = rd / rundir.STATUS
    try:
        fresh = started is None or path.stat().st_mtime >= started - 1.0  # 1 s: coarse file-system clocks
    except OSError:
        return None
    return _read_json(path) if fresh else None


def _broken(st: RunStatus, reason: str) -> RunStatus:
    st.state, st.reason = "broken", reason
    return st


def run_names(root: Path | None = None) -> list[str]:
    root = workspace_root(root)
    names = [p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and NAME_RE.fullmatch(p.name)]
    return sorted(n for n in names if ".." not in n)


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
        waiting = sorted((r for r in runs if r.state == "queued"), key=lambda r: _queued_at(root / r.name))
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
    """The trainer's full config for a request, validated exactly as `dstab train` will (model and
    dataset shapes included), so a refused config raises DstabError before anything is launched."""
    require(preset or config_file, "a run needs a preset or a config file")
    config = train_config.resolve(preset, config_file, list(overrides))
    check_buildable(config)
    return config


def check_buildable(config: dict) -> None:
    """Build the trainer's model and data once (shape checks); a sweep calls this once per distinct setup."""
    from .trainer import Trainer

    Trainer(train_config.TrainConfig.from_dict(config), REPO_ROOT, "cpu")


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
) -> RunStatus:
    """Queue a new run and start it at once if its device has a free slot.

    The request (preset or config file, then `key=value` overrides as for
    `dstab train --set`) is resolved and validated here, and the resolved
    config is what the trainer receives: a queued run cannot change meaning
    if a preset or the file changes before it starts.
    """
    require(threads is None or threads >= 1, f"threads must be a positive integer, got {threads!r}")
    require(not run_dir(name, root).exists(), f"a run named {name!r} already exists; pick another name or delete it")
    config = resolved_config(preset, config_file, overrides)
    request = {"preset": preset, "config_file": str(config_file) if config_file else None, "overrides": list(overrides)}
    queue(name, config, request, device=concrete_device(device), group=group, threads=threads, root=root)
    schedule(root)
    return status(name, root)


def queue(
    name: str, config: dict, request: dict, *, device: str, group=None, threads=None, root: Path | None = None
) -> Path:
    """Write a run whose `config` is already resolved and validated onto the queue, without
    scheduling: `start` for one run, a sweep for many (then one `schedule()`). `request` is
    what launch.json records of how the config was asked for (preset, overrides, ...)."""
    root = workspace_root(root)
    path = run_dir(name, root)
    launch = {
        "name": name,
        **request,
        "device": device,
        "threads": threads,
        "group": group,
        "total_steps": config["steps"],
        "created": time.time(),
    }
    with _locked(root):
        require(not path.exists(), f"a run named {name!r} already exists in {root}; pick another name or delete it")
        path.mkdir()
        write_json(path / "request.json", config)
        write_json(path / "launch.json", launch)
        _enqueue(path, "start")
    return path


def stop(name: str, root: Path | None = None) -> RunStatus:
    """Ask a running run to stop (SIGTERM to its process group: the trainer checkpoints and exits);
    a queued run is taken off the queue."""
    root = workspace_root(root)
    path = run_dir(name, root)
    with _locked(root):
        st = status(name, root)
        require(st.active, f"run {name!r} is {st.state}, not running or queued; nothing to stop")
        write_json(path / STOP_FILE, {"time": time.time()})
        if st.state == "queued":
            (path / "queued").unlink()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(st.pgid, signal.SIGTERM)
    return status(name, root)


def resume(name: str, root: Path | None = None) -> RunStatus:
    """Queue a stopped or died run to continue from its last checkpoint (from step 0 if it has none)."""
    root = workspace_root(root)
    path = run_dir(name, root)
    with _locked(root):
        st = status(name, root)
        require(
            st.state in ("stopped", "died"),
            f"run {name!r} is {st.state}" + (f" ({st.reason})" if st.reason else "") + "; only a stopped or died "
            "run can be resumed",
        )
        for stale in ("exit_code", STOP_FILE):
            (path / stale).unlink(missing_ok=True)
        rd = path / RUN
        if rd.exists() and not (rd / rundir.CONFIG).exists():
            shutil.rmtree(rd)  # the trainer never got as far as writing its config: start afresh
        _enqueue(path, "resume" if rd.exists() else "start")
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
