"""`dstab sample CHECKPOINT -o grid.png`: a PNG of samples for a given seed."""

from __future__ import annotations

import torch

from .. import checkpoints
from ..device import resolve_device
from ..errors import require
from ..plots.png import save_samples
from ..sampling import generate
from . import add_command, add_device_arg, add_threads_arg


def register(sub) -> None:
    p = add_command(
        sub,
        "sample",
        description="Draw samples with an explicit seed (the same seed gives the same x_T, per-step noise "
        "and GAN latents for every model) and write them as a PNG grid (a scatter plot for 2-D data).",
    )
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.add_argument("-n", "--num", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm", help="DM sampler (default ddpm)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default 0: deterministic)")
    p.add_argument("--scale", type=int, default=4, help="pixel upscaling of the grid (default 4)")
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    require(args.output.lower().endswith(".png"), f"output must be a .png file, got {args.output}")
    require(args.scale >= 1, "--scale must be >= 1")
    bundle = checkpoints.load(args.checkpoint)
    with torch.inference_mode():
        x = generate(bundle, args.num, args.seed, args.sampler, args.steps, args.eta, resolve_device(args.device))
    print(save_samples(x, args.output, scale=args.scale))
    return 0
