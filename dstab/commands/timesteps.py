"""`dstab timesteps -o DIR`: every preset's distribution over t on one schedule (the Training page's picture).

The schedule is a model's (`--model`: a DM checkpoint file or zoo id) or the presets' own (linear,
T = 1000, eps-prediction), with `--schedule`, `--T` and `--prediction` overriding it. Writes
timesteps.json (per preset: the rule's formula, the mass below T/2 and mean t in both views),
timesteps.csv (t and every preset's probability in the chosen view), timesteps.html and
timesteps.png, and prints the table.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import require
from ..fileio import write_json
from . import add_command


def register(sub) -> None:
    p = add_command(sub, "timesteps", description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("-o", "--output", required=True, type=Path, help="folder for the JSON, CSV, HTML and PNG")
    p.add_argument("--model", help="take the schedule of this DM (checkpoint file or zoo id, e.g. digits/dm-eps-s0)")
    p.add_argument("--schedule", choices=["linear", "cosine"], help="noise schedule (default: the model's or linear)")
    p.add_argument("--T", type=int, dest="T", help="diffusion steps (default: the model's or 1000)")
    p.add_argument("--prediction", choices=["eps", "x0"], help="how eps weights apply (default: the model's or eps)")
    p.add_argument("--view", choices=["effective", "draws"], default="effective", help="default %(default)s")
    p.add_argument("--steps", type=int, help="run length CLTS's target is a share of (default: the presets')")
    p.add_argument("--presets", help="comma-separated presets (default: every preset with its own timestep rule)")
    p.add_argument("--log-y", action="store_true", help="log-scale probability axis")
    p.set_defaults(func=run)


def diffusion_config(args) -> dict:
    """The model's diffusion config (or the presets'), with the command line's overrides."""
    from ..training import config as train_config

    if args.model:
        from .. import zoo

        bundle = zoo.load_checkpoint(args.model)
        require(bundle.kind == "dm", f"{args.model} is a {bundle.kind.upper()}; the picture needs a DM's schedule")
        cfg = bundle.diffusion.to_config()
    else:
        cfg = dict(train_config.BASE["diffusion"])
    for key in ("schedule", "T", "prediction"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


def run(args) -> int:
    from .. import plots
    from ..plots import timesteps as figures
    from ..training import timestep_field

    require(args.steps is None or args.steps >= 1, f"--steps must be >= 1, got {args.steps}")
    presets = [p.strip() for p in args.presets.split(",") if p.strip()] if args.presets else None
    result = timestep_field.field(diffusion_config(args), presets, args.steps)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    summary = timestep_field.summary_rows(result)
    write_json(out / "timesteps.json", {"schedule": result["schedule"], "view": args.view, "presets": summary})
    curves = timestep_field.curve_rows(result, args.view)
    with open(out / "timesteps.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(curves[0]))
        writer.writeheader()
        writer.writerows(curves)
    plots.write_html(figures.figure(result, args.view, args.log_y), out / "timesteps.html")
    figures.save_png(result, out / "timesteps.png", args.view, args.log_y)
    half = f"P(t<{result['T'] / 2:g})"
    print(f"{'preset':<14} {half + ' eff.':>14} {'mean t eff.':>11} {half + ' draws':>15} {'mean t draws':>12}  kind")
    for r in result["rows"]:
        print(
            f"{r['preset']:<14} {r['effective_below_half']:>14.4f} {r['effective_mean_t']:>11.1f} "
            f"{r['draws_below_half']:>15.4f} {r['draws_mean_t']:>12.1f}  {r['kind']}"
        )
    print(f"wrote {out}/timesteps.json, .csv, .html, .png")
    return 0
