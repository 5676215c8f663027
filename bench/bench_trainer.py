"""Trainer overhead of CLTS + MDLRC vs the baseline, and steps/s, measured side by side in one run.

Two measures, both printed as ratios:
1. whole training steps of the digits UNet (preset model, batch 64), baseline and
   mdlrc-clts interleaved in alternating blocks so that load changes on a shared
   machine hit both alike; the median per-step times and their ratio;
2. the per-step cost that differs between the two (drawing t from the CLTS pmf and
   evaluating the MD/LRC schedule, vs uniform randint and a constant schedule),
   timed in isolation over many calls, as a fraction of a baseline step. On a busy
   machine (1) is noisy; (2) bounds the true overhead.

    python bench/bench_trainer.py [--blocks 6] [--steps 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import _repo  # noqa: F401 (puts the repository root on sys.path)
import torch

from dstab.training import config as train_config
from dstab.training.config import TrainConfig
from dstab.training.momentum import apply
from dstab.training.trainer import Trainer


def trainer(preset: str, device: str, arch: dict | None = None, batch: int | None = None) -> Trainer:
    cfg = train_config.preset(preset)
    cfg.update(steps=10_000, eval_every=None, checkpoint_every=None)
    if arch:
        cfg["arch"] = arch
    if batch:
        cfg["batch_size"] = batch
    return Trainer(TrainConfig.from_dict(cfg), "/tmp/dstab-bench-unused", device)


def time_steps(tr: Trainer, batches, start: int, n: int) -> float:
    sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for k in range(n):
        tr.dm_step(next(batches), start + k)
    sync()
    return (time.perf_counter() - t0) / n


def interleaved(device: str, blocks: int, steps: int, arch=None, batch=None) -> dict[str, float]:
    trs = {p: trainer(p, device, arch, batch) for p in ("baseline", "mdlrc-clts")}
    data = {p: tr.dataset.batches(tr.cfg.batch_size, 0) for p, tr in trs.items()}
    moved = {p: (b.to(tr.device) for b in data[p]) for p, tr in trs.items()}
    times = {p: [] for p in trs}
    for p, tr in trs.items():  # warm-up
        time_steps(tr, moved[p], 1, 3)
    for b in range(blocks):
        order = list(trs) if b % 2 == 0 else list(reversed(trs))
        for p in order:
            times[p].append(time_steps(trs[p], moved[p], 4 + b * steps, steps))
    return {p: statistics.median(v) for p, v in times.items()}


def isolated_overhead(device: str, calls: int = 2000) -> dict[str, float]:
    base, full = trainer("baseline", device), trainer("mdlrc-clts", device)
    gen = torch.Generator().manual_seed(0)
    out = {}
    for name, tr in (("baseline", base), ("mdlrc-clts", full)):
        t0 = time.perf_counter()
        for it in range(calls):
            tr.sampler.sample(64, it, gen, tr.device)
            apply(tr.opt, tr.schedule.at(it, tr.cfg.steps))
        out[name] = (time.perf_counter() - t0) / calls
    return out


def _cifar_unet() -> dict:
    """improved-diffusion's CIFAR-size UNet: DDPM's (bench/gpu_bench.py) with scale-shift norm."""
    from gpu_bench import DDPM_CIFAR

    return {**DDPM_CIFAR, "use_scale_shift_norm": True}


def cifar_step(device: str, batch: int, steps: int = 10) -> float:
    """Seconds per training step of an improved-diffusion CIFAR-size UNet on random 3x32x32 data
    (the digits are 1x8x8, so the Trainer's dataset check would refuse this network)."""
    from dstab import models
    from dstab.diffusion import Diffusion

    dev = torch.device(device)
    net, diffusion = models.build(_cifar_unet()).to(dev), Diffusion()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, 32, 32, device=dev)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")

    def step():
        t = torch.randint(0, diffusion.T, (batch,), device=dev)
        with amp:
            loss = diffusion.loss_terms(net, x, t, torch.randn_like(x)).float().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cifar", action="store_true", help="also time a CIFAR-size UNet (32x32x3, 128 channels)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    med = interleaved(args.device, args.blocks, args.steps)
    iso = isolated_overhead(args.device)
    b, f = med["baseline"], med["mdlrc-clts"]
    print(f"device {args.device}, threads {args.threads}, digits UNet (preset), batch 64")
    print(f"median step: baseline {b * 1e3:.2f} ms, mdlrc-clts {f * 1e3:.2f} ms, ratio {f / b:.3f}")
    print(f"steps/s: baseline {1 / b:.2f}, mdlrc-clts {1 / f:.2f}; samples/s baseline {64 / b:.0f}")
    extra = iso["mdlrc-clts"] - iso["baseline"]
    print(
        f"isolated per-step cost: sampler+schedule baseline {iso['baseline'] * 1e6:.1f} us, "
        f"mdlrc-clts {iso['mdlrc-clts'] * 1e6:.1f} us; extra = {100 * extra / b:.3f}% of a baseline step"
    )
    if args.cifar:
        s = cifar_step(args.device, 128)
        print(f"CIFAR-size UNet (batch 128, bf16 autocast on CUDA): {1 / s:.2f} steps/s, {128 / s:.0f} samples/s")


if __name__ == "__main__":
    main()
