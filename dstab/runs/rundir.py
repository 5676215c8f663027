"""The run directory: the contract between `python -m dstab train` and
whatever watches it (the background-runs manager, the training page).

Commands:
    python -m dstab train --out RUN_DIR (--config FILE.json|.toml|.yaml | --preset NAME) [--set key=value ...]
    python -m dstab train --resume RUN_DIR
A bad config prints one line on stderr and exits 2 before anything is
created. An --out folder that exists and is not empty is refused.

Layout of RUN_DIR:
    config.json       the full resolved TrainConfig (resume reads only this)
    checkpoints/      stepNNNNNNN.safetensors: dstab checkpoints (EMA weights of
                      a DM; G and D of a GAN), written atomically every
                      `checkpoint_every` steps and at the end;
                      resume.pt: everything an exact resume needs (raw weights,
                      EMA, optimiser, RNG and sampler state, step), written
                      atomically after the checkpoint; load with
                      `torch.load(..., weights_only=True)` (dstab/training/resume_state.py);
                      resume.prev.pt: the one before, for a damaged newest
    metrics.sqlite    SQLite in WAL mode, table
                      metrics(step INTEGER, name TEXT, value REAL, wall REAL,
                              PRIMARY KEY(step, name)),
                      rows committed as they happen; `wall` is Unix time
                      (read them with runmetrics.RunMetrics, the one reader).
                      Names: loss, loss_q0..loss_q3 (mean loss per quartile of t),
                      grad_norm, lr, beta1, samples_per_s, cpu_s (process CPU
                      seconds in training steps so far), d_loss (GANs) and an
                      evaluation named by `metric_name`, e.g. "fd_local@500x50ddim"
                      (Frechet distance on dstab's local digit features, 500
                      samples, 50 DDIM steps), "fd_points@...", "fid@...", with
                      on image features "kid[_local][_se]@...",
                      "precision|recall|density|coverage[_local]@...", and for
                      2-D data "mmd2@...", "sw2@...", "mode_coverage@...",
                      "mode_precision@..." (8-Gaussians); "~K" ends the name of
                      a mean over K evaluation noise seeds, "#2" the name of the
                      repeat evaluation with other noise seeds (eval_repeat_every).
    heartbeat         JSON {"step", "time", "pid"}, rewritten every
                      HEARTBEAT_EVERY_S seconds by a thread while the process lives
    status.json       written at exit: {"state": "finished"|"stopped"|"failed",
                      "step": N, "error": message or null}
    train.log         one line per log step (human-readable)

SIGTERM (or SIGINT) ends the current step, writes a checkpoint and resume
state, status "stopped", and exits 0. `--resume` continues from resume.pt with
the same RNG streams and schedule position; metric rows past the resumed step
(left by a crash after the last checkpoint) are deleted and rewritten, so the
table has no gaps and no duplicates.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from ..errors import DstabError
from ..fileio import write_json

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
METRICS = "metrics.sqlite"
HEARTBEAT = "heartbeat"
STATUS = "status.json"
LOG = "train.log"
HEARTBEAT_EVERY_S = 2.0
STATES = ("finished", "stopped", "failed")
# the metrics table, as the trainer creates it and every reader (and test, bench, stand-in trainer) expects it
METRICS_TABLE = (
    "CREATE TABLE IF NOT EXISTS metrics(step INTEGER, name TEXT, value REAL, wall REAL, PRIMARY KEY(step, name))"
)


def check_new(run_dir: Path) -> None:
    """Refuse a folder that already holds something (another run, or anything else)."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        what = "another run" if (run_dir / CONFIG).exists() else "other files"
        raise DstabError(
            f"{run_dir} already holds {what}; choose a new --out folder, or continue a run with --resume {run_dir}"
        )


def create(run_dir: Path, config: dict) -> None:
    check_new(run_dir)
    (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG, config)


def read_config(run_dir: Path) -> dict:
    path = run_dir / CONFIG
    if not path.exists():
        raise DstabError(f"{run_dir} is not a dstab run folder (no {CONFIG}); start one with --out")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DstabError(f"{path} is not valid JSON ({exc})") from None


def checkpoint_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.stem[4:]) for p in (run_dir / CHECKPOINTS).glob("step*.safetensors"))


def clean_leftovers(run_dir: Path) -> list[str]:
    """Delete the temporary files an interrupted atomic write leaves (.NAME.XXXX.tmp); their names."""
    removed = []
    for folder in (run_dir, run_dir / CHECKPOINTS):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)
            removed.append(tmp.name)
    return removed


def write_status(run_dir: Path, state: str, step: int, error: str | None = None) -> None:
    assert state in STATES
    write_json(run_dir / STATUS, {"state": state, "step": int(step), "error": error})


def read_status(run_dir: Path) -> dict | None:
    path = run_dir / STATUS
    return json.loads(path.read_text()) if path.exists() else None


class Heartbeat:
    """A daemon thread rewriting RUN_DIR/heartbeat every few seconds, so a
    watcher can tell a live run (fresh time, live pid) from a dead one even
    while a long evaluation runs."""

    def __init__(self, run_dir: Path, every_s: float = HEARTBEAT_EVERY_S):
        self.path, self.every_s, self.step = run_dir / HEARTBEAT, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dstab-heartbeat")

    def beat(self) -> None:
        payload = {"step": int(self.step), "time": time.time(), "pid": os.getpid()}
        try:
            write_json(self.path, payload)
        except OSError:
            pass  # a full disk must not kill training from this thread; the next beat retries

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.beat()

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.beat()


class MetricsDB:
    """metrics.sqlite in WAL mode: one writer (the trainer), any number of
    readers in other processes while it trains. Each `write` commits."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(METRICS_TABLE)
            self.conn.commit()
        except sqlite3.DatabaseError as exc:
            raise DstabError(
                f"{self.path} is damaged ({exc}); move it aside to continue with a fresh metrics table "
                "(the checkpoints are not affected)"
            ) from None

    def has_evaluation(self, step: int) -> bool:
        """Whether an evaluation (a metric named like fd_local@500x50ddim) was recorded at `step`."""
        row = self.conn.execute("SELECT 1 FROM metrics WHERE step = ? AND name LIKE '%@%'", (int(step),)).fetchone()
        return row is not None

    def write(self, step: int, values: dict[str, float], wall: float | None = None) -> None:
        wall = time.time() if wall is None else wall
        rows = [(int(step), name, float(v), wall) for name, v in values.items()]
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", rows)

    def truncate_after(self, step: int) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM metrics WHERE step > ?", (int(step),))

    def close(self) -> None:
        self.conn.close()
