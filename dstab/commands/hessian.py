"""`dstab hessian CHECKPOINT -o DIR`: top eigenvalues, trace and spectral density of a probe's Hessian."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .. import probes
from ..analysis import hessian, hessian_engines
from ..analysis.consistency import load_models
from ..device import resolve_device
from ..errors import DstabError, require
from ..figures import line_image
from . import add_command, add_device_arg, add_threads_arg

# dstab's choice, not the paper's (it does not say which t its DM Hessian used): the midpoints of
# the four quartiles of [0, T), a 4-point quadrature of the uniformly weighted training loss
DEFAULT_TIMESTEP_FRACTIONS = (0.125, 0.375, 0.625, 0.875)


def register(sub) -> None:
    p = add_command(
        sub,
        "hessian",
        description="Top-k eigenvalues by Lanczos, trace by Hutchinson and the eigenvalue density by "
        "stochastic Lanczos quadrature of a DM's L_simple or a GAN's G/D loss on a fixed seeded batch "
        "(the paper's Sec. 3.2 numbers). Writes hessian.json, hessian.npz and hessian.png into --output.",
    )
    p.add_argument("checkpoint", help="a checkpoint file or a zoo id such as digits/dm-eps-s0")
    p.add_argument("-o", "--output", required=True, type=Path, help="folder for the JSON, NPZ and PNG")
    p.add_argument("--engine", choices=hessian.ENGINES, default="dstab", help="dstab (default) or pyhessian")
    p.add_argument("--top-k", type=int, default=hessian.DEFAULTS["top_k"], help="top eigenvalues (default 5)")
    p.add_argument("--trace-samples", type=int, default=hessian.DEFAULTS["trace_samples"], help="Hutchinson probes")
    p.add_argument("--slq-runs", type=int, default=hessian.DEFAULTS["slq_runs"], help="SLQ start vectors")
    p.add_argument("--slq-steps", type=int, default=hessian.DEFAULTS["slq_steps"], help="Lanczos steps per SLQ run")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch, the noise and the random vectors")
    p.add_argument("--batch-size", type=int, default=64, help="examples in the probe's fixed batch (default 64)")
    p.add_argument("--timesteps", default=None, help="DM timesteps, comma separated (default: 4 quartile midpoints)")
    p.add_argument("--role", choices=["g", "d"], default=None, help="GAN: generator (g, default) or discriminator loss")
    p.add_argument("--stage", choices=["final", "early"], default="final", help="zoo checkpoint stage")
    p.add_argument("--refresh", action="store_true", help="recompute even when a cached result exists")
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)


def parse_timesteps(text: str | None, T: int) -> list[int]:
    if text is None:
        return [int(f * T) for f in DEFAULT_TIMESTEP_FRACTIONS]
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise DstabError(f"--timesteps must be integers separated by commas, got {text!r}") from None


def probe_for(bundle, timesteps: str | None, role: str | None, batch_size: int, seed: int):
    ts = parse_timesteps(timesteps, bundle.diffusion.T) if bundle.kind == "dm" else None
    require(bundle.kind == "gan" or role is None, f"{bundle.name} is a DM; --role applies to GANs only")
    require(bundle.kind == "dm" or timesteps is None, f"{bundle.name} is a GAN; --timesteps applies to DMs only")
    return probes.probe_for(bundle, ts, role, batch_size, seed)


def progress_bar():
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def tick(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=f"hessian {stage}", unit="Hv", leave=False)
        bars[stage].update(done - bars[stage].n)

    return tick, bars


def density_figure(result: hessian.HessianSpectrum, title: str):
    return line_image(
        result.grid, {"density (SLQ)": result.curve}, title, log_y=True, marks=list(result.top_eigenvalues)
    )


def write_outputs(out: Path, result: hessian.HessianSpectrum, extra: dict, title: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    meta, arrays = result.to_record()
    (out / "hessian.json").write_text(json.dumps({**meta, **extra}, indent=2) + "\n")
    np.savez(out / "hessian.npz", **arrays)
    density_figure(result, title).save(out / "hessian.png")
    return out


def run(args) -> int:
    bundles, names = load_models([args.checkpoint], stage=args.stage)
    require(len(bundles) == 1, f"{args.checkpoint!r} names {len(bundles)} checkpoints; give one")
    device = resolve_device(args.device)
    probe = probe_for(bundles[0], args.timesteps, args.role, args.batch_size, args.seed).to(device)
    tick, bars = progress_bar()
    settings = {
        "top_k": args.top_k,
        "trace_samples": args.trace_samples,
        "slq_runs": args.slq_runs,
        "slq_steps": args.slq_steps,
        "seed": args.seed,
    }
    with torch.enable_grad():
        result, source = hessian_engines.cached(probe, args.engine, args.refresh, tick, **settings)
    for bar in bars.values():
        bar.close()
    s = result.summary()
    extra = {"checkpoint": names[0], "probe": probe.describe(), "source": source}
    write_outputs(args.output, result, extra, f"{names[0]} ({probe.kind}, {args.engine})")
    lam_min = "n/a" if s["lambda_min"] is None else f"{s['lambda_min']:.4g}"
    print(
        f"{names[0]} [{probe.kind}, n={s['n_params']}, {args.engine}, {source}]: lambda_1 {s['lambda_1']:.4g}  "
        f"lambda_min {lam_min}  trace {s['trace']:.4g} +- {s['trace_stderr']:.2g}  "
        f"mean {s['mean']:.4g}  sigma2 {s['sigma2']:.4g}  ritz variance {s['ritz_variance']:.4g}"
    )
    print(args.output)
    return 0
