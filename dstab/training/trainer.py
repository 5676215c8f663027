"""The trainer: one loop for diffusion models and GANs.

Deterministic given its seeds: `seed` initialises the weights, `data_seed`
drives the data order, timesteps, diffusion noise and GAN latents, so runs
that differ only in `seed` see exactly the same batches. The optimiser's
hyper-parameters come from a schedule (pure function of the iteration) and
the timesteps from a TimestepSampler. With today's defaults (uniform t,
constant Adam) the weights are bit-identical to those of the foundation's
trainer that built the zoo (tests/test_trainer_golden.py).

Under torchrun every process draws the same global batch, timesteps and noise
from the same generators and trains on its own equal shard of it; DDP averages
the gradients, so N processes follow the single-process run up to float
summation order.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from .. import checkpoints, data, distributed, models
from ..diffusion import Diffusion
from ..errors import DstabError, require
from ..gan import d_loss_bce, generator_loss
from ..sampling import arch_sample_shape
from .config import TrainConfig
from .lr import optimizer_schedule
from .momentum import apply
from .noise_pairing import immiscible
from .resume_state import save_resume_state
from .timesteps import make_sampler

__all__ = ["EMA", "TrainConfig", "Trainer", "train"]


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

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def _init(config: dict, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.build(config)


def _grad_step(optimizer, params, loss, clip) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip else math.inf)
    optimizer.step()
    return float(norm)


class Window:
    """Sums over one logging window: mean loss, per-quartile-of-t losses
    (improved-diffusion's loss_q0..q3), throughput."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.samples, self.seconds = 0, 0.0

    def add(self, name: str, total: float, count: int = 1) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + total
        self.counts[name] = self.counts.get(name, 0) + count

    def means(self) -> dict[str, float]:
        out = {k: self.sums[k] / self.counts[k] for k in sorted(self.sums)}
        if self.seconds > 0:
            out["samples_per_s"] = self.samples / self.seconds
        return out

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "counts": dict(self.counts), "samples": self.samples, "seconds": self.seconds}

    def load_state_dict(self, s: dict) -> None:
        self.sums, self.counts = dict(s["sums"]), dict(s["counts"])
        self.samples, self.seconds = int(s["samples"]), float(s["seconds"])


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        device="cpu",
        log: Callable[[dict], None] | None = None,
        ctx: distributed.Context | None = None,
    ):
        self.cfg = config.validate()
        self.out_dir = Path(out_dir)
        self.ctx = ctx or distributed.Context()
        self._check_world()
        self.device = distributed.init(self.ctx, torch.device(device))
        self.amp = config.amp == "bf16" or (config.amp == "auto" and self.device.type == "cuda")
        self.log = log or (lambda row: None)
        self.gen = torch.Generator().manual_seed(config.data_seed + 1)
        self.schedule = optimizer_schedule(config.momentum, config.lr, config.beta1, config.beta2, config.lr_schedule)
        self.step = 0  # iterations completed
        self.cpu_seconds = 0.0  # process CPU time spent in training steps, over every launch of the run
        self.on_step: Callable[[int], None] = lambda step: None  # e.g. the heartbeat's step
        self.window = Window()
        betas = (config.beta1, config.beta2)
        if config.kind == "dm":
            self.net = _init(config.arch, config.seed).to(self.device).train()
            self.diffusion = Diffusion.from_config(config.diffusion)
            self.sampler = make_sampler(config.timesteps, self.diffusion, config.steps)
            self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=betas)
            self.ema = EMA(self.net, config.ema_rate) if config.ema_rate else None
            self.model = self._wrap(self.net)
        else:
            self.G = _init(config.arch["generator"], config.seed).to(self.device).train()
            self.D = _init(config.arch["discriminator"], config.seed + 10_000).to(self.device).train()
            self.g_loss = generator_loss(config.gan_loss)
            self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)
            self.ema = EMA(self.G, config.ema_rate) if config.ema_rate else None
        # the data last: every other check (networks, schedules) has run when a dataset that is not
        # downloaded yet stops a dry run's build (`image_data.no_download`); `_init` reseeds, so the order
        # does not change any random draw
        self.dataset = data.load(config.dataset, seed=config.data_seed)
        self._check_shapes()

    def _check_world(self) -> None:
        if self.ctx.world == 1:
            return
        # GANs' BatchNorm statistics would differ per shard; the paper's method concerns DMs
        require(self.cfg.kind == "dm", "multi-process (torchrun) training supports diffusion models only")
        require(
            self.cfg.batch_size % self.ctx.world == 0,
            f"batch_size {self.cfg.batch_size} must be divisible by the {self.ctx.world} processes",
        )

    def end_distributed(self) -> None:
        """End the process group for good. `destroy_process_group` only forgets the group; the DDP
        wrapper's reducer still holds it, and a group that lives on into the interpreter's teardown
        can abort the process after its work is done (gloo's threads: "terminate called without an
        active exception", pytorch#179291). So the wrapper goes first."""
        if self.ctx.world == 1:
            return
        self.model = self.net
        gc.collect()  # a reducer kept alive by a reference cycle
        distributed.finish(self.ctx)

    def _wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        if self.ctx.world == 1:
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)

    def _check_shapes(self) -> None:
        shape = self.dataset.sample_shape
        want = arch_sample_shape(self.cfg.arch if self.cfg.kind == "dm" else self.cfg.arch["generator"])
        if tuple(want) != tuple(shape):
            raise DstabError(
                f"the model expects samples of shape {tuple(want)} but dataset {self.cfg.dataset!r} has {tuple(shape)}"
            )

    def _randn(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen).to(self.device)

    def _autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    @staticmethod
    def _hyper_row(hyper: dict) -> dict:
        return {"lr": float(hyper["lr"]), "beta1": float(hyper["betas"][0])}

    def dm_step(self, x0: torch.Tensor, step: int) -> dict:
        it = step - 1
        t, w = self.sampler.sample(x0.shape[0], it, self.gen, self.device)
        noise = self._randn(x0.shape)
        if self.cfg.noise_pairing == "immiscible":
            noise = immiscible(x0, noise)
        mine = self.ctx.shard(x0.shape[0])
        with self._autocast():
            terms = self.diffusion.training_terms(self.model, x0[mine], t[mine], noise[mine]).float()
        hyper = self.schedule.at(it, self.cfg.steps)
        apply(self.opt, hyper)
        norm = _grad_step(self.opt, self.net.parameters(), (terms * w[mine]).mean(), self.cfg.grad_clip)
        all_terms = distributed.gather(self.ctx, terms.detach())
        self.sampler.observe(t, all_terms)
        if self.ema:
            self.ema.update(self.net)
        self._add_quartiles(t, all_terms)
        return {"loss": float(all_terms.mean()), "grad_norm": norm}

    def _add_quartiles(self, t: torch.Tensor, terms: torch.Tensor) -> None:
        q = (t.cpu() * 4) // self.diffusion.T
        terms = terms.cpu().double()
        for k in range(4):
            sel = q == k
            if sel.any():
                self.window.add(f"loss_q{k}", float(terms[sel].sum()), int(sel.sum()))

    def gan_step(self, real: torch.Tensor, step: int) -> dict:
        hyper = self.schedule.at(step - 1, self.cfg.steps)
        apply(self.opt_d, hyper)
        apply(self.opt_g, hyper)
        z = self._randn((real.shape[0], *self.G.latent_shape))
        with self._autocast():
            fake = self.G(z)
            d_loss = d_loss_bce(self.D(real), self.D(fake.detach())).float().mean()
        _grad_step(self.opt_d, self.D.parameters(), d_loss, self.cfg.grad_clip)
        with self._autocast():
            g_loss = self.g_loss(self.D(fake)).float().mean()
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

    # --- exact resume -------------------------------------------------------------------------
    def _trained(self) -> dict[str, tuple[torch.nn.Module, torch.optim.Optimizer]]:
        if self.cfg.kind == "dm":
            return {"model": (self.net, self.opt)}
        return {"generator": (self.G, self.opt_g), "discriminator": (self.D, self.opt_d)}

    def state_dict(self) -> dict:
        """Everything an exact resume needs, as tensors and plain containers (weights_only-loadable)."""
        state = {
            "step": self.step,
            "modules": {k: m.state_dict() for k, (m, _) in self._trained().items()},
            "optimizers": {k: o.state_dict() for k, (_, o) in self._trained().items()},
            "ema": self.ema.state_dict() if self.ema else None,
            "generator_rng": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),  # dropout draws from the global stream
            "sampler": self.sampler.state_dict() if self.cfg.kind == "dm" else {},
            "window": self.window.state_dict(),
            "cpu_seconds": self.cpu_seconds,
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        for k, (m, o) in self._trained().items():
            m.load_state_dict(state["modules"][k])
            o.load_state_dict(state["optimizers"][k])
        if self.ema:
            self.ema.load_state_dict(state["ema"])
        self.gen.set_state(state["generator_rng"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        if self.cfg.kind == "dm":
            self.sampler.load_state_dict(state["sampler"])
        self.window.load_state_dict(state["window"])
        self.cpu_seconds = float(state.get("cpu_seconds", 0.0))  # resume states before it was kept: from 0
        self.step = int(state["step"])

    def checkpoint(self) -> Path:
        """Weights, then the resume state, each written atomically: a failure (full disk)
        leaves the previous checkpoint and resume state as they were. Rank 0 writes."""
        path = self.out_dir / f"step{self.step:07d}.safetensors"
        if not self.ctx.main:
            return path
        try:
            path = self.save(self.step)
            save_resume_state(self.out_dir, self.state_dict())
        except OSError as exc:
            raise DstabError(
                f"could not write the checkpoint at step {self.step} in {self.out_dir} ({exc.strerror or exc}); "
                "the previous checkpoint is intact; free space and resume"
            ) from None
        return path

    # --- the loop ---------------------------------------------------------------------------------
    def run(
        self,
        metrics: Callable[[int, dict], None] | None = None,
        evaluate: Callable[[Trainer], dict] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        redo_evaluation: bool = False,
    ) -> dict:
        """Train from `self.step` to `cfg.steps`. `metrics(step, values)` receives every logged
        value as it happens; `evaluate(trainer)` runs every `eval_every` steps and at the end;
        `should_stop()` is checked after each step (SIGTERM): the run then checkpoints and returns.
        `redo_evaluation`: the evaluation due at `self.step` (a resume point) was interrupted, so it
        runs first and the metric series keeps no gap."""
        c = self.cfg

        def evaluate_at(step: int) -> None:
            if evaluate and c.eval_every and self.ctx.main and (step % c.eval_every == 0 or step == c.steps):
                values = evaluate(self)
                self.log({"step": step, **values})
                if metrics:
                    metrics(step, values)

        if redo_evaluation and self.step > 0:
            evaluate_at(self.step)
        step_fn = self.dm_step if c.kind == "dm" else self.gan_step
        saves = sorted(set(c.save_steps) | {c.steps})
        batches = self.dataset.batches(c.batch_size, c.data_seed, start_step=self.step)
        t0, history, saved, stopped = time.perf_counter(), [], {}, False
        for step in range(self.step + 1, c.steps + 1):
            batch = next(batches).to(self.device)
            tick, cpu_tick = time.perf_counter(), time.process_time()
            row = step_fn(batch, step)
            self.window.seconds += time.perf_counter() - tick
            self.cpu_seconds += time.process_time() - cpu_tick
            self.window.samples += batch.shape[0]
            self.step = step
            self.on_step(step)
            if not all(math.isfinite(v) for v in row.values()):
                raise DstabError(f"training diverged at step {step} ({row}); lower the learning rate")
            history.append(row["loss"])
            for name, v in row.items():
                self.window.add(name, v)
            if step % c.log_every == 0 or step == c.steps:
                values = {**self.window.means(), **self._hyper_row(self.schedule.at(step - 1, c.steps))}
                values["cpu_s"] = self.cpu_seconds  # time that the machine's load does not inflate
                self.window = Window()
                self.log({"step": step, **values, "wall": time.perf_counter() - t0})
                if metrics:
                    metrics(step, values)
            if c.checkpoint_every and (step % c.checkpoint_every == 0 or step == c.steps):
                saved[step] = str(self.checkpoint())
            elif step in saves and self.ctx.main:
                saved[step] = str(self.save(step))
            evaluate_at(step)
            if step < c.steps and distributed.agree(self.ctx, should_stop(), self.device):
                if not (c.checkpoint_every and step % c.checkpoint_every == 0):
                    saved[step] = str(self.checkpoint())
                stopped = True
                break
        window = max(1, min(100, len(history) // 10))
        return {
            "checkpoints": saved,
            "stopped": stopped,
            "step": self.step,
            "wall_time_s": time.perf_counter() - t0,
            "loss_first": sum(history[:window]) / window if history else math.nan,
            "loss_last": sum(history[-window:]) / window if history else math.nan,
        }


def train(config: TrainConfig | dict, out_dir, device="cpu", log=None) -> dict:
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    result = Trainer(cfg, out_dir, device, log).run()
    (Path(out_dir) / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return result
