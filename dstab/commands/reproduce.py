"""`dstab reproduce speedup`: the paper's speedup experiment at small scale."""

from __future__ import annotations

from pathlib import Path

from ..device import resolve_device
from ..errors import require
from ..experiments import speedup
from . import add_command, add_device_arg, add_threads_arg

REPO = Path(__file__).resolve().parents[2]


def register(sub) -> None:
    p = add_command(sub, "reproduce")
    rsub = p.add_subparsers(dest="experiment", metavar="{speedup}", parser_class=type(p))
    rsub.required = True
    s = rsub.add_parser(
        "speedup",
        help="baseline vs MD, MD+LRC, MDLRC+CLTS and the lrc-only control on digits",
        description=speedup.__doc__.split("\n\n")[0],
    )
    s.add_argument("--out", type=Path, default=REPO / "workspace" / "speedup", help="folder for the run directories")
    s.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    s.add_argument("--steps", type=int, default=speedup.Setup.steps)
    s.add_argument("--eval-every", type=int, default=speedup.Setup.eval_every)
    s.add_argument("--eval-samples", type=int, default=speedup.Setup.eval_samples)
    s.add_argument("--sampler-steps", type=int, default=speedup.Setup.eval_sampler_steps, help="DDIM steps for FD")
    s.add_argument("--results", type=Path, default=REPO / "RESULTS.md", help="markdown file to update")
    s.add_argument(
        "--only-variant",
        choices=speedup.VARIANTS,
        default=None,
        help="train only this variant's runs (all seeds) and skip the report: run one process per variant, "
        "then one with --report-only",
    )
    s.add_argument("--report-only", action="store_true", help="summarise the finished runs in --out; train nothing")
    add_threads_arg(s, default=1, why=": one keeps the runs reproducible")
    add_device_arg(s)
    s.set_defaults(func=run_speedup)


def run_speedup(args) -> int:
    require(args.seeds >= 1, "--seeds must be >= 1")
    setup = speedup.Setup(
        steps=args.steps,
        eval_every=args.eval_every,
        eval_samples=args.eval_samples,
        eval_sampler_steps=args.sampler_steps,
    )
    seeds = list(range(args.seeds))
    if args.only_variant is not None:
        speedup.run_all(args.out, seeds, setup, [args.only_variant], resolve_device(args.device))
        return 0
    if not args.report_only:
        speedup.run_all(args.out, seeds, setup, device=resolve_device(args.device))
    summary = speedup.summarise(args.out, seeds)
    summary["setup"] = setup.__dict__
    speedup.save_summary(args.out, summary)
    section = speedup.report(summary, setup, f"fd_local@{setup.eval_samples}x{setup.eval_sampler_steps}ddim")
    speedup.write_section(args.results, section)
    print(section)
    return 0
