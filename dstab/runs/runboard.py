"""What the training page shows, computed without streamlit: the run table, metric names and
labels, launch requests, schedule previews, speed estimates and sample grids."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .. import runs
from ..errors import require
from ..metricnames import metric_label
from ..modelconfig import DDIM_STEPS
from ..training import config as train_config
from .curves import rate_and_eta
from .runmetrics import RunMetrics

# Model sizes offered on the page, as `--set arch=...` values. Digits: the zoo's UNet (base) and a
# narrower and a wider variant; toy 2-D data: the MLP denoiser at three widths.
MODEL_SIZES = {
    "digits": {
        "small": {**train_config.DIGITS_UNET, "model_channels": 16},
        "base": train_config.DIGITS_UNET,
        "wide": {**train_config.DIGITS_UNET, "model_channels": 48},
    },
    "toy2d": {
        "small": {"arch": "mlp_denoiser", "hidden": 64},
        "base": {"arch": "mlp_denoiser", "hidden": 128},
        "wide": {"arch": "mlp_denoiser", "hidden": 256},
    },
}
POLL_S = 3.0  # the page re-reads new rows this often while a run is active
IDLE_POLL_S = 10.0  # and lists the runs this often while none is (one started by the CLI or another tab)
EVAL_PREFIXES = ("fid@", "fd_local@", "fd_points@")  # lower is better; named by rundir.py's contract
QUARTILES = [f"loss_q{k}" for k in range(4)]


def family(dataset: str) -> str:
    return dataset.split(":", 1)[0]


def eval_metric(names: list[str]) -> str | None:
    """The run's FD/FID metric name (FID preferred), or None before its first evaluation."""
    for prefix in EVAL_PREFIXES:
        found = sorted(n for n in names if n.startswith(prefix))
        if found:
            return found[0]
    return None


def request_overrides(dataset: str, size: str, hyper: dict) -> list[str]:
    """`--set` strings for the page's choices. `hyper` keys are TrainConfig options, dotted for
    nested ones (timesteps.mu); values are JSON-encoded as `dstab train --set` expects."""
    require(size in MODEL_SIZES[family(dataset)], f"unknown model size {size!r}")
    sets = [f"dataset={dataset}", f"arch={json.dumps(MODEL_SIZES[family(dataset)][size])}"]
    return sets + [f"{k}={json.dumps(v)}" for k, v in hyper.items() if v is not None]


def preview(config: dict, iterations: list[int]) -> dict:
    """The CLTS pmf over t at the given iterations and the beta1 / lr schedules over the whole run,
    from the trainer's own sampler and schedule objects (what the run will use)."""
    from ..diffusion import Diffusion
    from ..training.lr import optimizer_schedule
    from ..training.timesteps import make_sampler

    diffusion = Diffusion.from_config(config["diffusion"])
    sampler = make_sampler(config["timesteps"], diffusion, config["steps"])
    schedule = optimizer_schedule(
        config["momentum"], config["lr"], config["beta1"], config["beta2"], config.get("lr_schedule")
    )
    its = np.unique(np.linspace(0, config["steps"] - 1, min(config["steps"], 400)).astype(int))
    hyper = [schedule.at(int(i), config["steps"]) for i in its]
    return {
        "t": np.arange(diffusion.T),
        "pmf": {int(i): sampler.pmf(int(i)).numpy() for i in iterations},
        "iterations": its,
        "beta1": np.array([h["betas"][0] for h in hyper]),
        "lr": np.array([h["lr"] for h in hyper]),
    }


def measure_steps_per_s(config: dict, steps: int = 3, device="cpu") -> float:
    """Training steps per second of `config` on this machine, timed in-process after one warm-up step."""
    import torch

    from ..training.trainer import Trainer

    trainer = Trainer(train_config.TrainConfig.from_dict(config), runs.REPO_ROOT, device)
    step_fn = trainer.dm_step if config["kind"] == "dm" else trainer.gan_step
    batches = trainer.dataset.batches(config["batch_size"], 0)
    step_fn(next(batches).to(trainer.device), 1)
    t0 = time.perf_counter()
    for k in range(steps):
        step_fn(next(batches).to(trainer.device), k + 2)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def run_config(name: str, root=None) -> dict | None:
    """The resolved config a run was launched with."""
    try:
        return json.loads((runs.run_dir(name, root) / "request.json").read_text())
    except (OSError, ValueError):
        return None


def same_setup(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in ("kind", "dataset", "arch", "batch_size"))


def hours_minutes(seconds: float | None) -> str:
    """h:mm (minutes rounded up, so a run about to finish shows 0:01, not 0:00); '' for none."""
    if seconds is None:
        return ""
    minutes = int(-(-seconds // 60))
    return f"{minutes // 60}:{minutes % 60:02d}"


def table_row(st: runs.RunStatus, metrics: RunMetrics | None) -> dict:
    """One line of the run table; numbers come straight from the run's database."""
    rate = eta = fd = None
    fd_name = None
    if metrics is not None:
        steps, _, walls = metrics.series("loss")
        if st.state != "queued":  # the current (or last) process's speed; ETA only while it runs
            rate, eta = rate_and_eta(steps, walls, st.total_steps, since=st.started)
            eta = eta if st.state == "running" else None
        fd_name = eval_metric(metrics.names())
        fd = metrics.latest(fd_name)[1] if fd_name else None
    return {
        "run": st.name,
        "group": st.group or "",
        "preset": st.preset or "",
        "status": st.state,
        "step": st.step,
        "of": st.total_steps,
        "progress": min(1.0, st.step / st.total_steps) if st.total_steps else None,
        "steps/s": None if rate is None else round(rate, 2),
        "ETA (h:mm)": hours_minutes(eta),
        "latest FD/FID": fd,
        "metric": metric_label(fd_name, short=True) if fd_name else "",
        "device": st.device or "",
        "note": st.reason or "",
    }


def checkpoint_files(name: str, root=None) -> dict[int, Path]:
    """Saved checkpoints of a run by step."""
    path = runs.run_dir(name, root)
    return {s: path / runs.RUN / "checkpoints" / f"step{s:07d}.safetensors" for s in runs.checkpoint_steps(path)}


POINTS_PER_IMAGE = 16  # a scatter of 2-D points draws this many times the samples an image grid does


def sample_count(points: bool, n: int = 16) -> int:
    """How many samples `sample_image` draws: n images, or n * POINTS_PER_IMAGE 2-D points."""
    return n * POINTS_PER_IMAGE if points else n


def sample_image(checkpoint: Path, n: int = 16, seed: int = 0):
    """(image, samples drawn): a grid (images) or scatter (2-D points) of DDIM samples (DDIM_STEPS) from a
    checkpoint's EMA weights."""
    from .. import checkpoints, sampling
    from ..plots import png

    bundle = checkpoints.load(checkpoint)
    points = len(sampling.sample_shape(bundle)) == 1
    count = sample_count(points, n)
    samples = sampling.generate(bundle, count, seed, sampler="ddim", steps=DDIM_STEPS)
    return (png.scatter_image(samples) if points else png.grid_image(samples, scale=4)), count
