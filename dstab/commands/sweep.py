"""`dstab sweep`: variants x seeds x `--set KEY=V1,V2,...` axes as queued background runs of one group."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from . import add_command

    p = add_command(
        sub,
        "sweep",
        description="Queue the product of variants (presets) x seeds x --set KEY=V1,V2,... axes as background runs "
        "of one group (see `dstab runs`); `dstab compare GROUP` reads them. KEY=V (one value) sets an option for "
        "every run. Keys: training options, dotted for nested ones, and beta0, floor, width, dataset.",
    )
    add_sweep_args(p, "baseline,mdlrc-clts", "sweep-<date>-<time>")
    p.set_defaults(func=run_sweep)


def add_sweep_args(p, variants: str, group: str) -> None:
    """The options `sweep` and `reproduce speedup` share."""
    p.add_argument("--variants", default=variants, help="comma-separated presets (default %(default)s)")
    p.add_argument("--seeds", default="3", help="a count N (seeds 0..N-1) or a list 0,1,5 (default %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2,...", help="an axis, or one fixed value")
    p.add_argument("--paper", action="store_true", help="the paper's lr, batch, EMA (scaled), beta0, floor, mu, sigma")
    p.add_argument("--group", default=None, help=f"the group's name (default {group})")
    p.add_argument("--dry-run", action="store_true", help="list the runs and where they depart from the paper")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda:N")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (default 1)")
    p.add_argument("--root", type=Path, default=None, help="workspace root (default: as for `dstab runs`)")


def seeds_arg(text: str) -> list[int]:
    from ..errors import DstabError

    try:
        parts = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise DstabError(f"--seeds takes a count or a comma-separated list of integers, got {text!r}") from None
    if len(parts) == 1 and "," not in text:
        return list(range(parts[0]))
    return parts


def plan_from_args(args):
    from ..experiments import sweep

    axes, fixed = sweep.split(args.set)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    return sweep.plan(variants, seeds_arg(args.seeds), axes, fixed, args.group, args.paper)


def run_sweep(args) -> int:
    from ..experiments import sweep

    group, planned = plan_from_args(args)
    if args.dry_run:
        notes = sweep.dry_check(planned, args.device, args.threads, args.root)  # what launching would refuse
        print("\n".join(sweep.describe(planned)))
        print("".join(f"note: {note}\n" for note in notes), end="")
        print(f"{len(planned)} runs in group {group} (dry run: nothing queued)")
        return 0
    statuses = sweep.launch(group, planned, args.device, args.threads, args.root)
    running = sum(s.state == "running" for s in statuses)
    print(
        f"queued {len(statuses)} runs in group {group} ({running} running now); follow with `dstab runs list`, "
        f"then `dstab compare {group}`"
    )
    return 0
