"""`dstab sample CHECKPOINT -o grid.png [--npz samples.npz]`: samples for a given seed."""

from __future__ import annotations

import io
import json

import numpy as np
import torch

from .. import budgets, checkpoints, zooindex
from ..device import resolve_device
from ..diffusion import NoiseSource
from ..errors import require
from ..fileio import atomic_write_bytes, writable_file
from ..modelconfig import DDIM_STEPS
from ..plots.png import save_samples
from ..sampling import BATCHNORM_MODES, generate, sample_shape
from . import add_command, add_device_arg, add_stage_arg, add_threads_arg
from .progress import bars


def register(sub) -> None:
    p = add_command(
        sub,
        "sample",
        description="Draw samples with an explicit seed (the same seed gives the same x_T, per-step noise "
        "and GAN latents for every model) and write them as a PNG grid (a scatter plot for 2-D data) "
        "and/or as raw arrays with the seed and sampler settings (--npz).",
    )
    p.add_argument("checkpoint", help="a checkpoint file or a zoo id such as digits/dm-eps-s0")
    add_stage_arg(p)
    p.add_argument("-o", "--output", help="PNG file to write")
    p.add_argument("--npz", help="also (or only) write the raw samples and their metadata to this .npz file")
    p.add_argument("-n", "--num", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm", help="DM sampler (default ddpm)")
    p.add_argument("--steps", type=int, default=None, help=f"DDIM steps (default {DDIM_STEPS})")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default 0: deterministic)")
    p.add_argument(
        "--batchnorm",
        choices=BATCHNORM_MODES,
        default="eval",
        help="GAN BatchNorm: eval (running statistics, default) or batch (statistics of the n samples drawn "
        "together, as pytorch/examples dcgan/main.py draws its PNGs; samples then depend on -n)",
    )
    p.add_argument("--scale", type=int, default=4, help="pixel upscaling of the grid (default 4)")
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)


def metadata(bundle, args) -> dict:
    """Everything needed to draw the same arrays again."""
    meta = {
        "checkpoint": str(args.checkpoint),
        "sha256": bundle.sha256,
        "kind": bundle.kind,
        "n": args.num,
        "seed": args.seed,
        "noise": "dstab.diffusion.NoiseSource",
    }
    if bundle.kind == "dm":
        steps = bundle.diffusion.T if args.sampler == "ddpm" else (args.steps or DDIM_STEPS)
        meta.update(sampler=args.sampler, steps=steps, eta=args.eta, diffusion=bundle.diffusion.to_config())
        meta.update(bundle.diffusion.sampling_summary(1 + len(sample_shape(bundle))))
    else:
        meta["batchnorm"] = args.batchnorm
    return meta


def write_npz(path: str, x: torch.Tensor, bundle, args) -> None:
    meta = metadata(bundle, args)
    arrays = {"samples": x.numpy().astype(np.float32), "meta": np.array(json.dumps(meta, sort_keys=True))}
    arrays.update({k: np.array(v) for k, v in meta.items() if isinstance(v, (int, float, str)) and v is not None})
    classes = bundle.header["arch"].get("num_classes") if bundle.kind == "dm" else None
    if classes:  # the class labels the samples were drawn for
        arrays["labels"] = NoiseSource(args.seed, (args.num, *sample_shape(bundle))).labels(classes).numpy()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def run(args) -> int:
    require(args.output or args.npz, "nothing to write: give -o FILE.png and/or --npz FILE.npz")
    require(not args.output or args.output.lower().endswith(".png"), f"output must be a .png file, got {args.output}")
    require(not args.npz or args.npz.lower().endswith(".npz"), f"--npz must name a .npz file, got {args.npz}")
    require(args.scale >= 1, "--scale must be >= 1")
    require(args.steps is None or args.steps >= 1, f"--steps must be at least 1, got {args.steps}")
    budgets.check_count(args.num, "DSTAB_MAX_SAMPLES", "-n/--num")
    for out in filter(None, (args.output, args.npz)):
        writable_file(out, "the output")
    bundle = checkpoints.load(zooindex.resolve_checkpoint(args.checkpoint, args.stage))
    device = resolve_device(args.device)
    with torch.inference_mode(), bars("", unit="steps") as progress:
        x = generate(bundle, args.num, args.seed, args.sampler, args.steps, args.eta, device, args.batchnorm, progress)
    if args.output:
        print(save_samples(x, args.output, scale=args.scale))
    if args.npz:
        write_npz(args.npz, x, bundle, args)
        print(args.npz)
    return 0
