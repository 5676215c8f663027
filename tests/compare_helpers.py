"""Finished run directories with made-up curves, as `dstab runs` leaves them, for compare's tests."""

from __future__ import annotations

import json
import time
from pathlib import Path

from dstab.runs import rundir
from dstab.training import config as train_config


def fake_run(
    root: Path,
    name: str,
    group: str,
    variant: str,
    seed: int,
    curve,
    metric="fd_local@250x10ddim",
    wall_per_step: float = 0.1,
    state: str = "finished",
    start: float | None = None,
    cpu_per_step: float | None = None,
    every: int = 100,
    repeat=None,
    **config,
) -> Path:
    """A run of `variant` whose metric follows curve(step) at steps every, 2 every, ..., `steps`; its
    rows stamped from `start` (unix seconds, default 1000 s ago) at `wall_per_step`; with
    `cpu_per_step` also cpu_s and samples_per_s rows; `repeat(value)`: the metric's `#2` rows every 1000."""
    cfg = train_config.resolve(variant, overrides=[f"seed={seed}", f"data_seed={seed}"])
    cfg.update(config)
    path = root / name
    rd = path / "run"
    (rd / "checkpoints").mkdir(parents=True)
    steps = cfg["steps"]
    now = time.time()
    launch = {
        "name": name,
        "group": group,
        "preset": variant,
        "variant": variant,
        "label": variant,
        "seed": seed,
        "device": "cpu",
        "total_steps": steps,
        "created": now - 100 + seed,
    }
    (path / "launch.json").write_text(json.dumps(launch))
    (path / "request.json").write_text(json.dumps(cfg))
    (path / "pid").write_text(json.dumps({"pgid": 2**22 + 12345, "mode": "start", "started": now - 50}))
    (path / "exit_code").write_text("0\n")
    (rd / "config.json").write_text(json.dumps(cfg))
    (rd / "checkpoints" / f"step{steps:07d}.safetensors").write_bytes(b"")
    db = rundir.MetricsDB(rd / "metrics.sqlite")
    start = now - 1000.0 if start is None else start
    db.write(1, {"loss": 1.0}, wall=start)
    for step in range(every, steps + 1, every):
        row = {metric: float(curve(step)), "loss": 0.5}
        if cpu_per_step is not None:
            row |= {"cpu_s": cpu_per_step * step, "samples_per_s": cfg["batch_size"] / wall_per_step}
        if repeat is not None and step % 1000 == 0:
            row[metric + "#2"] = float(repeat(row[metric]))
        db.write(step, row, wall=start + wall_per_step * step)
    db.close()
    if state == "finished":
        rundir.write_status(rd, "finished", steps)
    return path


def fake_group(root: Path, group: str, curves: dict, seeds=(0, 1, 2), **config) -> list[Path]:
    """curves: variant -> f(step, seed)."""
    return [
        fake_run(root, f"{group}-{v}-s{s}", group, v, s, lambda step, f=f, s=s: f(step, s), **config)
        for s in seeds
        for v, f in curves.items()
    ]
