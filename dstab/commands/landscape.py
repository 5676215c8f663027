"""`dstab surface|interpolate|precompute`: loss surfaces and interpolation curves, headless.

Each writes <stem>.json (metadata, smoothness numbers and the arrays),
<stem>.npz (the arrays), <stem>.png and <stem>.html (plotly) into --out.
Results come from the results cache when present (see dstab.cache).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path

from ..analysis import distributed, figures, interpolation, precompute, service
from ..analysis.directions import BIAS_MODES
from ..analysis.landscape import STRATEGIES, CostWarning
from ..device import resolve_device
from ..errors import require
from . import add_command, add_device_arg, add_threads_arg
from .output import result_stem, write_result
from .progress import Progress


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


def _write(result, stem: Path, source: str, shas: list, png, html) -> None:
    meta, arrays = result.to_record()
    figs = {".png": lambda path: png(result, path), ".html": lambda path: figures.write_html(html(result), path)}
    write_result(stem, {"source": source, **meta, "arrays": arrays}, arrays, shas, figs)
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


def _rank0() -> bool:
    return distributed.world()[0] == 0  # under torchrun only the first rank draws progress


def _what(probe: dict) -> str:
    return f"t{probe['timestep']}" if "timestep" in probe else probe["role"]


def run_surface(args) -> int:
    device = resolve_device(args.device)
    bundle = service.load(args.checkpoint, args.stage)
    probes = _probes(bundle, args)
    points = (args.grid + 1) ** 2 if args.engine != "dstab" else args.grid**2
    for probe in probes:
        with _cost_warnings_on_one_line(), Progress("surface", "points", _rank0()) as bars:
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
                progress=bars.counter(_what(probe), points),
            )
        if distributed.world()[0] == 0:
            stem = result_stem(args.out, ["surface", bundle.name, _what(probe)], [bundle.sha256])
            _write(s, stem, source, [bundle.sha256], figures.surface_png, figures.surface_figure)
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
        with _cost_warnings_on_one_line(), Progress("interpolate", "points", _rank0()) as bars:
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
                progress=bars.counter(_what(probe), points),
            )
        shas = [a.sha256, b.sha256]
        stem = result_stem(args.out, ["interpolate", a.name, b.name, _what(probe)], shas)
        _write(c, stem, source, shas, figures.curve_png, figures.curve_figure)
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
