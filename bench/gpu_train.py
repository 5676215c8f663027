"""The CIFAR-size training check of bench/gpu.sh: the paper's CIFAR-10 model on one GPU, printed as one
table for bench/RESULTS.md (issue 24 item 5).

1. 200 steps each of the baseline and mdlrc-clts on improved-diffusion's CIFAR-10 UNet (52.5M
   parameters, learned sigma, L_hybrid; experiments/cifar10.py) on generated 32 x 32 RGB data in the
   CIFAR-10 batch layout, batch 128, bf16 autocast, interleaved in blocks: images/s, the step-time
   ratio, achieved TFLOP/s (counted FLOPs: 3 x the forward's matmuls and convolutions per image)
   and peak memory;
2. one FID-1k evaluation pass as a training run evaluates (1,000 EMA samples by 100 DDIM steps in
   bf16, Inception features, FD / KID / PRDC against the data's reference), with a RANDOMLY
   INITIALISED Inception: timing only, its value means nothing. It needs pytorch-fid and
   torchvision; where they are missing the pass is skipped and the table says so (pytorch-fid is
   pure Python: a session can carry a copy of it in an ignored folder on PYTHONPATH; torchvision
   must be the build of the machine's torch).

`--smoke` runs the same code at tiny sizes on a CPU (the test suite does). Needs no streamlit.

    python bench/gpu_train.py [--smoke] [--device cuda] [--steps 200] [--batch 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import _repo  # noqa: F401 (puts the repository root on sys.path)
import torch

from dstab import image_data, paper
from dstab.analysis import fast_surface
from dstab.experiments import cifar10, runcost
from dstab.training import config as train_config
from dstab.training.config import TrainConfig
from dstab.training.trainer import Trainer

ARMS = ("baseline", "mdlrc-clts")
TINY = cifar10.TINY_ARCH


def cifar_folder(per_batch: int) -> str:
    """A CIFAR-10 folder of random images in the python-pickle batch layout (the GPU machine has no CIFAR)."""
    folder = image_data.write_random_cifar10(Path(tempfile.mkdtemp(prefix="dstab-gpu-train-cifar-")), per_batch)
    return f"cifar10:{folder}"


def config(arm: str, arch: dict, diffusion: dict, dataset: str, batch: int, steps: int, **evaluation) -> dict:
    cfg = train_config.preset(arm)
    cfg.update(arch=arch, diffusion=diffusion, dataset=dataset, batch_size=batch, steps=steps, lr=paper.LR)
    cfg.update(checkpoint_every=None, eval_every=None, **evaluation)
    return TrainConfig.from_dict(cfg).to_dict()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def share(achieved: float, peak: float | None) -> str:
    return "peak unknown" if peak is None else f"{100 * achieved / peak:.1f}% of the card's dense peak"


def peak_memory(device: torch.device) -> str:
    if device.type != "cuda":
        return "CPU"
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB peak"


def training_rows(cfgs: dict, steps: int, blocks: int, device: str) -> tuple[list[list[str]], dict]:
    trainers = {arm: Trainer(TrainConfig.from_dict(c), tempfile.mkdtemp(), device) for arm, c in cfgs.items()}
    dev = next(iter(trainers.values())).device
    batch = cfgs[ARMS[0]]["batch_size"]
    feeds = {a: (b.to(dev) for b in t.dataset.batches(batch, 0)) for a, t in trainers.items()}
    done, times = dict.fromkeys(trainers, 0), {a: [] for a in trainers}
    for arm, tr in trainers.items():  # warm-up: cuDNN autotuning, the allocator
        for _ in range(3):
            tr.dm_step(next(feeds[arm]), 1)
    per_block = max(1, steps // blocks)
    for b in range(blocks):
        for arm in ARMS if b % 2 == 0 else tuple(reversed(ARMS)):
            sync(dev)
            t0 = time.perf_counter()
            for _ in range(per_block):
                done[arm] += 1
                trainers[arm].dm_step(next(feeds[arm]), done[arm])
            sync(dev)
            times[arm].append((time.perf_counter() - t0) / per_block)
    flop_per_step = 3 * runcost.forward_flops(cfgs[ARMS[0]]) * batch
    median = {arm: statistics.median(t) for arm, t in times.items()}
    amp = "bf16" if trainers[ARMS[0]].amp else "fp32"
    peak = fast_surface.device_peak(dev, amp)
    rows = [
        [
            f"train {per_block * blocks} steps, {arm}",
            amp,
            f"{median[arm] * 1e3:.1f} ms/step",
            f"{batch / median[arm]:,.0f} images/s",
            f"{flop_per_step / median[arm] / 1e12:.3g}",
            f"batch {batch}, {share(flop_per_step / median[arm], peak)}, {peak_memory(dev)}",
        ]
        for arm in ARMS
    ]
    ratio = median["mdlrc-clts"] / median["baseline"]
    rows.append(
        ["step-time ratio", amp, f"{ratio:.3f}", "", "", "mdlrc-clts / baseline, medians of interleaved blocks"]
    )
    return rows, trainers


def fid_row(trainer: Trainer, samples: int, sampler_steps: int) -> list[str]:
    """One FID pass of `samples` EMA samples as the run's evaluator makes it, with a random Inception."""
    label = f"FID-{samples:,} pass (timing only)"
    try:
        import pytorch_fid  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as exc:
        return [label, "", "skipped", "", "", f"needs pytorch-fid and torchvision: {exc}"]
    from dstab import metricnames
    from dstab.analysis import fid

    weights = Path(tempfile.mkdtemp()) / "random-inception-TIMING-ONLY.pth"
    torch.save(fid.random_inception_state(), weights)
    os.environ.update(DSTAB_FID_WEIGHTS=str(weights), **{metricnames.FID_MIN_ENV: str(samples)})
    evaluation = {"eval_metric": "fid", "eval_samples": samples, "eval_sampler_steps": sampler_steps}
    cfg = TrainConfig.from_dict({**trainer.cfg.to_dict(), **evaluation, "eval_every": 1})
    dev = trainer.device
    t0 = time.perf_counter()
    ev = fid.TrainingEvaluator(cfg, trainer.dataset, dev, amp=trainer.amp)  # Inception, reference statistics
    setup_s = time.perf_counter() - t0
    sync(dev)
    t0 = time.perf_counter()
    values = ev(trainer.eval_modules(), trainer.diffusion)
    sync(dev)
    seconds = time.perf_counter() - t0
    calls = samples * sampler_steps * runcost.forward_flops(trainer.cfg.to_dict())
    note = (
        f"{samples:,} samples x {sampler_steps} DDIM steps + Inception + FD/KID/PRDC, RANDOM Inception weights "
        f"(value {values[ev.name]:.3g} means nothing); the denoiser's counted FLOPs over the whole pass: "
        f"{calls / seconds / 1e12:.3g} TFLOP/s; Inception load + reference statistics before it: {setup_s:.1f} s"
    )
    return [
        label,
        "bf16" if trainer.amp else "fp32",
        f"{seconds:.1f} s",
        f"{samples / seconds:,.3g} samples/s",
        "",
        note,
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for a CPU test of this script")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=200, help="timed training steps per arm")
    ap.add_argument("--batch", type=int, default=paper.BATCH)
    ap.add_argument("--fid-samples", type=int, default=1000)
    args = ap.parse_args(argv)
    os.environ.setdefault("DSTAB_CACHE", tempfile.mkdtemp(prefix="dstab-gpu-train-cache-"))
    arch, diffusion = cifar10.model()
    blocks, sampler_steps, per_batch = 10, 100, 64
    if args.smoke:
        args.device, args.steps, args.batch, args.fid_samples = "cpu", 4, 2, 6
        arch, blocks, sampler_steps, per_batch = TINY, 2, 2, 2
    dev = torch.device(args.device)
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {card}, threads {torch.get_num_threads()}, {time.strftime('%Y-%m-%d %H:%M')}")
    dataset = cifar_folder(per_batch)
    cfgs = {arm: config(arm, arch, diffusion, dataset, args.batch, args.steps) for arm in ARMS}
    print(
        f"model: improved-diffusion CIFAR-10 UNet{' (tiny: --smoke)' if args.smoke else ''}, "
        f"{runcost.forward_flops(cfgs[ARMS[0]]) / 1e9:.2f} GFLOP per image forward"
    )
    rows, trainers = training_rows(cfgs, args.steps, blocks, args.device)
    rows.append(fid_row(trainers["baseline"], args.fid_samples, sampler_steps))
    head = ["check", "precision", "time", "throughput", "TFLOP/s", "notes"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
