"""`dstab trajectory CHECKPOINT -o DIR`: a DM's reverse process, its x0 estimate at every sampler step.

The Diffusion-process page's "Reverse" section, headless: the same
TrajectorySpec, the same cache entry and the same figures (dstab.plots.trajectory).
Writes trajectory.json (settings and, per step, how far the x0 estimate is
from the final sample), trajectory.npz (t, x0_hat, final), trajectory.html
and trajectory.png (that distance), and trajectory_strip.png (the first
sample's x0 estimate at 8 steps; images only).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import plots, zoo
from ..analysis import results
from ..analysis.specs import DM_SAMPLERS, TrajectorySpec
from ..analysis.trajectory import trajectory_rows
from ..device import resolve_device
from ..fileio import atomic_write_bytes, atomic_writer, save_with
from ..plots import figpng
from ..plots import trajectory as trajectory_plots
from . import add_command, add_device_arg, add_threads_arg
from .progress import bars

SPEC = TrajectorySpec()


def register(sub) -> None:
    p = add_command(
        sub,
        "trajectory",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("checkpoint", help="a DM checkpoint file or zoo id such as digits/dm-eps-s0")
    p.add_argument("-o", "--output", required=True, type=Path, help="folder for the JSON, NPZ, HTML and PNGs")
    p.add_argument("--sampler", choices=DM_SAMPLERS, default=SPEC.sampler, help=f"default {SPEC.sampler}")
    p.add_argument("--steps", type=int, default=SPEC.steps, help=f"DDIM steps (default {SPEC.steps}; DDPM: all T)")
    p.add_argument("--seed", type=int, default=SPEC.seed, help=f"sampling seed (default {SPEC.seed})")
    p.add_argument("-n", "--num", type=int, default=SPEC.n, help=f"samples (default {SPEC.n})")
    p.add_argument("--stage", choices=["final", "early"], default="final", help="zoo checkpoint stage")
    p.add_argument("--refresh", action="store_true", help="recompute even when a cached result exists")
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    bundle = zoo.load_checkpoint(args.checkpoint, args.stage)
    spec = TrajectorySpec(args.sampler, args.steps, args.seed, args.num)
    spec.check([bundle])
    spec = spec.for_bundle(bundle)
    with bars("trajectory") as tick:
        found = results.get(spec, [bundle], tick, resolve_device(args.device), args.refresh)
    rows = trajectory_rows(found.arrays["t"], found.arrays["x0_hat"])
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    record = {"checkpoint": bundle.name, "params": found.params, "source": found.source, "rows": rows}
    # each file complete or absent (temporary name, then renamed): a full disk leaves no half of one
    atomic_write_bytes(out / "trajectory.json", (json.dumps(record, indent=1) + "\n").encode())
    with atomic_writer(out / "trajectory.npz") as f:
        np.savez(f, **found.arrays)
    figure = trajectory_plots.distance(rows, int(found.arrays["t"][-1]))  # the page's figure
    plots.write_html(figure, out / "trajectory.html")
    figpng.write_png(figure, out / "trajectory.png")
    if found.arrays["x0_hat"].ndim == 5:
        save_with(out / "trajectory_strip.png", trajectory_plots.strip(found.arrays["x0_hat"])[0].save)
    last = rows[-1]
    print(
        f"{bundle.name} [{spec.sampler}, {len(rows)} steps, seed {spec.seed}, {found.source}]: x0 estimate "
        f"{rows[0]['rms_to_final']:.4g} from the final sample at t = {rows[0]['t']}, {last['rms_to_final']:.3g} "
        f"at t = {last['t']}"
    )
    print(out)
    return 0
