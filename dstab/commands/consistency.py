"""`dstab consistency MODELS... -o DIR`: the paper's Eq. 1 for a group of models sampled from one seed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import budgets, zooresults
from ..analysis import consistency as cons
from ..analysis import results
from ..analysis.specs import DM_SAMPLERS
from ..device import resolve_device
from ..fileio import writable_dir
from ..modelconfig import DDIM_STEPS
from ..plots import consistency as consistency_plots
from . import add_command, add_dataset_arg, add_device_arg, add_threads_arg
from .output import model_id, result_stem, write_result

SPEC = zooresults.CONSISTENCY


def register(sub) -> None:
    p = add_command(
        sub,
        "consistency",
        description="N models each draw --num samples from ONE sampling seed (DMs: the same x_T and per-step "
        "noise; GANs: the same z). C(q) is the mean over samples of the mean PSNR of models 2..N against model 1 "
        "(peak 2 for images in [-1, 1], capped at 100 dB). Writes consistency_<models>.json, .npz and a PNG grid "
        "(one row per model; equal columns share their noise).",
    )
    p.add_argument(
        "models",
        nargs="+",
        help="checkpoint files, zoo ids (digits/dm-eps-s1) or zoo groups "
        "(digits/dm-init, digits/gan-structure); the first model is the reference",
    )
    p.add_argument("-o", "--output", required=True, type=Path, help="folder for the JSON, NPZ and PNG")
    p.add_argument(
        "-n",
        "--num",
        type=int,
        default=SPEC.num,
        help=f"samples per model (default {SPEC.num}, as the paper's Table 1)",
    )
    p.add_argument("--seed", type=int, default=SPEC.seed, help=f"the one sampling seed (default {SPEC.seed})")
    p.add_argument("--sampler", choices=DM_SAMPLERS, default=SPEC.sampler, help="DM sampler (default ddpm, ancestral)")
    p.add_argument("--steps", type=int, default=SPEC.steps, help=f"DDIM steps (default {DDIM_STEPS})")
    p.add_argument("--eta", type=float, default=SPEC.eta, help="DDIM eta (default 0: deterministic)")
    add_dataset_arg(p, "2-D points (their range is the PSNR peak; images always use 2)")
    p.add_argument("--stage", choices=["final", "early"], default="final", help="zoo checkpoint stage")
    p.add_argument("--refresh", action="store_true", help="recompute even when a cached result exists")
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    spec = replace(
        SPEC, num=args.num, seed=args.seed, sampler=args.sampler, steps=args.steps, eta=args.eta, dataset=args.dataset
    )
    spec.check_options()
    budgets.check_count(args.num, "DSTAB_MAX_SAMPLES", "--num")
    writable_dir(args.output, "--output")
    bundles, names = cons.load_models(args.models, stage=args.stage)
    found = results.get(spec, bundles, None, resolve_device(args.device), args.refresh, names=names)
    result = spec.read(found)
    result.names = list(names)  # a stored result may have been computed under other names (paths, ids)
    source = found.source
    meta, arrays = result.to_record()
    shas = [b.sha256 for b in bundles]
    stem = result_stem(args.output, ["consistency", *map(model_id, args.models)], shas)
    grid = consistency_plots.grid(arrays["samples"])
    write_result(stem, {**meta, "source": source}, arrays, shas, {".png": grid.save})
    print(f"C(q) = {result.score:.2f} dB over {len(names)} models x {args.num} samples ({source})")
    for name, db in zip(names[1:], meta["psnr_vs_first_db"]):
        print(f"  {name}: {db:.2f} dB against {names[0]}")
    print(f"{stem}.json/.npz/.png")
    return 0
