"""`dstab compare GROUP`: curves, speed-ups with intervals and a verdict for the runs of one group."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from . import add_command

    p = add_command(
        sub,
        "compare",
        description="Compare the finished runs of one group (e.g. a `dstab sweep`): mean curves over seeds with "
        "bootstrap 90%% bands, speed-ups at the reference's plateau and easier targets, and a verdict. "
        "Writes compare.md, compare.json and curves-*.png / .html to --out.",
    )
    p.add_argument("group")
    p.add_argument("--metric", default=None, help="metric name or kind (default: mmd2 for 2-D data, else FD/FID)")
    p.add_argument("--reference", default="baseline", help="the variant speed-ups are measured against")
    p.add_argument("--last-k", type=int, default=5, help="evaluations averaged for the reference's plateau")
    p.add_argument("--out", type=Path, default=None, help="folder for the report (default workspace/compare/GROUP)")
    p.add_argument("--root", type=Path, default=None, help="workspace root (default: as for `dstab runs`)")
    p.set_defaults(func=run_compare)


def write_report(result: dict, out: Path) -> dict[str, str]:
    """compare.json, compare.md and the figures in `out`; returns the figure files by name."""
    import json

    from ..experiments import verdict
    from ..experiments.compare import AXES
    from ..fileio import atomic_write_bytes
    from ..plots import compare as figures
    from ..plots import figpng, write_html

    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for axis in AXES:
        figure = figures.curves_figure(result, axis)  # the page's figure, as PNG and HTML
        files[f"vs {axis}"] = figpng.write_png(figure, out / f"curves-{axis}.png").name
        write_html(figure, out / f"curves-{axis}.html")
    atomic_write_bytes(out / "compare.json", (json.dumps(result, indent=1) + "\n").encode())
    atomic_write_bytes(out / "compare.md", verdict.markdown(result, files).encode())
    return files


def run_compare(args) -> int:
    from .. import runs
    from ..experiments import compare, verdict

    result = compare.compare(args.group, args.metric, args.reference, args.last_k, args.root)
    out = args.out or runs.workspace_root(args.root).parent / "compare" / args.group
    write_report(result, out)
    print(verdict.markdown(result))
    print(f"wrote {out}/compare.md, compare.json, curves-*.png, curves-*.html")
    return 0
