"""`dstab reproduce speedup`: the paper's speed-up experiment at small scale, as sweep + compare."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def register(sub) -> None:
    from ..experiments import speedup
    from . import add_command
    from .sweep import add_sweep_args

    p = add_command(sub, "reproduce")
    rsub = p.add_subparsers(dest="experiment", metavar="{speedup}", parser_class=type(p))
    rsub.required = True
    s = rsub.add_parser(
        "speedup",
        help="baseline vs the full method, its ablation and the lrc-only / lr-matched controls, with statistics",
        description=speedup.__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Queues the runs in the background (one group; see `dstab runs list`); when they have finished, "
        "rerun with --report-only to compare them and regenerate RESULTS.md's section.",
    )
    s.add_argument(
        "--dataset", default="digits", help="digits, toy2d[:variant], cifar10:PATH, or another dataset (default digits)"
    )
    add_sweep_args(s, None, "speedup-<dataset>")
    s.add_argument(
        "--paper-eval",
        action="store_true",
        help="CIFAR-10: the paper's FID protocol (FID-50k, ancestral sampling over all T steps, every 100k iterations)",
    )
    s.add_argument("--eval-every-images", type=int, default=None, help="evaluate every N images seen")
    s.add_argument("--report-only", action="store_true", help="compare the group's finished runs; train nothing")
    s.add_argument("--wait", action="store_true", help="after queueing, wait for the runs, then report")
    s.add_argument("--last-k", type=int, default=5, help="evaluations averaged for the baseline's plateau")
    s.add_argument("--results", type=Path, default=REPO / "RESULTS.md", help="markdown file whose section is rewritten")
    s.add_argument("--summary", type=Path, default=None, help="JSON summary (default results/speedup-<dataset>.json)")
    s.set_defaults(func=run_speedup)


def command_text(args) -> str:
    parts = ["python -m dstab reproduce speedup", f"--dataset {args.dataset}", f"--variants {variants_text(args)}"]
    parts += [f"--seeds {args.seeds}", *(f"--set '{t}'" for t in args.set), *(["--paper"] if args.paper else [])]
    parts += ["--paper-eval"] * args.paper_eval
    parts += [f"--eval-every-images {args.eval_every_images}"] if args.eval_every_images else []
    return " ".join(parts)


def variants_text(args) -> str:
    from ..experiments import speedup

    return args.variants or ",".join(speedup.default_variants(args.dataset))


def run_speedup(args) -> int:
    from .. import runs
    from ..analysis import fid
    from ..experiments import compare, speedup, sweep
    from . import compare as compare_cmd
    from .sweep import dry_run, launch_options, launched_text, seeds_arg

    variants = [v.strip() for v in variants_text(args).split(",") if v.strip()]
    group, planned = speedup.plan(
        args.dataset,
        variants,
        seeds_arg(args.seeds),
        args.set,
        args.group,
        args.paper,
        args.paper_eval,
        args.eval_every_images,
    )
    if args.dry_run:
        dry_run(group, planned, args)
        return 0
    if not args.report_only:
        options = launch_options(args)
        # after the launch's own checks, before anything is queued: no FID weights, or too few samples
        preflight = lambda: fid.preflight(planned[0].config)  # noqa: E731
        statuses = sweep.launch(group, planned, args.device, args.threads, args.root, **options, then=preflight)
        print(launched_text(statuses, group, args.launcher))
        if not args.wait:
            print(f"when they have finished: {command_text(args)} --report-only")
            return 0
        for r in planned:
            runs.wait(r.name, timeout=float("inf"), root=args.root)
    result = compare.compare(group, None, speedup.REFERENCE, args.last_k, args.root)
    family = args.dataset.split(":")[0]
    report_dir = runs.workspace_root(args.root).parent / "compare" / group
    compare_cmd.write_report(result, report_dir)
    figure = args.results.parent / "results" / f"speedup-{family}-curves.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    axis = "images" if family == "cifar10" else "iterations"  # the paper's CIFAR-10 claim is per image seen
    shutil.copyfile(report_dir / f"curves-{axis}.png", figure)
    rel = {"mean over seeds with 90% band, per-seed curves faint": str(figure.relative_to(args.results.parent))}
    body = speedup.section(result, command_text(args), rel)
    speedup.write_section(args.results, args.dataset, body)
    speedup.save_summary(args.summary or args.results.parent / "results" / f"speedup-{family}.json", result)
    speedup.save_run_summaries(group, args.results.parent / "results" / "speedup-runs", args.root)
    print(body)
    print(f"full report (figures vs iterations, images seen, wall-clock; HTML): {report_dir}")
    return 0
