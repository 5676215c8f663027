"""The paper's training values, and where a config departs from them.

Paper Sec. 4.3 / 5: Adam lr 1e-4, batch 128, beta0 = 0.8 for MD / MDLRC,
beta1 floor 0.4, CLTS mu = 0.3 T and sigma = T, EMA rate 0.9999.

The EMA is scaled to the run length: 0.9999 averages over ~1 / (1 - 0.9999)
= 10,000 iterations, 2% of the paper's 500k-iteration CIFAR-10 runs; a
3,000-iteration run with 0.9999 would report an average dominated by its
initialisation. `paper_ema(steps)` keeps that 2% horizon:
rate = 1 - 1 / (0.02 steps), never above 0.9999 and, for runs under 100
iterations, 0.5 (a horizon of at least 2 iterations).
"""

from __future__ import annotations

import copy

from .momentum import BETA1_FLOOR
from .sampler_options import CLTS_MU_FRACTION, CLTS_SIGMA_FRACTION

PAPER_LR = 1e-4
PAPER_BATCH = 128
PAPER_BETA0 = 0.8
PAPER_FLOOR = BETA1_FLOOR
PAPER_EMA = 0.9999
PAPER_EMA_HORIZON = 0.02  # 10,000 of 500,000 iterations


def paper_ema(steps: int) -> float:
    return min(PAPER_EMA, 1.0 - 1.0 / max(2.0, PAPER_EMA_HORIZON * steps))


def decays_momentum(config: dict) -> bool:
    return config.get("momentum", {}).get("name", "constant") != "constant"


def to_paper(config: dict) -> dict:
    """`config` with the paper's lr, batch, EMA (scaled), beta0, floor and CLTS mu / sigma; the
    variant (which schedules, which sampler) and everything else stay."""
    out = copy.deepcopy(config)
    out.update(lr=PAPER_LR, batch_size=PAPER_BATCH, ema_rate=paper_ema(out["steps"]))
    if decays_momentum(out):
        out["beta1"] = PAPER_BETA0
        out["momentum"] = {**out["momentum"], "floor": PAPER_FLOOR}
    if out.get("lr_schedule", {}).get("name") == "mdlrc":
        out["lr_schedule"] = {**out["lr_schedule"], "beta0": PAPER_BETA0, "floor": PAPER_FLOOR}
    if out.get("timesteps", {}).get("name") == "clts":
        out["timesteps"] = {k: v for k, v in out["timesteps"].items() if k not in ("mu", "sigma")}
    return out


def differences(config: dict) -> list[str]:
    """Where `config` departs from the paper's values, e.g. ['lr 0.001 (paper 0.0001)', ...]."""
    out = []
    if config["lr"] != PAPER_LR:
        out.append(f"lr {config['lr']:g} (paper {PAPER_LR:g})")
    if config["batch_size"] != PAPER_BATCH:
        out.append(f"batch {config['batch_size']} (paper {PAPER_BATCH})")
    ema, want = config.get("ema_rate"), paper_ema(config["steps"])
    if ema is None or abs(ema - want) > 1e-12:
        out.append(f"EMA {ema} (paper {PAPER_EMA}, i.e. {want:.4g} scaled to {config['steps']} iterations)")
    if decays_momentum(config):
        if config["beta1"] != PAPER_BETA0:
            out.append(f"beta0 {config['beta1']:g} (paper {PAPER_BETA0})")
        if config["momentum"].get("floor", PAPER_FLOOR) != PAPER_FLOOR:
            out.append(f"floor {config['momentum']['floor']:g} (paper {PAPER_FLOOR})")
    lr_schedule = config.get("lr_schedule", {})
    if lr_schedule.get("name") == "mdlrc":
        for key, want_v in (("beta0", PAPER_BETA0), ("floor", PAPER_FLOOR)):
            if lr_schedule.get(key, want_v) != want_v:
                out.append(f"lr-matched {key} {lr_schedule[key]:g} (paper {want_v})")
    timesteps = config.get("timesteps", {})
    if timesteps.get("name") == "clts":
        T = config["diffusion"]["T"]
        for key, want_v in (("mu", CLTS_MU_FRACTION * T), ("sigma", CLTS_SIGMA_FRACTION * T)):
            if key in timesteps and float(timesteps[key]) != want_v:
                out.append(f"CLTS {key} {timesteps[key]:g} (paper {want_v:g})")
    return out
