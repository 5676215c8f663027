"""`dstab surface|interpolate|precompute`: loss surfaces and interpolation curves, headless.

Each writes <stem>.json (metadata, smoothness numbers and the arrays),
<stem>.npz (the arrays), <stem>.png and <stem>.html (plotly) into --out.
Results come from the results cache when present (see dstab.cache).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..analysis import distributed, figures, interpolation, precompute, service
from ..analysis.directions import BIAS_MODES
from ..analysis.landscape import STRATEGIES, CostWarning
from ..checkpoints import atomic_write_bytes
from ..device import resolve_device
from ..errors import require
from . import add_command, add_device_arg, add_threads_arg


def _probe_args(p) -> None:
    p.add_argument("--stage", choices=["final", "early"], default="final", help="zoo checkpoint stage (default final)")
    p.add_argument(
        "--timestep",
        type=int,
        action="append",
        help=f"DM timestep to probe, repeatable; one result per timestep (default {list(service.DEFAULT_TIMESTEPS)})",
    )
    p.add_argument("--role", choices=["g", "d"], action="append", help="GAN network to probe (default both)")
    p.add_argument("--batch-size", type=int, default=service.DEFAULTS["batch_size"], help="probe batch (default 64)")
    p.add_argument("--probe-seed", type=int, default=0, help="seed of the probe's fixed batch and noise (default 0)")
    p.add_argument("--out", type=Path, default=Path("."), help="output folder (default: current folder)")
    p.add_argument("--refresh", action="store_true", help="recompute even when a cached result exists")
    add_device_arg(p)
    add_threads_arg(p)


def register(sub) -> None:
    s = add_command(
        sub,
        "surface",
        description="Loss on a grid x grid plane spanned by two filter-normalised random directions "
        "around a checkpoint (a file or a zoo id such as digits/dm-eps-s0). Under torchrun the grid rows are "
        "split across ranks.",
    )
    s.add_argument("checkpoint", help="checkpoint file or zoo id")
    s.add_argument("--grid", type=int, default=service.DEFAULTS["grid"], help="odd grid size (default 21)")
    s.add_argument("--radius", type=float, default=service.DEFAULTS["radius"], help="half-width r (default 1.0)")
    s.add_argument("--seed", type=int, default=0, help="seed of the two directions (default 0)")
    s.add_argument("--bias-mode", choices=BIAS_MODES, default="ignore", help="1-D parameters: Li et al.'s options")
    s.add_argument("--engine", choices=service.ENGINES, default="dstab", help="dstab (default) or loss-landscapes")
    s.add_argument("--strategy", choices=STRATEGIES, default=None, help="default: sequential on CPU, vmap on CUDA")
    _probe_args(s)
    s.set_defaults(func=run_surface)

    i = add_command(
        sub,
        "interpolate",
        description="Loss of theta(alpha) = alpha * theta_a + (1 - alpha) * theta_b. With a zoo id and no B, "
        "A is the run's final checkpoint and B its early one.",
    )
    i.add_argument("a", help="checkpoint file or zoo id (alpha = 1)")
    i.add_argument("b", nargs="?", default=None, help="checkpoint file or zoo id (alpha = 0; default: A's early stage)")
    i.add_argument("--lo", type=float, default=-0.5, help="lowest alpha (default -0.5)")
    i.add_argument("--hi", type=float, default=1.5, help="highest alpha (default 1.5)")
    i.add_argument("--steps", type=int, default=20, help="points per unit of alpha (default 20)")
    _probe_args(i)
    i.set_defaults(func=run_interpolate)

    pc = add_command(
        sub,
        "precompute",
        description="Compute every registered default analysis for every zoo entry into the shipped cache, "
        "skipping results already there.",
    )
    every = ", ".join(precompute.tasks())
    pc.add_argument("--only", default=None, help=f"comma-separated tasks (default all: {every})")
    pc.add_argument("--entries", default=None, help="only zoo entries whose id contains this text")
    add_device_arg(pc)
    add_threads_arg(pc)
    pc.set_defaults(func=run_precompute)


def _probes(bundle, args) -> list[dict]:
    if bundle.kind == "dm":
        require(not args.role, f"{bundle.name} is a DM; --role applies to GANs only (use --timestep)")
        return [{"timestep": t} for t in (args.timestep or service.DEFAULT_TIMESTEPS)]
    require(not args.timestep, f"{bundle.name} is a GAN; --timestep applies to DMs only (use --role g|d)")
    return [{"role": r} for r in (args.role or service.DEFAULT_ROLES)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def _plain(value):
    """JSON-safe: arrays to lists, NaN and inf to null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _write(result, stem: Path, source: str, png, html) -> None:
    meta, arrays = result.to_record()
    stem.parent.mkdir(parents=True, exist_ok=True)
    record = {"source": source, **_plain(meta), "arrays": _plain(arrays)}
    atomic_write_bytes(stem.with_suffix(".json"), json.dumps(record, indent=1).encode())
    np.savez(stem.with_suffix(".npz"), **arrays)
    png(result, stem.with_suffix(".png"))
    figures.write_html(html(result), stem.with_suffix(".html"))
    print(f"{stem}.json/.npz/.png/.html ({source})")


@contextlib.contextmanager
def _cost_warnings_on_one_line():
    """A CostWarning reaches the terminal as one 'warning: ...' line before the work starts."""
    original = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if issubclass(category, CostWarning):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            original(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def _bar(total: int, desc: str):
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=distributed.world()[0] != 0, leave=False)


def _what(probe: dict) -> str:
    return f"t{probe['timestep']}" if "timestep" in probe else probe["role"]


def run_surface(args) -> int:
    device = resolve_device(args.device)
    bundle = service.load(args.checkpoint, args.stage)
    probes = _probes(bundle, args)
    points = (args.grid + 1) ** 2 if args.engine != "dstab" else args.grid**2
    for probe in probes:
        with _cost_warnings_on_one_line(), _bar(points, f"surface {_what(probe)}") as bar:
            s, source = service.surface_for(
                bundle,
                **probe,
                grid=args.grid,
                radius=args.radius,
                seed=args.seed,
                batch_size=args.batch_size,
                probe_seed=args.probe_seed,
                bias_mode=args.bias_mode,
                engine=args.engine,
                device=device,
                strategy=args.strategy,
                refresh=args.refresh,
                progress=bar.update,
            )
        if distributed.world()[0] == 0:
            stem = args.out / f"surface_{_slug(bundle.name)}_{_what(probe)}"
            _write(s, stem, source, figures.surface_png, figures.surface_figure)
            m = s.meta["metrics"]
            print(
                f"  centre loss {s.centre_loss:.5g}, relative rise {m['relative_rise']:.4g}, curvature roughness "
                f"{m['curvature_roughness']:.4g}, convex fraction {m['convex_fraction']:.3f}, "
                f"cosine {s.meta['cosine_before']:.2e} -> {s.meta['cosine_after']:.2e}"
            )
    return 0


def run_interpolate(args) -> int:
    device = resolve_device(args.device)
    a = service.load(args.a, args.stage)
    b = service.load(args.b) if args.b else service.load(args.a, "early")
    for probe in _probes(a, args):
        points = len(interpolation.interpolation_alphas(args.lo, args.hi, args.steps))
        with _cost_warnings_on_one_line(), _bar(points, f"interpolate {_what(probe)}") as bar:
            c, source = service.interpolation_for(
                a,
                b,
                **probe,
                lo=args.lo,
                hi=args.hi,
                steps=args.steps,
                batch_size=args.batch_size,
                probe_seed=args.probe_seed,
                device=device,
                refresh=args.refresh,
                progress=bar.update,
            )
        stem = args.out / f"interpolate_{_slug(a.name)}_{_slug(b.name)}_{_what(probe)}"
        _write(c, stem, source, figures.curve_png, figures.curve_figure)
        m = c.meta["metrics"]
        print(
            f"  loss b {c.meta['loss_b']:.5g} -> a {c.meta['loss_a']:.5g}, roughness {m['roughness']:.4g}, "
            f"barrier {m['barrier']:.4g}"
        )
    return 0


def run_precompute(args) -> int:
    only = [t.strip() for t in args.only.split(",") if t.strip()] if args.only else None
    with _cost_warnings_on_one_line():
        n = precompute.run(only, args.entries, resolve_device(args.device))
    print(f"{n} results in the shipped cache")
    return 0
