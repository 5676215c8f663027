"""The rules of a DM's diffusion config and a GAN's loss name, without PyTorch.

`Diffusion` (diffusion.py) and `gan.generator_loss` apply these rules when they
build; the run manager (`runs start`, `sweep`) applies the same rules to a
queued run's config without importing PyTorch, so queueing stays fast. Only
numpy is needed (the betas of a schedule are checked by computing them).
"""

from __future__ import annotations

import math

import numpy as np

from . import budgets
from .errors import DstabError, require

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "x0")
# Diffusion's fields and their defaults (diffusion.Diffusion takes its defaults from here)
DIFFUSION_DEFAULTS = {
    "schedule": "linear",
    "T": 1000,
    "prediction": "eps",
    "learn_sigma": False,
    "fixed_variance": "small",
    "clip_denoised": None,
    "clip_range": 1.0,
}
DDIM_STEPS = 50  # dstab's DDIM step count wherever none is given (sampling, evaluations, the trajectory view)
GENERATOR_LOSSES = ("non-saturating", "saturating")  # gan.G_LOSSES implements them


def betas_for(schedule: str, T: int) -> np.ndarray:
    """float64 betas of length T.

    linear: Ho et al. 2020's 1e-4..0.02 at T=1000, scaled by 1000/T so that any
    T spans the same total noise (improved-diffusion's convention).
    cosine: Nichol & Dhariwal 2021, alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2),
    s = 0.008, betas clipped at 0.999.
    """
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise DstabError(f"the number of diffusion steps T must be an integer >= 1, got {T!r}")
    budgets.check_count(T, "DSTAB_MAX_TIMESTEPS", "the number of diffusion steps T")
    if schedule == "linear":
        if T < 21:
            raise DstabError(
                f"the linear schedule needs T >= 21 (its betas exceed 1 below that), got T={T}; use cosine"
            )
        scale = 1000.0 / T
        return np.linspace(scale * 1e-4, scale * 0.02, T, dtype=np.float64)
    if schedule == "cosine":
        steps = np.arange(T + 1, dtype=np.float64) / T
        abar = np.cos((steps + 0.008) / 1.008 * math.pi / 2) ** 2
        return np.minimum(1.0 - abar[1:] / abar[:-1], 0.999)
    raise DstabError(f"unknown noise schedule {schedule!r}; choose one of {list(SCHEDULES)}")


def check_fields(prediction, fixed_variance, clip_denoised, clip_range) -> None:
    require(prediction in PREDICTIONS, f"unknown prediction {prediction!r}; choose one of {list(PREDICTIONS)}")
    require(fixed_variance in ("small", "large"), "fixed_variance must be 'small' or 'large'")
    require(clip_denoised in (None, True, False), "clip_denoised must be true, false or null")
    require(
        isinstance(clip_range, (int, float)) and clip_range > 0,
        f"clip_range must be a positive number, got {clip_range!r}",
    )


def check_keys(cfg) -> None:
    require(isinstance(cfg, dict), f"the diffusion config must be a mapping of options, got {type(cfg).__name__}")
    unknown = set(cfg) - set(DIFFUSION_DEFAULTS)
    require(not unknown, f"unknown diffusion options {sorted(unknown)}")


def check_diffusion(cfg) -> int:
    """Refuse what `Diffusion.from_config(cfg)` would refuse, without building it; returns T."""
    check_keys(cfg)
    full = {**DIFFUSION_DEFAULTS, **cfg}
    check_fields(full["prediction"], full["fixed_variance"], full["clip_denoised"], full["clip_range"])
    betas_for(full["schedule"], full["T"])
    return int(full["T"])


def check_generator_loss(name) -> None:
    if name not in GENERATOR_LOSSES:
        raise DstabError(f"unknown generator loss {name!r}; choose one of {sorted(GENERATOR_LOSSES)}")


def check_timesteps(timesteps, T: int) -> list[int]:
    """The timesteps a DM of T steps can be probed at: at least one, each an integer in 0..T-1."""
    ts = [timesteps] if isinstance(timesteps, int) else list(timesteps)
    require(ts, "give at least one timestep")
    for t in ts:
        require(isinstance(t, int) and 0 <= t < T, f"timestep {t!r} is outside 0..{T - 1}; give integers in that range")
    return ts
