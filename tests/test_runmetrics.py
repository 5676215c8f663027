"""Incremental metric reads: only new rows, replaced rows, a recreated database."""

import sqlite3

import numpy as np

from dstab.runs.rundir import METRICS_TABLE
from dstab.runs.runmetrics import RunMetrics, rows_after


def _db(path, rows):
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(METRICS_TABLE)
    con.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", rows)
    con.commit()
    return con


def test_refresh_reads_only_new_rows_and_replacements(tmp_path):
    db = tmp_path / "metrics.sqlite"
    assert rows_after(db) == ([], 0)  # no file yet: nothing, and no file created
    assert not db.exists()
    con = _db(db, [(s, "loss", 1.0 / s, 0.1 * s) for s in range(1, 11)])
    m = RunMetrics(db)
    assert m.refresh() == 10
    assert m.refresh() == 0
    con.executemany(
        "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", [(11, "loss", 0.5, 1.1), (10, "loss", 7.0, 1.0)]
    )
    con.commit()
    assert m.refresh() == 2  # step 11 and the re-written step 10
    steps, values, walls = m.series("loss")
    assert steps.tolist() == list(range(1, 12))
    assert values[9] == 7.0 and values[10] == 0.5
    np.testing.assert_allclose(values[:9], [1.0 / s for s in range(1, 10)])
    assert m.latest("loss") == (11, 0.5)
    assert m.latest("fid@1k") is None
    con.close()


def test_a_recreated_database_is_read_from_scratch(tmp_path):
    db = tmp_path / "metrics.sqlite"
    _db(db, [(s, "loss", float(s), 0.0) for s in range(1, 6)]).close()
    m = RunMetrics(db)
    m.refresh()
    for f in tmp_path.iterdir():
        f.unlink()
    _db(db, [(1, "fd_local@64", 3.0, 0.0)]).close()
    assert m.refresh() == 1
    assert m.names() == ["fd_local@64"]
