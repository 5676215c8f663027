"""`dstab compare GROUP`: four readouts of a speed-up with intervals and one verdict per comparison."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    from . import add_command

    p = add_command(
        sub,
        "compare",
        description="Compare the finished runs of one group (e.g. a `dstab sweep`): per seed pair the ladder "
        "crossings, area under the log curve, final level and time to the run's own plateau; Student-t 90%% "
        "intervals (BCa at n >= 10), t-test p Holm-adjusted across the report, the exact sign-flip p with its floor "
        "beside it; one verdict per "
        "comparison; time in CPU seconds, and wall-clock only for arms run side by side; the metric's floor and "
        "noise. The group's stored protocol is used when it has one. Writes compare.md, compare.json and "
        "curves-*.png / .html to --out.",
    )
    p.add_argument("group")
    p.add_argument("--metric", default=None, help="metric name or kind (default: mmd2 for 2-D data, else FD/FID)")
    p.add_argument("--reference", default=None, help="the variant readouts are measured against (default baseline)")
    p.add_argument("--variants", default=None, help="comma-separated: compare only these (default every variant)")
    add_protocol_arg(p)
    p.add_argument("--summaries", type=Path, default=None, help="also read run summary files of the group from here")
    p.add_argument("--out", type=Path, default=None, help="folder for the report (default workspace/compare/GROUP)")
    p.add_argument(
        "--root",
        type=Path,
        action="append",
        default=None,
        help="runs root (default: as for `dstab runs`); name several to read their runs of the group together",
    )
    p.set_defaults(func=run_compare)


def add_protocol_arg(p) -> None:
    p.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a readout definition for exploration, e.g. final_k=5, smooth_window=3, "
        "ladder_fractions=[0.25,0.5,0.75] (a confirmation group's stored protocol cannot be changed)",
    )


def protocol_changes(texts: list[str]) -> dict:
    """'final_k=5' -> {'final_k': 5}: values are JSON (a bare word is a string)."""
    from ..errors import require
    from ..experiments.protocol import Protocol

    known = set(Protocol.__dataclass_fields__)
    out = {}
    for t in texts:
        key, sep, raw = t.partition("=")
        require(sep and key in known, f"--protocol takes KEY=VALUE with KEY one of {sorted(known)}, got {t!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def write_report(result: dict, out: Path, png_axes=("iterations", "cpu")) -> dict[str, str]:
    """compare.json, compare.md and the figures in `out`: PNG vs `png_axes` (iterations and CPU seconds,
    when the runs recorded them), HTML for every axis. Returns {axis: PNG file name}."""
    from ..experiments import verdict
    from ..experiments.compare import AXES
    from ..fileio import atomic_write_bytes
    from ..plots import compare as figures
    from ..plots import write_html

    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for axis in AXES:
        fig = figures.curves_figure(result, axis)
        write_html(fig, out / f"curves-{axis}.html")
        if axis in png_axes and figures.available_axis(result, axis) == axis:
            files[axis] = figures.curves_png(result, axis, out / f"curves-{axis}.png").name
    atomic_write_bytes(out / "compare.json", (json.dumps(result, indent=1) + "\n").encode())
    atomic_write_bytes(out / "compare.md", verdict.markdown(result, {f"vs {a}": f for a, f in files.items()}).encode())
    return files


def run_compare(args) -> int:
    from .. import runs
    from ..experiments import compare, verdict
    from ..experiments.protocol import Protocol, for_group
    from .sweep import split_roots

    split_roots(args, reading=True)
    fixed = for_group(args.group, args.root)
    changes = protocol_changes(args.protocol)
    if fixed and changes:
        print(f"note: group {args.group} has a fixed protocol ({fixed[1]}); --protocol changes it for this report only")
    base = fixed[0] if fixed else Protocol()
    protocol = base.replace(**changes, metric=args.metric, reference=args.reference)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    result = compare.compare(args.group, protocol, args.roots, args.summaries, variants=variants)
    out = args.out or runs.workspace_root(args.root).parent / "compare" / args.group
    write_report(result, out)
    print(verdict.markdown(result))
    print(f"wrote {out}/compare.md, compare.json, curves-*.png, curves-*.html")
    return 0
