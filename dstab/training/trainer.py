"""The trainer: one loop for diffusion models and GANs.

Deterministic given its seeds: `seed` initialises the weights, `data_seed`
drives the data order, timesteps, diffusion noise and GAN latents, so runs
that differ only in `seed` see exactly the same batches. The optimiser's
hyper-parameters come from a schedule (pure function of the step) and the
timesteps from a TimestepSampler, the two seams the CLTS/MDLRC work extends.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import checkpoints, data, models
from ..diffusion import Diffusion
from ..errors import DstabError, require
from ..gan import d_loss_bce, generator_loss
from .momentum import ConstantSchedule, apply
from .timesteps import UniformSampler


@dataclass
class TrainConfig:
    kind: str = "dm"  # "dm" or "gan"
    dataset: str = "digits"
    arch: dict = field(default_factory=lambda: {"arch": "unet"})  # gan: {"generator":…, "discriminator":…}
    diffusion: dict = field(default_factory=lambda: {"schedule": "linear", "T": 1000, "prediction": "eps"})
    gan_loss: str = "non-saturating"
    steps: int = 1000
    batch_size: int = 128
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

    def validate(self) -> TrainConfig:
        require(self.kind in ("dm", "gan"), f"unknown model kind {self.kind!r}; choose 'dm' or 'gan'")
        require(
            isinstance(self.steps, int) and self.steps >= 1, f"steps must be a positive integer, got {self.steps!r}"
        )
        require(self.batch_size >= 1, f"batch_size must be positive, got {self.batch_size}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "Adam betas must lie in [0, 1)")
        require(self.ema_rate is None or 0 < self.ema_rate < 1, "ema_rate must lie in (0, 1) or be null")
        require(all(0 < s <= self.steps for s in self.save_steps), "save_steps must lie in [1, steps]")
        require(self.storage_dtype in ("float32", "float16"), "storage_dtype must be float32 or float16")
        if self.kind == "dm":
            models.normalise(self.arch)
            Diffusion.from_config(self.diffusion)
        else:
            require(
                set(self.arch) == {"generator", "discriminator"},
                "a GAN arch needs 'generator' and 'discriminator' configs",
            )
            for sub in self.arch.values():
                models.normalise(sub)
            generator_loss(self.gan_loss)
        return self

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        require(not unknown, f"unknown training options {sorted(unknown)}")
        return cls(**d).validate()


class EMA:
    """Exponential moving average with warm-up: the rate at update k is
    min(rate, (1 + k) / (10 + k)), so early averages are not dominated by the init."""

    def __init__(self, module: torch.nn.Module, rate: float):
        self.rate = rate
        self.updates = 0
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        r = min(self.rate, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.module.parameters(), module.parameters()):
            e.lerp_(p.detach(), 1.0 - r)
        for e, b in zip(self.module.buffers(), module.buffers()):
            e.copy_(b)
        self.updates += 1


def _init(config: dict, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.build(config)


def _grad_step(optimizer, params, loss, clip) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip else math.inf)
    optimizer.step()
    return float(norm)


class Trainer:
    def __init__(
        self, config: TrainConfig, out_dir: str | Path, device="cpu", log: Callable[[dict], None] | None = None
    ):
        self.cfg = config.validate()
        self.out_dir = Path(out_dir)
        self.device = torch.device(device)
        self.log = log or (lambda row: None)
        self.dataset = data.load(config.dataset, seed=config.data_seed)
        self.gen = torch.Generator().manual_seed(config.data_seed + 1)
        self.schedule = ConstantSchedule(config.lr, config.beta1, config.beta2)
        if config.kind == "dm":
            self.net = _init(config.arch, config.seed).to(self.device).train()
            self.diffusion = Diffusion.from_config(config.diffusion)
            self.sampler = UniformSampler(self.diffusion.T)
            self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
            self.ema = EMA(self.net, config.ema_rate) if config.ema_rate else None
        else:
            self.G = _init(config.arch["generator"], config.seed).to(self.device).train()
            self.D = _init(config.arch["discriminator"], config.seed + 10_000).to(self.device).train()
            self.g_loss = generator_loss(config.gan_loss)
            betas = (config.beta1, config.beta2)
            self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)
            self.ema = EMA(self.G, config.ema_rate) if config.ema_rate else None
        self._check_shapes()

    def _check_shapes(self) -> None:
        shape = self.dataset.sample_shape
        if self.cfg.kind == "dm":
            a = models.normalise(self.cfg.arch)
            want = (a["in_channels"], a["image_size"], a["image_size"]) if a["arch"] == "unet" else (a["data_dim"],)
        else:
            a = models.normalise(self.cfg.arch["generator"])
            want = (
                (a["channels"], a["image_size"], a["image_size"]) if a["arch"].startswith("dcgan") else (a["data_dim"],)
            )
        if tuple(want) != tuple(shape):
            raise DstabError(
                f"the model expects samples of shape {tuple(want)} but dataset {self.cfg.dataset!r} has {tuple(shape)}"
            )

    def _randn(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen).to(self.device)

    def dm_step(self, x0: torch.Tensor, step: int) -> dict:
        t, w = self.sampler.sample(x0.shape[0], step, self.gen, self.device)
        terms = self.diffusion.loss_terms(self.net, x0, t, self._randn(x0.shape))
        apply(self.opt, self.schedule.at(step, self.cfg.steps))
        norm = _grad_step(self.opt, self.net.parameters(), (terms * w).mean(), self.cfg.grad_clip)
        self.sampler.observe(t, terms.detach())
        if self.ema:
            self.ema.update(self.net)
        return {"loss": float(terms.detach().mean()), "grad_norm": norm}

    def gan_step(self, real: torch.Tensor, step: int) -> dict:
        hyper = self.schedule.at(step, self.cfg.steps)
        apply(self.opt_d, hyper)
        apply(self.opt_g, hyper)
        z = self._randn((real.shape[0], *self.G.latent_shape))
        fake = self.G(z)
        d_loss = d_loss_bce(self.D(real), self.D(fake.detach())).mean()
        _grad_step(self.opt_d, self.D.parameters(), d_loss, self.cfg.grad_clip)
        g_loss = self.g_loss(self.D(fake)).mean()
        _grad_step(self.opt_g, self.G.parameters(), g_loss, self.cfg.grad_clip)
        if self.ema:
            self.ema.update(self.G)
        return {"loss": float(g_loss.detach()), "d_loss": float(d_loss.detach())}

    def header(self, step: int) -> dict:
        c = self.cfg
        if c.kind == "dm":
            extra = {"diffusion": self.diffusion.to_config(), "ema": bool(self.ema)}
            arch = models.normalise(c.arch)
        else:
            extra = {"gan": {"loss": c.gan_loss, "latent_shape": list(self.G.latent_shape)}, "ema": bool(self.ema)}
            arch = {k: models.normalise(v) for k, v in c.arch.items()}
        return checkpoints.make_header(c.kind, arch, c.dataset, step, c.seed, train_config=asdict(c), **extra)

    def eval_modules(self) -> dict[str, torch.nn.Module]:
        if self.cfg.kind == "dm":
            return {"model": self.ema.module if self.ema else self.net}
        return {"generator": self.ema.module if self.ema else self.G, "discriminator": self.D}

    def save(self, step: int) -> Path:
        path = self.out_dir / f"step{step:07d}.safetensors"
        dtype = getattr(torch, self.cfg.storage_dtype)
        checkpoints.save(path, self.header(step), self.eval_modules(), dtype=dtype)
        return path

    def run(self) -> dict:
        c = self.cfg
        step_fn = self.dm_step if c.kind == "dm" else self.gan_step
        saves = sorted(set(c.save_steps) | {c.steps})
        batches = self.dataset.batches(c.batch_size, c.data_seed)
        t0, history, saved = time.perf_counter(), [], {}
        for step in range(1, c.steps + 1):
            row = step_fn(next(batches).to(self.device), step)
            if not all(math.isfinite(v) for v in row.values()):
                raise DstabError(f"training diverged at step {step} ({row}); lower the learning rate")
            history.append(row["loss"])
            if step % c.log_every == 0 or step == c.steps:
                self.log({"step": step, **row, "wall": time.perf_counter() - t0})
            if step in saves:
                saved[step] = str(self.save(step))
        window = max(1, min(100, c.steps // 10))
        return {
            "checkpoints": saved,
            "wall_time_s": time.perf_counter() - t0,
            "loss_first": sum(history[:window]) / window,
            "loss_last": sum(history[-window:]) / window,
        }


def train(config: TrainConfig | dict, out_dir, device="cpu", log=None) -> dict:
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    result = Trainer(cfg, out_dir, device, log).run()
    (Path(out_dir) / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return result
