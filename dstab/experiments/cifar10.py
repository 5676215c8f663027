"""The paper's CIFAR-10 experiment as dstab runs it: its model, its setup, and every departure of a run
from it (the numbers are dstab/paper.py's; the model is the one dstab builds for imported
improved-diffusion CIFAR-10 checkpoints, importers/openai.py).

Importing this module does not import PyTorch (the sweep's dry run stays torch-free for other
datasets); building the model's config does.
"""

from __future__ import annotations

import json

from .. import paper

DEFAULT_STEPS = paper.CIFAR10_TABLE3_ITERATIONS[0]  # Table 3's first column: a GPU-day (speedup's docstring)
EVALUATIONS = 10  # per run, every 10% of it
FID = {"eval_metric": "fid", "eval_samples": 10_000, "eval_sampler": "ddim", "eval_sampler_steps": 100}
# a 32 x 32 RGB UNet with learned sigma (the paper's model has it), small enough for a CPU: the GPU
# check's --smoke (bench/gpu_train.py) and the tests
TINY_ARCH = {
    "arch": "unet",
    "image_size": 32,
    "in_channels": 3,
    "model_channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [16],
    "norm_groups": 4,
    "learn_sigma": True,
}


def model() -> tuple[dict, dict]:
    """(arch, diffusion config) of the paper's CIFAR-10 model (PyTorch is imported here)."""
    from ..importers import openai

    flags = openai.PRESETS[paper.CIFAR10_MODEL]
    return openai.arch_from_flags(flags), openai.diffusion_from_flags(flags).to_config()


def setup(use_paper: bool = False, paper_eval: bool = False) -> dict:
    """The run's options: the paper's model and optimiser at the paper's length (`use_paper`) or the
    default one, evaluated by FID-10k with 100 DDIM steps or, with `paper_eval`, by the paper's FID."""
    arch, diffusion = model()
    steps = paper.CIFAR10_STEPS if use_paper else DEFAULT_STEPS
    every = steps // EVALUATIONS
    evaluation = dict(FID)
    if paper_eval:
        every = paper.CIFAR10_TABLE3_ITERATIONS[0]
        evaluation.update(eval_samples=paper.CIFAR10_FID_SAMPLES, eval_sampler=paper.CIFAR10_FID_SAMPLER)
        evaluation["eval_sampler_steps"] = diffusion["T"]
    return {
        "arch": arch,
        "diffusion": diffusion,
        "steps": steps,
        "batch_size": paper.BATCH,
        "lr": paper.LR,
        "ema_rate": paper.paper_ema(steps),
        "eval_every": every,
        **evaluation,
        "checkpoint_every": steps // EVALUATIONS,
        "log_every": 100,
        "timesteps.target_frac": paper.CIFAR10_CLTS_TARGET / paper.CIFAR10_STEPS,
    }


def _changed(given: dict, want: dict) -> list[str]:
    keys = sorted(k for k in set(given) | set(want) if given.get(k) != want.get(k))
    return [f"{k} {json.dumps(given.get(k))} (paper {json.dumps(want.get(k))})" for k in keys]


def differences(config: dict) -> list[str]:
    """Where a CIFAR-10 run departs from the paper's experiment beyond the optimiser's values
    (`paper.differences`): its length, model, diffusion, CLTS target and evaluation."""
    from .. import models

    arch, diffusion = model()
    out = []
    steps = config["steps"]
    if steps != paper.CIFAR10_STEPS:
        images, paper_images = steps * config["batch_size"], paper.CIFAR10_STEPS * paper.BATCH
        out.append(f"steps {steps:,} = {images:,} images (paper {paper.CIFAR10_STEPS:,} = {paper_images:,})")
    if changed := _changed(models.normalise(config["arch"]), models.normalise(arch)):
        out.append(f"model: {', '.join(changed)}")
    if changed := _changed(config["diffusion"], diffusion):
        out.append(f"diffusion: {', '.join(changed)}")
    timesteps = config.get("timesteps", {})
    if timesteps.get("name") == "clts":
        target = timesteps.get("target_iter", timesteps.get("target_frac", 0) * steps)
        if target != paper.CIFAR10_CLTS_TARGET:
            out.append(f"CLTS target {target:,.6g} (paper {paper.CIFAR10_CLTS_TARGET:,})")
    if config.get("eval_every"):
        out += _evaluation_differences(config, diffusion["T"])
    return out


def _evaluation_differences(config: dict, T: int) -> list[str]:
    metric, n = config["eval_metric"], config["eval_samples"]
    sampler, steps = config["eval_sampler"], config["eval_sampler_steps"]
    fid_k = paper.CIFAR10_FID_SAMPLES // 1000
    paper_eval = f"paper FID-{fid_k}k, {paper.CIFAR10_FID_SAMPLER.upper()} over all {T} steps"
    out = []
    if metric not in ("fid", "auto"):
        out.append(f"evaluation metric {metric} ({paper_eval})")
    if n != paper.CIFAR10_FID_SAMPLES or sampler != paper.CIFAR10_FID_SAMPLER or steps != T:
        out.append(f"evaluation {n:,} samples by {steps} {sampler.upper()} steps ({paper_eval})")
    return out


def departures(config: dict) -> list[str]:
    """Every departure of a run from the paper: its values (`paper.differences`) and, on CIFAR-10,
    from the paper's own experiment (`differences`). What dry runs and reports print."""
    out = paper.differences(config)
    return out + differences(config) if paper.is_cifar10(config) else out


def summary() -> str:
    """The paper's CIFAR-10 experiment in one line, from dstab/paper.py and the model (PyTorch)."""
    from .. import sizing

    arch, diffusion = model()
    params = sizing.checked_params(arch, "the paper's CIFAR-10 model")
    T = diffusion["T"]
    mu, sigma = paper.CLTS_MU_FRACTION * T, paper.CLTS_SIGMA_FRACTION * T
    return (
        f"paper (App. B, Table 3): improved-diffusion's CIFAR-10 UNet ({params:,} parameters, learned sigma, "
        f"L_hybrid), {diffusion['schedule']} schedule, T = {T}; Adam lr {paper.LR:g}, batch "
        f"{paper.BATCH}, beta2 {paper.BETA2}, beta1 {paper.BASELINE_BETA1} (baseline) or {paper.BETA0} decaying "
        f"to a {paper.FLOOR} floor (MD, MDLRC); EMA {paper.EMA}; CLTS mu {mu:g}, sigma {sigma:g}, target "
        f"{paper.CIFAR10_CLTS_TARGET:,}; {paper.CIFAR10_STEPS:,} iterations "
        f"({paper.CIFAR10_STEPS * paper.BATCH:,} images); FID-{paper.CIFAR10_FID_SAMPLES // 1000}k by "
        f"{paper.CIFAR10_FID_SAMPLER.upper()} over all {T} steps"
    )
