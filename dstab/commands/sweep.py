"""`dstab sweep`: variants x seeds x `--set KEY=V1,V2,...` axes as queued background runs of one group."""

from __future__ import annotations

import argparse
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
    add_sweep_args(p, "baseline,mdlrc-clts", "sweep-<date>-<time>", measure=False)
    p.set_defaults(func=run_sweep)


def add_sweep_args(p, variants: str | None, group: str, measure: bool = True) -> None:
    """The options `sweep` and `reproduce speedup` share; `measure`: whether a dry run times a few
    steps by default (sizing builds the model: PyTorch)."""
    default = f"default {variants}" if variants else "default per dataset"
    p.add_argument("--variants", default=variants, help=f"comma-separated presets ({default})")
    p.add_argument("--seeds", default="3", help="a count N (seeds 0..N-1) or a list 0,1,5 (default %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2,...", help="an axis, or one fixed value")
    p.add_argument("--paper", action="store_true", help="the paper's lr, batch, EMA (scaled), beta0, floor, mu, sigma")
    p.add_argument("--group", default=None, help=f"the group's name (default {group})")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs, where they depart from the paper, and their cost (a few timed steps here)",
    )
    p.add_argument(
        "--measure",
        action=argparse.BooleanOptionalAction,
        default=measure,
        help="dry run: also FLOPs, disk and device-hours from a few timed steps here (default %(default)s)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda:N")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (default 1)")
    p.add_argument(
        "--root",
        type=Path,
        action="append",
        default=None,
        help="runs root (default: as for `dstab runs`); a report (--report-only) may name several, read together",
    )
    add_launcher_args(p)


def split_roots(args, reading: bool) -> None:
    """`--root` given n times: `args.roots`, every root a report reads (a list when several), and
    `args.root`, the first: where a launch writes and a group's protocol record is kept. Launching
    takes one root."""
    from ..errors import require

    given = args.root or []
    require(
        reading or len(given) <= 1,
        f"--root was given {len(given)} times; launching writes to one runs root (several are for --report-only)",
    )
    args.roots = list(given) if len(given) > 1 else (given[0] if given else None)
    args.root = given[0] if given else None


def add_launcher_args(p) -> None:
    """Where each run trains: this machine's queue (one process or torchrun), or a Slurm job array."""
    g = p.add_argument_group("launchers")
    g.add_argument(
        "--launcher", choices=("local", "slurm"), default="local", help="local queue (default) or Slurm via submitit"
    )
    g.add_argument("--nproc", type=int, default=1, help="local: processes per run under torchrun (global batch kept)")
    g.add_argument("--partition", default=None, help="slurm: the partition")
    g.add_argument("--gpus-per-job", type=int, default=1, help="slurm: GPUs (torchrun processes) per run's job")
    g.add_argument("--cpus-per-job", type=int, default=None, help="slurm: CPUs per job (default: the cluster's)")
    g.add_argument("--time-min", type=int, default=24 * 60, help="slurm: the job's time limit; it requeues at it")
    g.add_argument(
        "--slurm-cluster",
        choices=("auto", "local", "debug"),
        default="auto",
        help="submitit's executor: auto (Slurm where sbatch is), local (this machine, to try the array out)",
    )


def launch_options(args) -> dict:
    """sweep.launch's keyword arguments for the launcher options."""
    from ..errors import require
    from ..runs import slurm, workspace_root

    if args.launcher == "local":
        require(args.partition is None, "--partition applies to --launcher slurm")
        return {"nproc": args.nproc}
    require(args.nproc == 1, "--nproc applies to the local launcher; a Slurm job runs --gpus-per-job processes")
    cluster = None if args.slurm_cluster == "auto" else args.slurm_cluster
    options = slurm.launcher(
        args.partition,
        args.gpus_per_job,
        args.time_min,
        args.device,
        workspace_root(args.root),
        cluster,
        args.cpus_per_job,
    )
    return {"slurm": options}


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

    split_roots(args, reading=False)
    group, planned = plan_from_args(args)
    if args.dry_run:
        dry_run(group, planned, args)
        return 0
    statuses = sweep.launch(group, planned, args.device, args.threads, args.root, **launch_options(args))
    print(launched_text(statuses, group, args.launcher))
    return 0


def launched_text(statuses, group: str, launcher: str) -> str:
    running = sum(s.state == "running" for s in statuses)
    where = "submitted to Slurm as one job array" if launcher == "slurm" else f"queued ({running} running now)"
    return f"{len(statuses)} runs of group {group} {where}; follow with `dstab runs list`, then `dstab compare {group}`"


def dry_run(group: str, planned, args) -> None:
    """What launching would refuse (the launch's own checks, downloading nothing), then the runs, the
    paper's values and every departure, and what the runs will cost here."""
    from .. import paper
    from ..experiments import cifar10, runcost, sweep

    notes = sweep.dry_check(planned, args.device, args.threads, args.root, **launch_options(args))
    print("\n".join(sweep.describe(planned)))
    print("".join(f"note: {note}\n" for note in notes), end="")
    if paper.is_cifar10(planned[0].config):
        print(cifar10.summary())
    nproc = launch_processes(args)
    est = runcost.estimate([(r.name, r.config) for r in planned], args.device, nproc, args.measure)
    print(COST_HEADER if args.measure else f"{COST_HEADER} (counts only; --measure adds FLOPs, disk, device-hours)")
    print("\n".join(f"  {line}" for line in runcost.lines(est)))
    for note in preflight_notes(planned) if args.measure else ():
        print(note)
    print(f"{len(planned)} runs in group {group} (dry run: nothing queued)")


COST_HEADER = "what the runs will cost:"


def launch_processes(args) -> int:
    """Processes (devices) each run holds: torchrun's, or one per GPU of a Slurm job (one on a CPU job)."""
    return max(1, args.gpus_per_job) if args.launcher == "slurm" else args.nproc


def preflight_notes(planned) -> list[str]:
    """What a launch would refuse, said by a dry run instead (it trains nothing)."""
    from ..analysis import fid
    from ..errors import DstabError

    try:
        weights = fid.preflight(planned[0].config)
    except DstabError as exc:
        return [f"note: a launch would stop here: {exc}"]
    return [f"FID weights: {weights}"] if weights else []
