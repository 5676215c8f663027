"""TrainConfig, its presets, config files and `--set key=value` overrides.

A resolved config is a plain dict of TrainConfig's fields; `resolve()` builds
it from (preset | file) + overrides, and `TrainConfig.from_dict` validates it
completely (timestep sampler and momentum schedule included) before anything
touches the disk.

Importing this module does not import PyTorch. Validation has two levels:
`check_options()` applies every rule that needs no network (types, ranges,
schedules, the diffusion config, sampler options, GAN loss names): what the
run manager (`runs start`, `sweep`) checks, torch-free, before it queues a
run. `validate()` adds what needs the network built on PyTorch's meta device
(the parameter budget, DSTAB_MAX_PARAMS) and is what the trainer runs before
it writes anything; a queued run refused there ends 'failed' with the reason.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomllib

from .. import budgets, modelconfig, paper
from ..errors import DstabError, require
from ..errors import is_int as _is_int
from ..errors import is_number as _is_num
from ..metricnames import SAMPLERS, check_fid_samples
from .lr import optimizer_schedule
from .sampler_options import clts_settings, sampler_options, second_moment_settings

NOISE_PAIRINGS = ("independent", "immiscible")


@dataclass
class TrainConfig:
    kind: str = "dm"  # "dm" or "gan"
    dataset: str = "digits"
    arch: dict = field(default_factory=lambda: {"arch": "unet"})  # gan: {"generator":…, "discriminator":…}
    diffusion: dict = field(default_factory=lambda: {"schedule": "linear", "T": 1000, "prediction": "eps"})
    gan_loss: str = "non-saturating"
    steps: int = 1000
    batch_size: int = 128  # the global batch; DDP splits it across processes
    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float | None = 1.0
    ema_rate: float | None = 0.999  # None: no EMA (the classic DCGAN recipe)
    seed: int = 0  # weight initialisation
    data_seed: int = 0  # data order, timesteps, noise, latents
    save_steps: list[int] = field(default_factory=list)  # the final step is always saved
    storage_dtype: str = "float32"
    log_every: int = 50
    # timestep sampler, see timesteps.make_sampler, e.g. {"name": "clts", "target_frac": 0.2}
    timesteps: dict = field(default_factory=lambda: {"name": "uniform"})
    # Adam beta1 / lr schedule, see momentum.make_schedule, e.g. {"name": "md-lrc", "floor": 0.4}
    momentum: dict = field(default_factory=lambda: {"name": "constant"})
    # learning-rate factor over the run, see lr.make_lr_schedule, e.g. {"name": "cosine", "warmup": 100}
    lr_schedule: dict = field(default_factory=lambda: {"name": "constant"})
    # DM noise per batch: "independent" draws, or "immiscible" (noise_pairing.immiscible: assigned to the images)
    noise_pairing: str = "independent"
    checkpoint_every: int | None = None  # periodic checkpoint + resume state (run directories)
    eval_every: int | None = None  # FD/FID of EMA samples every N steps and at the end (run directories)
    eval_samples: int = 500
    eval_sampler_steps: int = modelconfig.DDIM_STEPS  # DDIM steps (eta 0) for DM samples; all T for "ddpm"
    eval_sampler: str = "ddim"  # ddim (eta 0) | ddpm (ancestral over all T steps, improved-diffusion's FIDs)
    eval_metric: str = "auto"  # auto | fd_local | fd_points | fid, see analysis.fid
    eval_seed: int = 0  # evaluation noise: the same seeds at every evaluation of every run
    eval_seeds: int = 1  # metrics averaged over seeds eval_seed .. eval_seed + eval_seeds - 1
    eval_repeat_every: int | None = None  # every N steps evaluate again with the next seeds: the metric's noise
    amp: str = "auto"  # auto: bf16 autocast on CUDA, none on CPU; "bf16" or "off" to force

    def check_options(self) -> TrainConfig:
        """Every rule that needs no PyTorch; DstabError naming the first bad option."""
        require(self.kind in ("dm", "gan"), f"unknown model kind {self.kind!r}; choose 'dm' or 'gan'")
        require(_is_int(self.steps) and self.steps >= 1, f"steps must be a positive integer, got {self.steps!r}")
        require(_is_int(self.batch_size) and self.batch_size >= 1, f"batch_size must be > 0, got {self.batch_size!r}")
        budgets.check_count(self.batch_size, "DSTAB_MAX_BATCH", "batch_size")
        budgets.check_count(self.eval_samples, "DSTAB_MAX_SAMPLES", "eval_samples")
        require(_is_num(self.lr) and self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(_is_num(self.beta1) and _is_num(self.beta2), "Adam betas must be numbers")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "Adam betas must lie in [0, 1)")
        ema, clip = self.ema_rate, self.grad_clip
        require(ema is None or (_is_num(ema) and 0 < ema < 1), "ema_rate must lie in (0, 1) or be null")
        require(clip is None or (_is_num(clip) and clip > 0), "grad_clip must be > 0 or null")
        require(
            isinstance(self.save_steps, list) and all(_is_int(s) for s in self.save_steps),
            f"save_steps must be a list of integers, got {self.save_steps!r}",
        )
        require(all(0 < s <= self.steps for s in self.save_steps), "save_steps must lie in [1, steps]")
        require(self.storage_dtype in ("float32", "float16"), "storage_dtype must be float32 or float16")
        require(_is_int(self.log_every) and self.log_every >= 1, "log_every must be a positive integer")
        for name in ("checkpoint_every", "eval_every", "eval_repeat_every"):
            v = getattr(self, name)
            require(v is None or (_is_int(v) and v >= 1), f"{name} must be a positive integer or null, got {v!r}")
        require(_is_int(self.eval_samples) and self.eval_samples >= 2, "eval_samples must be an integer >= 2")
        require(_is_int(self.eval_seed), f"eval_seed must be an integer, got {self.eval_seed!r}")
        require(_is_int(self.eval_seeds) and self.eval_seeds >= 1, f"eval_seeds must be >= 1, got {self.eval_seeds!r}")
        metrics = ("auto", "fd_local", "fd_points", "fid")
        require(self.eval_metric in metrics, f"eval_metric must be one of {metrics}, got {self.eval_metric!r}")
        require(self.amp in ("auto", "bf16", "off"), f"amp must be auto, bf16 or off, got {self.amp!r}")
        require(self.eval_sampler in SAMPLERS, f"eval_sampler must be one of {SAMPLERS}, got {self.eval_sampler!r}")
        if self.eval_metric == "fid" and self.eval_every:
            check_fid_samples(self.eval_samples)
        optimizer_schedule(self.momentum, self.lr, self.beta1, self.beta2, self.lr_schedule)
        require(
            self.noise_pairing in NOISE_PAIRINGS,
            f"noise_pairing must be one of {NOISE_PAIRINGS}, got {self.noise_pairing!r}",
        )
        if self.kind == "dm":
            require(isinstance(self.arch, dict), f"arch must be a mapping of options, got {self.arch!r}")
            T = modelconfig.check_diffusion(self.diffusion)
            require(1 <= self.eval_sampler_steps <= T, f"eval_sampler_steps must lie in [1, T={T}]")
            require(
                self.eval_sampler != "ddpm" or self.eval_sampler_steps == T,
                f"eval_sampler ddpm runs all T = {T} steps; set eval_sampler_steps={T} (or use ddim)",
            )
            sampler_options(self.timesteps, T, self.steps)
        else:
            require(
                isinstance(self.arch, dict) and set(self.arch) == {"generator", "discriminator"},
                "a GAN arch needs 'generator' and 'discriminator' configs",
            )
            modelconfig.check_generator_loss(self.gan_loss)
            require(self.timesteps.get("name", "uniform") == "uniform", "timestep samplers apply to DMs only")
            require(self.noise_pairing == "independent", "noise_pairing applies to DMs only")
        return self

    def validate(self) -> TrainConfig:
        """`check_options()`, then the networks' parameter counts against the budget (a meta-device build:
        PyTorch is imported here)."""
        from .. import sizing

        self.check_options()
        if self.kind == "dm":
            sizing.checked_params(self.arch, "arch")
        else:
            for role, sub in self.arch.items():
                sizing.checked_params(sub, f"arch.{role}")
        return self

    @classmethod
    def from_dict(cls, d: dict, networks: bool = True) -> TrainConfig:
        """The config of `d`, validated: fully, or with `networks=False` without PyTorch (`check_options`)."""
        require(isinstance(d, dict), "a training config must be a mapping of option names to values")
        unknown = set(d) - set(cls.__dataclass_fields__)
        require(not unknown, f"unknown training options {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        cfg = cls(**copy.deepcopy(d))
        return cfg.validate() if networks else cfg.check_options()

    def to_dict(self) -> dict:
        return asdict(self)


DIGITS_UNET = {
    "arch": "unet",
    "image_size": 8,
    "in_channels": 1,
    "model_channels": 24,
    "norm_groups": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [4],
}

# The paper's recipe and its peers on the zoo's digits UNet, with the paper's values (dstab/paper.py):
# beta0 for MD/MDLRC (Sec. 4.3) and its floor; CLTS's target at its share of training (mu and sigma are
# the sampler's paper defaults).
BASE = {
    "kind": "dm",
    "dataset": "digits",
    "arch": DIGITS_UNET,
    "diffusion": {"schedule": "linear", "T": 1000, "prediction": "eps"},
    "steps": 3000,
    "batch_size": 64,
    "lr": 1e-3,
    "beta1": 0.9,
    "checkpoint_every": 500,
    "eval_every": 500,
}
CLTS = {"name": "clts", "target_frac": paper.CLTS_TARGET_FRACTION}
PRESETS = {
    "baseline": {},
    "md": {"beta1": paper.BETA0, "momentum": {"name": "md"}},
    "md-lrc": {"beta1": paper.BETA0, "momentum": {"name": "md-lrc"}},
    "mdlrc-clts": {"beta1": paper.BETA0, "momentum": {"name": "md-lrc"}, "timesteps": CLTS},
    "lrc-only": {"beta1": paper.BETA0, "momentum": {"name": "lrc"}},  # control: MDLRC's lr decay, constant beta1
    # control: Adam's beta1 0.9 held constant, lr exactly MDLRC's curve (the paper's beta0 and floor)
    "lr-matched": {"beta1": 0.9, "lr_schedule": {"name": "mdlrc", "beta0": paper.BETA0, "floor": paper.FLOOR}},
    "cosine": {"lr_schedule": {"name": "cosine"}},  # a baseline with cosine lr decay to 0
    "clts": {"timesteps": CLTS},
    "min-snr": {"timesteps": {"name": "min-snr", "gamma": 5.0}},  # Hang et al. 2023
    "p2": {"timesteps": {"name": "p2", "k": 1.0, "gamma": 1.0}},  # Choi et al. 2022
    "loss-second-moment": {"timesteps": {"name": "loss-second-moment"}},  # Nichol & Dhariwal 2021
    # the rules the field compares with today (timestep_rules; defaults in sampler_options.RULE_DEFAULTS)
    "debias": {"timesteps": {"name": "debias"}},  # Yu et al., arXiv 2310.08442
    "lognormal": {"timesteps": {"name": "lognormal"}},  # EDM's P(t), unit weights (Karras et al. 2022)
    "edm": {"timesteps": {"name": "lognormal", "edm_weight": True}},  # EDM's P(t) and its loss weight
    "logit-normal": {"timesteps": {"name": "logit-normal"}},  # SD3, (m, s) = (0, 1) (Esser et al. 2024)
    "sd3-mode": {"timesteps": {"name": "mode"}},  # SD3's mode sampling, scale 1.29
    "laplace": {"timesteps": {"name": "laplace"}},  # Hang et al., arXiv 2407.03297
    "speed": {"timesteps": {"name": "speed"}},  # Wang et al., arXiv 2405.17403
    "immiscible": {"noise_pairing": "immiscible"},  # Li et al., arXiv 2406.12303
}


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise DstabError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return {**copy.deepcopy(BASE), **copy.deepcopy(PRESETS[name])}


def read_config_file(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DstabError(f"config file {path} does not exist")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DstabError(f"config file {path} is not UTF-8 text; give a .json, .toml or .yaml file") from None
    try:
        if path.suffix == ".json":
            out = json.loads(text)
        elif path.suffix == ".toml":
            out = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            out = yaml.safe_load(text)
        else:
            raise DstabError(f"config file {path}: unknown format {path.suffix!r}; use .json, .toml or .yaml")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DstabError(f"config file {path} cannot be parsed: {exc}") from None
    except Exception as exc:  # yaml's errors, when that branch ran
        if type(exc).__module__.startswith("yaml"):
            raise DstabError(f"config file {path} cannot be parsed: {str(exc).splitlines()[0]}") from None
        raise
    require(isinstance(out, dict), f"config file {path} must hold a mapping of option names to values")
    return out


def parse_override(text: str) -> tuple[list[str], object]:
    """'timesteps.target_iter=500' -> (['timesteps', 'target_iter'], 500); values are JSON, else strings."""
    key, sep, raw = text.partition("=")
    require(bool(sep) and bool(key.strip()), f"--set expects key=value, got {text!r}")
    return key.strip().split("."), parse_value(raw)


def parse_value(raw: str):
    """An option's value as typed: JSON, else the string itself (stripped). An integer written in
    exponent form is an integer (1e4 steps, 1e9 channels), as a user means it; 1e-3 and 2.5e3 stay floats."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw.strip()
    if isinstance(value, float) and value.is_integer() and re.fullmatch(r"\s*[+-]?\d+[eE]\+?\d+\s*", raw):
        return int(value)
    return value


def apply_override(config: dict, path: list[str], value) -> None:
    node = config
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        require(isinstance(child, dict), f"--set {'.'.join(path)}: {part!r} is not a nested option")
        node = child
    node[path[-1]] = value


def resolve(
    preset_name: str | None = None, config_file: Path | None = None, overrides: list[str] = (), networks: bool = True
) -> dict:
    """The full config dict: TrainConfig defaults < preset (or the file's "preset" key) < file < --set;
    `networks=False` validates it without PyTorch (see `TrainConfig.check_options`)."""
    from_file = read_config_file(config_file) if config_file else {}
    name = preset_name or from_file.pop("preset", None)
    out = asdict(TrainConfig())
    if name:
        out.update(preset(name))
    out.update(from_file)
    for text in overrides:
        apply_override(out, *parse_override(text))
    return TrainConfig.from_dict(out, networks).to_dict()


def _whole(x):
    return int(x) if float(x).is_integer() else x


def stored(config: dict) -> dict:
    """`config` as a run stores it (request.json, config.json), whatever launched it (a preset, a file, the
    page's form, a sweep): every option in one spelling. A DM's timestep sampler has each option written
    out, its defaults included; CLTS's target is `target_iter` (a `target_frac` becomes target_frac x steps,
    exactly what the sampler computes from it) beside its mu and sigma (the paper's 0.3 T and T unless
    given). Idempotent; a stored config trains exactly as the one it came from."""
    out = copy.deepcopy(config)
    if out.get("kind", "dm") != "dm":
        return out
    name, opts = sampler_options(out["timesteps"], out["diffusion"]["T"], out["steps"])
    if name == "clts":
        mu, sigma, target = clts_settings(out["diffusion"]["T"], **opts)
        opts = {"mu": mu, "sigma": sigma, "target_iter": _whole(target)}
    elif name == "loss-second-moment":
        history, uniform_prob = second_moment_settings(**opts)
        opts = {"history": history, "uniform_prob": uniform_prob}
    out["timesteps"] = {"name": name, **opts}
    return out
