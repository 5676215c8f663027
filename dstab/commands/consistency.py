"""`dstab consistency MODELS... -o DIR`: the paper's Eq. 1 for a group of models sampled from one seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..analysis import consistency as cons
from ..device import resolve_device
from ..errors import require
from . import add_command, add_device_arg, add_threads_arg


def register(sub) -> None:
    p = add_command(
        sub,
        "consistency",
        description="N models each draw --num samples from ONE sampling seed (DMs: the same x_T and per-step "
        "noise; GANs: the same z). C(q) is the mean over samples of the mean PSNR of models 2..N against model 1 "
        "(peak 2 for images in [-1, 1], capped at 100 dB). Writes consistency.json, .npz and a PNG grid "
        "(one row per model; equal columns share their noise).",
    )
    p.add_argument(
        "models",
        nargs="+",
        help="checkpoint files, zoo ids (digits/dm-eps-s1) or zoo groups "
        "(digits/dm-init, digits/gan-structure); the first model is the reference",
    )
    p.add_argument("-o", "--output", required=True, type=Path, help="folder for the JSON, NPZ and PNG")
    p.add_argument("-n", "--num", type=int, default=32, help="samples per model (default 32, as the paper's Table 1)")
    p.add_argument("--seed", type=int, default=0, help="the one sampling seed (default 0)")
    p.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm", help="DM sampler (default ddpm, ancestral)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default 0: deterministic)")
    p.add_argument("--stage", choices=["final", "early"], default="final", help="zoo checkpoint stage")
    p.add_argument("--refresh", action="store_true", help="recompute even when a cached result exists")
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    require(args.sampler == "ddim" or args.steps is None, "--steps applies to --sampler ddim only")
    bundles, names = cons.load_models(args.models, stage=args.stage)
    settings = {"num": args.num, "seed": args.seed, "sampler": args.sampler, "steps": args.steps, "eta": args.eta}
    result, source = cons.cached(bundles, names, args.refresh, device=resolve_device(args.device), **settings)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    meta, arrays = result.to_record()
    (out / "consistency.json").write_text(json.dumps({**meta, "source": source}, indent=2) + "\n")
    np.savez(out / "consistency.npz", **arrays)
    cons.grid(result).save(out / "consistency.png")
    print(f"C(q) = {result.score:.2f} dB over {len(names)} models x {args.num} samples ({source})")
    for name, db in zip(names[1:], meta["psnr_vs_first_db"]):
        print(f"  {name}: {db:.2f} dB against {names[0]}")
    print(out)
    return 0
