"""`dstab hessian CHECKPOINT -o DIR`: top eigenvalues, trace and spectral density of a probe's Hessian.

Its defaults are the report's (dstab.zooresults.HESSIAN), so `python -m dstab
hessian digits/dm-eps-s0` finds the result the zoo ships instead of computing.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from .. import budgets, zooresults
from ..analysis import results
from ..analysis.consistency import load_models
from ..analysis.hessian_settings import lambda_min_text, verification_text
from ..analysis.specs import GAN_ROLES, HESSIAN_ENGINES, probe_kind
from ..device import resolve_device
from ..errors import DstabError, require
from ..fileio import writable_dir
from ..plots import figpng
from ..plots import hessian as hessian_plots
from . import add_command, add_dataset_arg, add_device_arg, add_threads_arg, check_dataset_arg
from .output import model_id, result_stem, write_result
from .progress import bars, cost_warnings_on_one_line

SPEC = zooresults.HESSIAN


def register(sub) -> None:
    p = add_command(
        sub,
        "hessian",
        description="Top-k eigenvalues by Lanczos, trace by Hutchinson and the eigenvalue density by "
        "stochastic Lanczos quadrature of a DM's L_simple or a GAN's G/D loss on a fixed seeded batch "
        "(the paper's Sec. 3.2 numbers). Writes hessian_<model>_<probe>.json, .npz and .png into --output. "
        "The defaults are those of `dstab report`, whose results the zoo ships.",
    )
    p.add_argument("checkpoint", help="a checkpoint file or a zoo id such as digits/dm-eps-s0")
    p.add_argument("-o", "--output", required=True, type=Path, help="folder for the JSON, NPZ and PNG")
    p.add_argument(
        "--engine",
        choices=HESSIAN_ENGINES,
        default=SPEC.engine,
        help="dstab (default), pyhessian (the paper's), or arpack (scipy eigsh on dstab's products: the oracle)",
    )
    p.add_argument("--top-k", type=int, default=SPEC.top_k, help=f"top eigenvalues (default {SPEC.top_k})")
    p.add_argument(
        "--trace-samples",
        type=int,
        default=SPEC.trace_samples,
        help=f"Hutchinson probes (default {SPEC.trace_samples})",
    )
    p.add_argument("--slq-runs", type=int, default=SPEC.slq_runs, help=f"SLQ start vectors (default {SPEC.slq_runs})")
    p.add_argument(
        "--slq-steps", type=int, default=SPEC.slq_steps, help=f"Lanczos steps per SLQ run (default {SPEC.slq_steps})"
    )
    p.add_argument(
        "--lambda-min",
        action="store_true",
        help="run Lanczos for lambda_min to convergence (default: the smallest Ritz value of the "
        "top-k run, reported as an unconverged upper bound)",
    )
    p.add_argument(
        "--block",
        type=int,
        default=SPEC.block,
        help=f"Lanczos start vectors: resolves clusters up to that size (default {SPEC.block})",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=SPEC.tol,
        help=f"error bound of the top eigenvalues relative to the spectral radius (default {SPEC.tol:g})",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=SPEC.max_steps,
        help=f"Hessian-vector products of the top-k Lanczos at most (default {SPEC.max_steps})",
    )
    p.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the check on H deflated by the top-k (fewer products; the values are labelled unverified)",
    )
    p.add_argument(
        "--per-block",
        action="store_true",
        help="also lambda_1 and the Hutchinson trace of each block's diagonal Hessian block "
        "(UNet stages by resolution, attention apart; GAN layers)",
    )
    p.add_argument("--seed", type=int, default=SPEC.seed, help="seed of the batch, the noise and the random vectors")
    p.add_argument(
        "--batch-size",
        type=int,
        default=SPEC.probe.batch_size,
        help=f"examples in the probe's fixed batch (default {SPEC.probe.batch_size})",
    )
    p.add_argument("--timesteps", default=None, help="DM timesteps, comma separated (default: 4 quartile midpoints)")
    p.add_argument("--role", choices=GAN_ROLES, default=None, help="GAN: generator (g, default) or discriminator loss")
    add_dataset_arg(p)
    p.add_argument("--stage", choices=["final", "early"], default="final", help="zoo checkpoint stage")
    p.add_argument("--refresh", action="store_true", help="recompute even when a cached result exists")
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)


def parse_timesteps(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise DstabError(f"--timesteps must be integers separated by commas, got {text!r}") from None


def spec_from(args):
    probe = replace(
        SPEC.probe,
        timesteps=parse_timesteps(args.timesteps),
        role=args.role,
        batch_size=args.batch_size,
        seed=args.seed,
        dataset=args.dataset,
    )
    return replace(
        SPEC,
        probe=probe,
        engine=args.engine,
        top_k=args.top_k,
        trace_samples=args.trace_samples,
        slq_runs=args.slq_runs,
        slq_steps=args.slq_steps,
        seed=args.seed,
        block=args.block,
        lambda_min=args.lambda_min,
        tol=args.tol,
        max_steps=args.max_steps,
        verify=args.verify,
        per_block=args.per_block,
    )


def _what(probe: dict) -> str:
    """The probe part of an output name: the DM's timesteps (t125-375) or the GAN's network (g, d)."""
    return "t" + "-".join(str(t) for t in probe["timesteps"]) if probe.get("timesteps") else probe["role"]


def check_settings(args) -> None:
    """Sizes and the output folder, before the checkpoint is loaded or anything computed."""
    for option in ("top_k", "trace_samples", "slq_runs", "slq_steps", "max_steps"):
        flag = "--" + option.replace("_", "-")
        require(getattr(args, option) >= 1, f"{flag} must be at least 1, got {getattr(args, option)}")
        budgets.check_count(getattr(args, option), "DSTAB_MAX_TOP_K", flag)
    require(0 < args.tol < 1, f"--tol must lie in (0, 1) (relative to the spectral radius), got {args.tol}")
    require(
        not args.per_block or args.engine != "pyhessian",
        "--per-block comes from dstab's engine; drop it or use --engine dstab",
    )
    require(args.batch_size >= 1, f"--batch-size must be at least 1, got {args.batch_size}")
    budgets.check_count(args.batch_size, "DSTAB_MAX_BATCH", "--batch-size")
    check_dataset_arg(args)
    writable_dir(args.output, "--output")


def run(args) -> int:
    check_settings(args)
    bundles, names = load_models([args.checkpoint], stage=args.stage)
    require(len(bundles) == 1, f"{args.checkpoint!r} names {len(bundles)} checkpoints; give one")
    spec = spec_from(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the engine's memory plan, on stderr
    with cost_warnings_on_one_line(), bars("hessian", "Hv") as tick:
        found = results.get(spec, bundles, tick, resolve_device(args.device), args.refresh)
    s = spec.read(found).summary()
    kind = probe_kind(found.params["probe"])
    record = {**found.meta, "checkpoint": names[0], "source": found.source}  # meta's "probe": the built one
    density = hessian_plots.spectral_density({bundles[0].kind: (f"{names[0]} ({args.engine})", found)})
    shas = [bundles[0].sha256]
    stem = result_stem(args.output, ["hessian", model_id(names[0]), _what(found.params["probe"])], shas)
    write_result(stem, record, found.arrays, shas, {".png": lambda path: figpng.write_png(density, path)})
    lam_min = lambda_min_text(s)
    print(
        f"{names[0]} [{kind}, n={s['n_params']}, {args.engine}, {found.source}]: lambda_1 {s['lambda_1']:.4g}  "
        f"lambda_min {lam_min}  trace {s['trace']:.4g} +- {s['trace_stderr']:.2g}  "
        f"mean {s['mean']:.4g}  sigma2 {s['sigma2']:.4g}  ritz variance {s['ritz_variance']:.4g}  "
        f"top-k converged: {verification_text(s)}"
    )
    for line in block_lines(s.get("blocks") or []):
        print(line)
    if s.get("warning"):
        print(f"warning: {s['warning']}")
    print(f"{stem}.json/.npz/.png")
    return 0


def block_lines(blocks: list[dict]) -> list[str]:
    """The per-block table as printed: lambda_1 (its bound, "unverified" where no check ran) and the trace."""
    if not blocks:
        return []
    width = max(len(b["block"]) for b in blocks)
    lines = [f"{'block':<{width}}  {'n':>10}  {'lambda_1':>12}  {'trace':>12}"]
    for b in blocks:
        state = "" if b["verification"] == "verified" and b["lambda_1_converged"] else f" ({b['verification']})"
        if not b["lambda_1_converged"]:
            state = " (not converged)"
        lines.append(
            f"{b['block']:<{width}}  {b['n_params']:>10,}  {b['lambda_1']:>12.5g}  "
            f"{b['trace']:>12.5g} +- {b['trace_stderr']:.2g}{state}"
        )
    return lines
