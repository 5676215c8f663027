"""`dstab surface|interpolate|precompute`: loss surfaces and interpolation curves, headless.

Each writes <stem>.json (metadata, smoothness numbers and the arrays),
<stem>.npz (the arrays), <stem>.png and <stem>.html into --out: the figures
the Loss landscape and Interpolation pages draw (dstab.plots). Results come
from the results cache when present (see dstab.cache); options default to the
fields of the zoo's shipped specs (dstab.zooresults).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

from .. import budgets, distributed, plots, zoo, zooindex, zooresults
from ..analysis import results
from ..analysis.directions import BIAS_MODES
from ..analysis.interpolation import rise_over_end
from ..analysis.landscape import STRATEGIES, nonfinite_note
from ..analysis.specs import GAN_ROLES, SURFACE_ENGINES, SURFACE_PRECISIONS, ProbeSpec
from ..device import resolve_device
from ..fileio import writable_dir
from ..plots import curve as curve_plots
from ..plots import figpng
from ..plots import surface as surface_plots
from . import add_command, add_dataset_arg, add_device_arg, add_stage_arg, add_threads_arg, check_dataset_arg
from .output import result_stem, write_result
from .progress import bars, cost_warnings_on_one_line

SURFACE, CURVE = zooresults.SURFACE, zooresults.CURVE


def _probe_args(p) -> None:
    probe = SURFACE.probe
    add_stage_arg(p)
    p.add_argument(
        "--timestep",
        type=int,
        action="append",
        help=f"DM timestep to probe, repeatable; one result per timestep (default {list(zooresults.DM_TIMESTEPS)})",
    )
    p.add_argument("--role", choices=GAN_ROLES, action="append", help="GAN network to probe (default both)")
    p.add_argument("--batch-size", type=int, default=probe.batch_size, help=f"probe batch (default {probe.batch_size})")
    p.add_argument(
        "--probe-seed",
        type=int,
        default=probe.seed,
        help=f"seed of the probe's fixed batch and noise (default {probe.seed})",
    )
    add_dataset_arg(p)
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
    s.add_argument("--grid", type=int, default=SURFACE.grid, help=f"odd grid size (default {SURFACE.grid})")
    s.add_argument("--radius", type=float, default=SURFACE.radius, help=f"half-width r (default {SURFACE.radius})")
    s.add_argument("--seed", type=int, default=SURFACE.seed, help=f"direction seed (default {SURFACE.seed})")
    s.add_argument("--bias-mode", choices=BIAS_MODES, default=SURFACE.bias_mode, help="1-D parameters (Li et al.)")
    s.add_argument("--engine", choices=SURFACE_ENGINES, default=SURFACE.engine, help="dstab or loss-landscapes")
    s.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help="default: sequential on CPU, graph (the point loop as one captured CUDA graph) on CUDA",
    )
    s.add_argument(
        "--precision",
        choices=SURFACE_PRECISIONS,
        default=SURFACE.precision,
        help="fp32 (default), tf32 (CUDA tensor cores) or bf16 autocast",
    )
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
    i.add_argument("--lo", type=float, default=CURVE.lo, help=f"lowest alpha (default {CURVE.lo})")
    i.add_argument("--hi", type=float, default=CURVE.hi, help=f"highest alpha (default {CURVE.hi})")
    i.add_argument("--steps", type=int, default=CURVE.steps, help=f"points per unit of alpha (default {CURVE.steps})")
    _probe_args(i)
    i.set_defaults(func=run_interpolate)

    pc = add_command(
        sub,
        "precompute",
        description="Compute every default analysis (dstab.zooresults) for every zoo entry into the shipped "
        "cache, skipping results already there.",
    )
    pc.add_argument("--only", default=None, help=f"comma-separated tasks (default all: {', '.join(zooresults.TASKS)})")
    pc.add_argument("--entries", default=None, help="only zoo entries whose id contains this text")
    add_device_arg(pc)
    add_threads_arg(pc)
    pc.set_defaults(func=run_precompute)


def _probes(bundle, args) -> list[ProbeSpec]:
    common = {"batch_size": args.batch_size, "seed": args.probe_seed, "dataset": args.dataset}
    if bundle.kind == "dm" and not args.role:
        return [ProbeSpec(timesteps=(t,), **common) for t in (args.timestep or zooresults.DM_TIMESTEPS)]
    if bundle.kind == "gan" and not args.timestep:
        return [ProbeSpec(role=r, **common) for r in (args.role or GAN_ROLES)]
    return [ProbeSpec(timesteps=tuple(args.timestep or ()) or None, role=(args.role or [None])[0], **common)]


def _write(found, stem: Path, shas: list, png_fig, html_fig) -> None:
    """The result's JSON and NPZ, a page's figure as PNG (`figpng`: the look the page shows) and HTML."""
    record = {"source": found.source, **found.meta, "arrays": found.arrays}
    figures = {
        ".png": lambda path: figpng.write_png(png_fig, path),
        ".html": lambda path: plots.write_html(html_fig, path),
    }
    write_result(stem, record, found.arrays, shas, figures)
    print(f"{stem}.json/.npz/.png/.html ({found.source})")


def _what(probe: ProbeSpec) -> str:
    return f"t{probe.timesteps[0]}" if probe.timesteps else probe.role or "g"


def run_surface(args) -> int:
    budgets.check_count(args.grid**2, "DSTAB_MAX_GRID_POINTS", f"--grid {args.grid} (grid points)")
    check_dataset_arg(args)
    writable_dir(args.out, "--out")
    device = resolve_device(args.device)
    bundle = zoo.load_checkpoint(args.checkpoint, args.stage)
    rank0 = distributed.from_env().main
    for probe in _probes(bundle, args):
        spec = replace(
            SURFACE,
            probe=probe,
            grid=args.grid,
            radius=args.radius,
            seed=args.seed,
            bias_mode=args.bias_mode,
            engine=args.engine,
            precision=args.precision,
        )
        with cost_warnings_on_one_line(), bars(f"surface {_what(probe)}", enabled=rank0) as tick:
            found = results.get(spec, [bundle], tick, device, args.refresh, strategy=args.strategy)
        if rank0:
            a, b, loss = found.arrays["alphas"], found.arrays["betas"], found.arrays["loss"]
            view = surface_plots.views({"own": loss})["own"]  # the page's default scale: its own loss
            title = surface_plots.title(bundle.name, found.meta)
            contour, figure = surface_plots.contour(a, b, view, title), surface_plots.surface_3d(a, b, view, title)
            stem = result_stem(args.out, ["surface", bundle.name, _what(probe)], [bundle.sha256])
            _write(found, stem, [bundle.sha256], contour, figure)
            if note := nonfinite_note(bundle.name, loss):
                print(f"warning: {note}", file=sys.stderr)
            m = found.meta["metrics"]
            print(
                f"  centre loss {found.meta['centre_loss']:.5g}, relative rise {m['relative_rise']:.4g}, curvature "
                f"roughness {m['curvature_roughness']:.4g}, convex fraction {m['convex_fraction']:.3f}, "
                f"cosine {found.meta['cosine_before']:.2e} -> {found.meta['cosine_after']:.2e}"
            )
    return 0


def run_interpolate(args) -> int:
    span = abs(args.hi - args.lo) * max(args.steps, 0) if math.isfinite(args.hi - args.lo) else math.inf
    budgets.check_count(min(span, 1e18) + 1, "DSTAB_MAX_GRID_POINTS", "--steps x (--hi - --lo) (points)")
    check_dataset_arg(args)
    writable_dir(args.out, "--out")
    device = resolve_device(args.device)
    a = zoo.load_checkpoint(args.a, args.stage)
    b = zoo.load_checkpoint(args.b) if args.b else zoo.load_checkpoint(args.a, "early")
    for probe in _probes(a, args):
        spec = replace(CURVE, probe=probe, lo=args.lo, hi=args.hi, steps=args.steps)
        with cost_warnings_on_one_line(), bars(f"interpolate {_what(probe)}") as tick:
            found = results.get(spec, [a, b], tick, device, args.refresh)
        alphas = found.arrays["alphas"]
        rows = {a.kind: (a.name, found.meta, alphas, rise_over_end(alphas, found.arrays["loss"]))}
        shas = [a.sha256, b.sha256]
        stem = result_stem(args.out, ["interpolate", a.name, b.name, _what(probe)], shas)
        figure = curve_plots.curves(rows)
        _write(found, stem, shas, figure, figure)
        m = found.meta["metrics"]
        print(
            f"  loss b {found.meta['loss_b']:.5g} -> a {found.meta['loss_a']:.5g}, roughness {m['roughness']:.4g}, "
            f"barrier {m['barrier']:.4g}"
        )
    return 0


def run_precompute(args) -> int:
    only = [t.strip() for t in args.only.split(",") if t.strip()] if args.only else None
    zooindex.writable_zoo()  # the shipped cache is <zoo>/results
    with cost_warnings_on_one_line():
        n = zooresults.run(only, args.entries, resolve_device(args.device))
    print(f"{n} results in the shipped cache")
    return 0
