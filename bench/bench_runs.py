"""Benchmarks of background runs (issue 7), measured side by side in one process.

1. A training-page rerun over 10 runs x 10,000 metric rows, server-side: the data layer alone
   (list_runs + incremental metric reads + table rows + curve series) and a full AppTest rerun of
   pages/training.py, each cold (first visit: every row read) and warm (a poll: 10 new rows per run).
   Goal: a warm rerun <= 0.5 s.
2. The polling overhead on a run's wall time: the same real training run with nobody watching and
   with a watcher doing what the page's fragment does (list_runs + incremental reads) every
   POLL_S seconds, and every 0.1 s as a stress case; runs alternate to share the machine's load.
   Goal: <= 1 % at the page's rate.

    python bench/bench_runs.py [--pairs 3] [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

import _repo  # noqa: F401 (puts the repository root on sys.path)
import torch

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "dataset=toy2d:8gaussians",
    'arch={"arch": "mlp_denoiser", "hidden": 64}',
    "batch_size=64",
    "log_every=10",
    "eval_every=null",
]
NAMES = ["loss", "loss_q0", "loss_q1", "loss_q2", "loss_q3", "grad_norm", "lr", "beta1", "samples_per_s"]


def _fake_finished_run(root: Path, name: str, rows_per_run: int, checkpoint: Path) -> None:
    """A finished run's directory as runs.py and the trainer leave it, with `rows_per_run` metric rows."""
    from dstab import runs
    from dstab.runs.rundir import METRICS_TABLE

    d = root / name
    (d / "run" / "checkpoints").mkdir(parents=True)
    steps = rows_per_run // (len(NAMES) + 1)
    t0 = time.time() - 3600
    (d / "launch.json").write_text(
        json.dumps({"name": name, "preset": "baseline", "device": "cpu", "total_steps": steps * 10, "created": t0})
    )
    (d / "request.json").write_text("{}")
    (d / "pid").write_text(json.dumps({"pgid": 2**22 + 7, "mode": "start", "started": t0}))  # long gone
    (d / "exit_code").write_text("0")
    (d / "run" / "checkpoints" / f"step{steps * 10:07d}.safetensors").write_bytes(checkpoint.read_bytes())
    con = sqlite3.connect(d / "run" / "metrics.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(METRICS_TABLE)
    rows = [(s * 10, n, 1.0 / (s + 1), t0 + s) for s in range(1, steps + 1) for n in NAMES]
    rows += [(s * 10, "fd_points@500", 5.0 / (s + 1), t0 + s) for s in range(1, steps + 1)]
    con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", rows[:rows_per_run])
    con.commit()
    con.close()
    (d / "run" / "status.json").write_text(json.dumps({"state": "finished", "step": steps * 10, "error": None}))
    assert runs.status(name, root).state == "finished"


def _append_rows(root: Path, names: list[str], k: int) -> None:
    for name in names:
        con = sqlite3.connect(root / name / "run" / "metrics.sqlite")
        top = con.execute("SELECT max(step) FROM metrics").fetchone()[0]
        con.executemany(
            "INSERT INTO metrics VALUES (?, 'loss', 0.5, ?)", [(top + 10 * (i + 1), time.time()) for i in range(k)]
        )
        con.commit()
        con.close()


def _data_layer(root: Path, cache: dict) -> None:
    from dstab import runs
    from dstab.runs import runboard
    from dstab.runs.runmetrics import RunMetrics

    statuses = runs.list_runs(root)
    for s in statuses:
        m = cache.setdefault(s.name, RunMetrics(root / s.name / "run" / "metrics.sqlite"))
        m.refresh()
        runboard.table_row(s, m)
        for name in ["loss", *runboard.QUARTILES, runboard.eval_metric(m.names())]:
            m.series(name)


def _tiny_checkpoint(tmp: Path) -> Path:
    from dstab.training import config as train_config
    from dstab.training.trainer import Trainer

    cfg = train_config.TrainConfig.from_dict(train_config.resolve("baseline", None, TINY))
    return Trainer(cfg, tmp, "cpu").save(1)


def bench_page(rows_per_run: int = 10_000, n_runs: int = 10) -> dict:
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DSTAB_WORKSPACE"] = tmp
        root = Path(tmp) / "runs"
        root.mkdir()
        ckpt = _tiny_checkpoint(Path(tmp))
        names = [f"run{i:02d}" for i in range(n_runs)]
        for name in names:
            _fake_finished_run(root, name, rows_per_run, ckpt)
        out = {}
        cache: dict = {}
        out["data_cold"] = _timed(lambda: _data_layer(root, cache))
        _append_rows(root, names, 10)
        out["data_warm"] = _timed(lambda: _data_layer(root, cache))
        at = AppTest.from_file(str(REPO / "pages" / "training.py"), default_timeout=300)
        out["page_cold"] = _timed(at.run)
        assert not at.exception, at.exception
        warm = []
        for _ in range(5):
            _append_rows(root, names, 10)
            warm.append(_timed(at.run))
        out["page_warm"] = {k: statistics.median(w[k] for w in warm) for k in ("wall_s", "cpu_s")}
        assert len(at.dataframe[0].value) == n_runs
        return out


def _timed(fn) -> dict:
    """Wall and CPU seconds (all threads of this process: AppTest runs the script in its own thread).
    On a machine shared with other work, CPU time is what the rerun itself costs."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}


def _train_seconds(root: Path, name: str) -> float:
    """Training time from the run's own rows: first to last logged step (start-up excluded)."""
    con = sqlite3.connect(root / name / "run" / "metrics.sqlite")
    lo, hi = con.execute("SELECT min(wall), max(wall) FROM metrics WHERE name = 'loss'").fetchone()
    con.close()
    return hi - lo


def _run_once(root: Path, name: str, steps: int, poll_s: float | None) -> float:
    from dstab import runs
    from dstab.runs.runmetrics import RunMetrics

    runs.start(name, preset="baseline", overrides=[*TINY, f"steps={steps}"], device="cpu", threads=1, root=root)
    stop = threading.Event()
    cost = {"cpu_s": 0.0, "polls": 0}

    def watch():
        m = RunMetrics(root / name / "run" / "metrics.sqlite")
        while not stop.wait(poll_s):
            c = time.thread_time()
            runs.list_runs(root)
            m.refresh()
            cost["cpu_s"] += time.thread_time() - c
            cost["polls"] += 1

    watcher = threading.Thread(target=watch) if poll_s else None
    if watcher:
        watcher.start()
    st = runs.wait(name, timeout=1800, root=root)
    stop.set()
    if watcher:
        watcher.join()
    assert st.state == "finished", (st.state, st.reason, st.log_tail)
    return _train_seconds(root, name), cost


def bench_polling(pairs: int, steps: int, page_poll_s: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        times: dict[str, list[float]] = {"none": [], "page": [], "stress": []}
        costs: dict[str, list[float]] = {"page": [], "stress": []}
        for i in range(pairs):
            for mode, poll in (("none", None), ("page", page_poll_s), ("stress", 0.1)):
                wall, cost = _run_once(root, f"{mode}-{i}", steps, poll)
                times[mode].append(wall)
                if poll:  # the watcher's own CPU time as a share of the run's wall time: a load-free bound
                    costs[mode].append(100 * cost["cpu_s"] / wall)
        med = {k: statistics.median(v) for k, v in times.items()}
        return {
            "train_s": times,
            "wall_ratio_page_pct": 100 * (med["page"] / med["none"] - 1),
            "wall_ratio_stress_pct": 100 * (med["stress"] / med["none"] - 1),
            "watcher_cpu_page_pct_of_wall": statistics.median(costs["page"]),
            "watcher_cpu_stress_pct_of_wall": statistics.median(costs["stress"]),
        }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--skip-polling", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()}")
    page = bench_page()
    print(json.dumps(page, default=lambda v: round(v, 3)))
    if not args.skip_polling:
        from dstab.runs.runboard import POLL_S

        poll = bench_polling(args.pairs, args.steps, POLL_S)
        print(json.dumps(poll, default=lambda v: round(v, 3)))
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
