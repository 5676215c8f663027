"""Benchmarks of sweeps and evaluation (issue 12), measured side by side in one process.

1. Queueing a 30-run sweep (5 variants x 3 seeds x 2 lr): `sweep.plan` + `sweep.launch` (configs
   validated without PyTorch, one schedule pass) against the same 30 runs through `runs.start` one
   by one (each validates and schedules). A stand-in trainer ($DSTAB_TRAIN_COMMAND) runs them, so
   only the queueing is timed. Then the whole CLI call, `python -m dstab sweep ...` (interpreter
   start and imports included; no PyTorch), against `python -m dstab runs start` per run (3 calls,
   per-call time). Goal: <= 5 s for the sweep. The load average is printed beside the times.
2. Evaluation's share of a run's wall time at the default evaluation settings: the preset's
   (digits, 500 samples by 50 DDIM steps every 500 of 3,000 iterations) and `reproduce
   speedup`'s two setups; from the measured time of a training step and of one evaluation.
   Goal: <= 20%.

    python bench/bench_sweep.py [--steps 20] [--queueing-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _repo  # noqa: F401 (puts the repository root on sys.path)

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "tests" / "fake_trainer.py"
VARIANTS = ["baseline", "md", "md-lrc", "mdlrc-clts", "lr-matched"]


def queueing() -> None:
    from dstab import runs
    from dstab.experiments import sweep

    os.environ.update(DSTAB_TRAIN_COMMAND=f"{sys.executable} {FAKE}", FAKE_STEP_S="0.01", DSTAB_MAX_RUNS_PER_DEVICE="1")
    with tempfile.TemporaryDirectory() as tmp:
        sweep.plan(["baseline"], [0], group="warm")  # imports
        t0 = time.perf_counter()
        group, planned = sweep.plan(VARIANTS, [0, 1, 2], [sweep.parse_axis("lr=1e-3,2e-3")], group="b")
        sweep.launch(group, planned, device="cpu", root=Path(tmp) / "a")
        t_sweep = time.perf_counter() - t0
        t0 = time.perf_counter()
        for r in planned:
            overrides = [f"lr={r.config['lr']}", f"seed={r.seed}", f"data_seed={r.seed}"]
            runs.start(r.name, preset=r.variant, overrides=overrides, device="cpu", root=Path(tmp) / "b")
        t_start = time.perf_counter() - t0
        print(
            f"in-process, {len(planned)} runs: sweep.launch {t_sweep:.2f} s, runs.start x{len(planned)} "
            f"{t_start:.2f} s (ratio {t_start / t_sweep:.1f}x)"
        )
        for root in ("a", "b"):
            for st in runs.list_runs(Path(tmp) / root):
                if st.active:
                    runs.stop(st.name, Path(tmp) / root)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        root = str(Path(tmp) / "c")
        argv = [
            sys.executable,
            "-m",
            "dstab",
            "sweep",
            "--root",
            root,
            "--variants",
            ",".join(VARIANTS),
            "--seeds",
            "3",
            "--set",
            "lr=1e-3,2e-3",
            "--group",
            "c",
            "--device",
            "cpu",
        ]
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        t_cli = time.perf_counter() - t0
        t0 = time.perf_counter()
        for k in range(3):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "dstab",
                    "runs",
                    "--root",
                    root,
                    "start",
                    f"one{k}",
                    "--preset",
                    "baseline",
                    "--device",
                    "cpu",
                ],
                env=env,
                check=True,
                capture_output=True,
            )
        per_call = (time.perf_counter() - t0) / 3
        print(
            f"CLI: `dstab sweep` of 30 runs {t_cli:.1f} s in all; `dstab runs start` {per_call:.1f} s per call "
            f"(x30 = {30 * per_call:.0f} s, ratio {30 * per_call / t_cli:.1f}x)"
        )
        for st in runs.list_runs(Path(root)):
            if st.active:
                runs.stop(st.name, Path(root))


def eval_share(steps: int) -> None:
    import torch

    from dstab.analysis import fid
    from dstab.experiments import speedup
    from dstab.training import config as train_config
    from dstab.training.trainer import Trainer

    torch.set_num_threads(1)
    setups = {"preset baseline (digits)": train_config.resolve("baseline")}
    for name in ("digits", "toy2d"):
        setups[f"reproduce speedup {name}"] = speedup.plan(name, ["baseline"], [0])[1][0].config
    for label, cfg in setups.items():
        trainer = Trainer(train_config.TrainConfig.from_dict(cfg), REPO, "cpu")
        batches = trainer.dataset.batches(cfg["batch_size"], 0)
        trainer.dm_step(next(batches), 1)
        t0 = time.perf_counter()
        for k in range(steps):
            trainer.dm_step(next(batches), k + 2)
        step_s = (time.perf_counter() - t0) / steps
        ev = fid.TrainingEvaluator(trainer.cfg, trainer.dataset)
        ev(trainer.eval_modules(), trainer.diffusion)  # warm-up (reference statistics, caches)
        t0 = time.perf_counter()
        ev(trainer.eval_modules(), trainer.diffusion)
        eval_s = time.perf_counter() - t0
        evals = cfg["steps"] // cfg["eval_every"]
        share = evals * eval_s / (evals * eval_s + cfg["steps"] * step_s)
        print(
            f"{label}: {step_s * 1000:.1f} ms/step, {eval_s:.2f} s per evaluation ({ev.name}, every "
            f"{cfg['eval_every']} of {cfg['steps']}): evaluation = {100 * share:.0f}% of the run's wall time"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20, help="training steps timed per setup")
    p.add_argument("--queueing-only", action="store_true", help="part 1 only (seconds, not minutes)")
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    queueing()
    print(f"load average {os.getloadavg()[0]:.1f} (1 min)")
    if not args.queueing_only:
        eval_share(args.steps)
