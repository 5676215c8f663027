"""The state of a background training run, derived from its directory on every read.

A run is a directory `<workspace>/<name>/` (`workspace_root`; see the package's
docstring, dstab/runs/__init__.py, for who writes what): request.json, launch.json, pid,
queued, stop_requested, exit_code, console.log and `run/`, the trainer's RUN_DIR (rundir.py).
Nothing is kept in memory, so a status survives closed tabs, reloads and server restarts;
a damaged run reads as 'broken' with the reason, never as an exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import confine
from ..errors import require
from . import rundir
from .runmetrics import connect_ro

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
HEARTBEAT_STALE_S = 120.0  # the trainer rewrites it every few seconds; two minutes of silence is not a slow step
ACTIVE = ("queued", "running")
LOG_NAME = "console.log"
STOP_FILE = "stop_requested"
RUN = "run"  # the trainer's RUN_DIR inside a run's directory
SUBMITTED = "submitted.json"  # a cluster launcher's record of the job that trains the run (runs/slurm.py)


def workspace_root(root: str | Path | None = None) -> Path:
    """Where runs live: `root` if given, else the workspace's runs/ (`confine.workspace_root`: $DSTAB_WORKSPACE,
    default ~/.local/share/dstab/workspace), created."""
    root = Path(root or confine.workspace_root() / "runs")
    require(root.is_dir() or not root.exists(), f"the runs folder {root} is a file, not a folder; give a folder")
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
    if pid_info.get("host", socket.gethostname()) != socket.gethostname():
        # a cluster job: its pid means nothing here, its heartbeat (on the shared disk) tells
        return heartbeat is not None and time.time() - float(heartbeat.get("time", 0)) < HEARTBEAT_STALE_S
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
        submitted = _read_json(path / SUBMITTED)
        if submitted:  # in a cluster's queue: waiting to start, or preempted and requeued
            job = submitted.get("job_id") or "(being submitted)"
            st.reason = f"{submitted.get('launcher', 'cluster')} job {job}: waiting to (re)start"
            return st
        return _broken(st, "neither queued nor ever launched (no pid file)")
    st.pgid, st.started = pid_info.get("pgid"), pid_info.get("started")
    final = _current_status(rd, st.started)
    if _alive_now(path, pid_info, heartbeat):
        st.state = "running"
        beat = float((heartbeat or {}).get("time", 0))
        if st.started and beat < st.started:  # the heartbeat of an earlier launch (the one stopped or killed)
            what = "resuming" if pid_info.get("mode") == "resume" else "starting"
            st.heartbeat_age_s = None
            st.reason = f"{what}: launched {time.time() - st.started:.0f} s ago, no heartbeat from it yet"
        elif st.heartbeat_age_s is not None and st.heartbeat_age_s > HEARTBEAT_STALE_S:
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
