"""Reading a run's metrics while it trains: only the rows written since the last read.

The trainer appends rows to RUN_DIR/metrics.sqlite (WAL mode, table
`metrics(step, name, value, wall)`, one row per (step, name)). A page that
polls every few seconds must not re-read a whole run each time, so a
`RunMetrics` remembers the largest rowid it has seen and asks only for newer
rows. A row re-written after a resume (INSERT OR REPLACE gets a new rowid)
simply arrives again and replaces the old value for its step.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import numpy as np


def connect_ro(db: Path) -> sqlite3.Connection:
    # read-only, so the page can never damage a run's numbers; WAL readers do not block the writer
    return sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)


def rows_after(db: Path, rowid: int = 0) -> tuple[list[tuple[int, int, str, float, float]], int]:
    """Rows (rowid, step, name, value, wall) with rowid > `rowid` in rowid order, and the table's largest
    rowid (0 when empty). ([], 0) while the file or its table does not exist yet."""
    if not Path(db).exists():
        return [], 0
    with contextlib.closing(connect_ro(db)) as con:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'metrics'").fetchone():
            return [], 0
        top = con.execute("SELECT coalesce(max(rowid), 0) FROM metrics").fetchone()[0]
        rows = con.execute(
            "SELECT rowid, step, name, value, wall FROM metrics WHERE rowid > ? ORDER BY rowid", (rowid,)
        ).fetchall()
        return rows, top


class RunMetrics:
    """Every metric of one run in memory, topped up by `refresh()` with the rows written since."""

    def __init__(self, db: str | Path):
        self.db = Path(db)
        self._reset()

    @classmethod
    def read(cls, db: str | Path) -> RunMetrics:
        """Every row of `db` read once (a finished run, a test): `RunMetrics(db)` after one `refresh()`."""
        metrics = cls(db)
        metrics.refresh()
        return metrics

    def _reset(self) -> None:
        self.last_rowid = 0
        self._identity = None
        self._points: dict[str, dict[int, tuple[float, float]]] = {}  # name -> step -> (value, wall)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _file_identity(self):
        try:
            st = self.db.stat()
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def refresh(self) -> int:
        """Read the new rows; returns how many arrived. A replaced database (run deleted and recreated) is re-read."""
        identity = self._file_identity()
        if identity != self._identity:
            self._reset()
            self._identity = identity
        rows, top = rows_after(self.db, self.last_rowid)
        if top < self.last_rowid:  # fewer rows than we have seen: a new file that reused the inode
            self._reset()
            self._identity = identity
            rows, top = rows_after(self.db, 0)
        for rowid, step, name, value, wall in rows:
            self._points.setdefault(name, {})[int(step)] = (value, wall)
            self._arrays.pop(name, None)
            self.last_rowid = max(self.last_rowid, rowid)
        return len(rows)

    def names(self) -> list[str]:
        return sorted(self._points)

    def rows(self) -> list[tuple[int, str, float, float]]:
        """Every (step, name, value, wall) read so far, ordered by step, then name."""
        return sorted((step, name, v, w) for name, pts in self._points.items() for step, (v, w) in pts.items())

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps, values, walls) of one metric sorted by step; empty arrays when it has no rows yet."""
        if name not in self._arrays:
            points = self._points.get(name, {})
            steps = np.fromiter(sorted(points), dtype=np.int64, count=len(points))
            pairs = np.array([points[s] for s in steps], dtype=np.float64).reshape(-1, 2)
            self._arrays[name] = (steps, pairs[:, 0], pairs[:, 1])
        return self._arrays[name]

    def latest(self, name: str) -> tuple[int, float] | None:
        """(step, value) of the metric's last step, or None."""
        steps, values, _ = self.series(name)
        return (int(steps[-1]), float(values[-1])) if len(steps) else None
