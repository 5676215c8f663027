"""The paper's values, in one module: what "Why diffusion models are stable and how to make them faster"
(ICLR 2024 submission) sets and what it reports, and where a training config departs from it.

Everything that follows the paper reads these names and nothing else spells them: the presets
(training/config.PRESETS), the schedules' defaults (momentum.BETA1_FLOOR, MDLRC's beta0, CLTS's mu and
sigma), the Training page's form (`launch_defaults`), `--paper` (`to_paper`) and what the report and
the pages quote. It imports nothing, so every layer may read it.

Set (Sec. 4.2-5): Adam lr 1e-4, batch 128, beta0 = 0.8 for MD / MDLRC, beta1 floor 0.4, beta2 0.999;
CLTS mu = 0.3 T and sigma = T, its target at ~20% of training (the ablation's optimum, ~100k of 500k
iterations); EMA rate 0.9999. The EMA is scaled to the run length: 0.9999 averages over
~1 / (1 - 0.9999) = 10,000 iterations, 2% of the paper's 500k-iteration CIFAR-10 runs; a
3,000-iteration run with 0.9999 would report an average dominated by its initialisation.
`paper_ema(steps)` keeps that 2% horizon: rate = 1 - 1 / (0.02 steps), never above 0.9999 and, for runs
under 100 iterations, 0.5 (a horizon of at least 2 iterations).

Reported: consistency (Table 1, M = 32 samples per model) and the Hessian's lambda_1 and sigma^2
(Sec. 3.2).
"""

from __future__ import annotations

import copy

LR = 1e-4
BATCH = 128
BETA0 = 0.8  # MD / MDLRC's initial beta1 (Sec. 4.3)
FLOOR = 0.4  # MD never lets beta1 fall below this (Sec. 4.3)
BETA2 = 0.999
BASELINE_BETA1 = 0.9  # Adam's default: the baseline's constant beta1 (App. B)
EMA = 0.9999
EMA_HORIZON = 0.02  # 10,000 of 500,000 iterations
CLTS_MU_FRACTION = 0.3  # CLTS's Gaussian centre mu = 0.3 T (Sec. 4.2)
CLTS_SIGMA_FRACTION = 1.0  # and its width sigma = T
CLTS_TARGET_FRACTION = 0.2  # target_iter at 20% of the run (the ablation's optimum ~100k of 500k)
EVAL_EVERY = 500  # steps between evaluations when a preset names none (dstab's, not the paper's)

CONSISTENCY_M = 32  # samples per model in Table 1
# Table 1: (dataset, DM, its C in dB, GAN, its C in dB)
TABLE1 = (
    ("CIFAR10", "Improved Diffusion", 20.14, "DCGAN", 10.48),
    ("ImageNet128", "Guided Diffusion", 17.23, "BigGAN", 8.58),
    ("ImageNet512", "U-ViT", 14.37, "BigGAN", 6.40),
)
HESSIAN = {"dm": (13.3, 37.9), "gan": (40.9, 93.9)}  # Sec. 3.2: (lambda_1, sigma^2)
SPEEDUPS = {"CIFAR10": 2.0, "ImageNet128": 2.6}  # Tables 3 and 2: iterations to the baseline's FID, ours

# The CIFAR-10 experiment (Sec. 5, Table 3, App. B); its model and diffusion are improved-diffusion's
# published CIFAR-10 model (importers/openai.PRESETS[CIFAR10_MODEL]: its UNet, cosine schedule, T = 4000)
CIFAR10_MODEL = "improved-diffusion-cifar10"
CIFAR10_STEPS = 500_000  # Table 3 reads FID at 100k, 200k, ..., 500k iterations
CIFAR10_CLTS_TARGET = 50_000  # CLTS target_iter on CIFAR-10 (Sec. 4.2): 10% of the run
CIFAR10_TABLE3_ITERATIONS = (100_000, 200_000, 300_000, 400_000, 500_000)
CIFAR10_TABLE3 = {  # FID at those iterations
    "ID": (5.40, 3.48, 3.05, 2.72, 2.60),
    "FDM": (4.91, 3.03, 2.58, 2.49, 2.43),
    "ID+ours": (4.24, 2.81, 2.46, 2.38, 2.31),
}
# The FID protocol of improved-diffusion, whose CIFAR-10 numbers Table 3's ID baseline reproduces: 50k
# samples, ancestral sampling over all T steps. The paper's text does not restate it.
CIFAR10_FID_SAMPLES = 50_000
CIFAR10_FID_SAMPLER = "ddpm"


def consistency_ranges() -> str:
    """'14-20 dB vs 6-10 dB': Table 1's DMs against its GANs (whole dB)."""
    dm, gan = [row[2] for row in TABLE1], [row[4] for row in TABLE1]
    return f"{min(dm):.0f}-{max(dm):.0f} dB vs {min(gan):.0f}-{max(gan):.0f} dB"


def speedup_range() -> str:
    """'2-2.6x': the paper's speed-ups (SPEEDUPS)."""
    ups = sorted(SPEEDUPS.values())
    return f"{ups[0]:g}-{ups[-1]:g}x"


def table1_text() -> str:
    """Table 1 in one line, from TABLE1."""
    rows = [f"{d}: {dm} {c_dm:.2f} vs {gan} {c_gan:.2f}" for d, dm, c_dm, gan, c_gan in TABLE1]
    return f"Table 1 (M = {CONSISTENCY_M}): " + "; ".join(rows) + " dB"


def hessian_text() -> str:
    """Sec. 3.2's Hessian numbers in one line, from HESSIAN."""
    (dl, dv), (gl, gv) = HESSIAN["dm"], HESSIAN["gan"]
    return f"DM lambda_1 = {dl}, sigma^2 = {dv} vs GAN lambda_1 = {gl}, sigma^2 = {gv}"


def paper_ema(steps: int) -> float:
    return min(EMA, 1.0 - 1.0 / max(2.0, EMA_HORIZON * steps))


def clts_target(steps: int) -> int | float:
    """CLTS's target_iter at the paper's share of a run of `steps` (an int when it is whole)."""
    target = CLTS_TARGET_FRACTION * steps
    return int(target) if float(target).is_integer() else target


def launch_defaults(base: dict, steps: int) -> dict:
    """The Training page's launch form's starting values for the resolved preset config `base` and a run
    of `steps`: the paper's CLTS mu, sigma and target, and MD's floor."""
    T = base["diffusion"]["T"]
    return {
        "eval_every": base["eval_every"] or EVAL_EVERY,
        "mu": CLTS_MU_FRACTION * T,
        "sigma": CLTS_SIGMA_FRACTION * T,
        "target_iter": int(CLTS_TARGET_FRACTION * steps),
        "floor": FLOOR,
    }


def is_cifar10(config: dict) -> bool:
    """Whether `config` trains on CIFAR-10, where the paper's whole run is the reference
    (experiments/cifar10.py names its other departures: length, model, CLTS target, evaluation)."""
    return str(config.get("dataset", "")).partition(":")[0] == "cifar10"


def decays_momentum(config: dict) -> bool:
    return config.get("momentum", {}).get("name", "constant") != "constant"


def to_paper(config: dict) -> dict:
    """`config` with the paper's lr, batch, EMA (scaled), beta0, floor and CLTS mu / sigma; the
    variant (which schedules, which sampler) and everything else stay."""
    out = copy.deepcopy(config)
    out.update(lr=LR, batch_size=BATCH, ema_rate=paper_ema(out["steps"]))
    if decays_momentum(out):
        out["beta1"] = BETA0
        out["momentum"] = {**out["momentum"], "floor": FLOOR}
    if out.get("lr_schedule", {}).get("name") == "mdlrc":
        out["lr_schedule"] = {**out["lr_schedule"], "beta0": BETA0, "floor": FLOOR}
    if out.get("timesteps", {}).get("name") == "clts":
        out["timesteps"] = {k: v for k, v in out["timesteps"].items() if k not in ("mu", "sigma")}
    return out


def differences(config: dict) -> list[str]:
    """Where `config` departs from the paper's values, e.g. ['lr 0.001 (paper 0.0001)', ...]."""
    out = []
    if config["lr"] != LR:
        out.append(f"lr {config['lr']:g} (paper {LR:g})")
    if config["batch_size"] != BATCH:
        out.append(f"batch {config['batch_size']} (paper {BATCH})")
    ema, want = config.get("ema_rate"), paper_ema(config["steps"])
    if is_cifar10(config):  # the paper's own run: its EMA over its 500k iterations
        if ema != EMA:
            scaled = ema is not None and abs(ema - want) <= 1e-12
            why = f": its {EMA_HORIZON:.0%} horizon over {config['steps']:,} iterations" if scaled else ""
            out.append(f"EMA {ema} (paper {EMA} over {CIFAR10_STEPS:,} iterations{why})")
    elif ema is None or abs(ema - want) > 1e-12:
        out.append(f"EMA {ema} (paper {EMA}, i.e. {want:.4g} scaled to {config['steps']} iterations)")
    if config.get("beta2", BETA2) != BETA2:
        out.append(f"Adam beta2 {config['beta2']:g} (paper {BETA2})")
    constant_lr = config.get("lr_schedule", {}).get("name", "constant") == "constant"
    if not decays_momentum(config) and constant_lr and config.get("beta1", BASELINE_BETA1) != BASELINE_BETA1:
        out.append(f"beta1 {config['beta1']:g} (paper's baseline {BASELINE_BETA1})")
    if decays_momentum(config):
        if config["beta1"] != BETA0:
            out.append(f"beta0 {config['beta1']:g} (paper {BETA0})")
        if config["momentum"].get("floor", FLOOR) != FLOOR:
            out.append(f"floor {config['momentum']['floor']:g} (paper {FLOOR})")
    lr_schedule = config.get("lr_schedule", {})
    if lr_schedule.get("name") == "mdlrc":
        for key, want_v in (("beta0", BETA0), ("floor", FLOOR)):
            if lr_schedule.get(key, want_v) != want_v:
                out.append(f"lr-matched {key} {lr_schedule[key]:g} (paper {want_v})")
    timesteps = config.get("timesteps", {})
    if timesteps.get("name") == "clts":
        T = config["diffusion"]["T"]
        for key, want_v in (("mu", CLTS_MU_FRACTION * T), ("sigma", CLTS_SIGMA_FRACTION * T)):
            if key in timesteps and float(timesteps[key]) != want_v:
                out.append(f"CLTS {key} {timesteps[key]:g} (paper {want_v:g})")
    return out
