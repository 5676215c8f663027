"""`dstab reproduce speedup`: the paper's speed-up experiment at small scale, as sweep + compare."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def register(sub) -> None:
    from ..experiments import speedup
    from . import add_command
    from .compare import add_protocol_arg
    from .sweep import add_sweep_args

    p = add_command(sub, "reproduce")
    rsub = p.add_subparsers(dest="experiment", metavar="{speedup}", parser_class=type(p))
    rsub.required = True
    s = rsub.add_parser(
        "speedup",
        help="baseline vs the full method, its ablation and the lrc-only / lr-matched controls, with statistics",
        description=speedup.__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The reference arm runs first and is extended until its plateau test fires on every seed (at most "
        "--max-steps); rerun the command to move on (it queues the other arms at the length decided), or use "
        "--wait. --report-only compares the group's finished runs (workspace and results/speedup-runs) and "
        "regenerates RESULTS.md's section. --confirm: a confirmation on fresh seeds with the protocol fixed "
        "before the runs, reported beside the exploration.",
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
    s.add_argument("--wait", action="store_true", help="after queueing, wait for the runs (every stage), then report")
    s.add_argument("--confirm", action="store_true", help="a confirmation group (default speedup-<dataset>-confirm)")
    s.add_argument("--exploration", default=None, help="the exploration group --confirm is checked and shown against")
    s.add_argument("--fixed-length", action="store_true", help="every arm at once at the setup's length")
    s.add_argument("--max-steps", type=int, default=None, help="the reference's longest extension (default 4x)")
    s.add_argument(
        "--head-to-head",
        action="store_true",
        help="with --report-only: the section 'CLTS against today's timestep rules' (every named arm against the "
        "reference, CLTS against each other rule, the P(t) picture) instead of the speed-up section",
    )
    add_protocol_arg(s)
    s.set_defaults(variants=None)  # launching: the default variants; reporting: every variant of the group
    variants = next(a for a in s._actions if a.dest == "variants")
    variants.help = (
        f"comma-separated presets (launch: the dataset's default, {','.join(speedup.DEFAULT_VARIANTS)} for digits, "
        f"{','.join(speedup.default_variants('cifar10'))} for cifar10; report: all)"
    )
    s.add_argument(
        "--summaries",
        type=Path,
        default=None,
        help="run summary folder (default: results/speedup-runs beside --results)",
    )
    s.add_argument("--results", type=Path, default=REPO / "RESULTS.md", help="markdown file whose section is rewritten")
    s.add_argument("--summary", type=Path, default=None, help="JSON summary (default results/speedup-<group>.json)")
    s.add_argument("--out", type=Path, default=None, help="folder for the full reports (default workspace/compare)")
    s.set_defaults(func=run_speedup)


def command_text(args) -> str:
    parts = ["python -m dstab reproduce speedup", f"--dataset {args.dataset}"]
    parts += [f"--variants {args.variants}"] if args.variants else []
    parts += [f"--seeds {args.seeds}", *(f"--set '{t}'" for t in args.set), *(["--paper"] if args.paper else [])]
    parts += ["--paper-eval"] * args.paper_eval
    parts += [f"--eval-every-images {args.eval_every_images}"] if args.eval_every_images else []
    return " ".join(parts + (["--confirm"] if args.confirm else []) + (["--head-to-head"] if args.head_to_head else []))


def _variants(args) -> list[str] | None:
    return [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None


def _groups(args) -> tuple[str, str]:
    """(the group this command launches or reports, the exploration group it is shown against)."""
    from ..experiments import speedup

    exploration = args.exploration or speedup.default_group(args.dataset)
    if args.confirm:
        return args.group or speedup.confirm_group(args.dataset), exploration
    return args.group or speedup.default_group(args.dataset), exploration


def _protocol(args, group: str):
    """The group's fixed protocol (a confirmation's may not be overridden), else the defaults with
    the user's --protocol changes."""
    from ..errors import require
    from ..experiments.protocol import Protocol, for_group
    from .compare import protocol_changes

    fixed = for_group(group, args.root)
    changes = protocol_changes(args.protocol)
    if args.confirm:
        require(not changes, "--protocol cannot change a confirmation's readouts: they are fixed before its runs")
        return fixed[0] if fixed else Protocol()
    return (fixed[0] if fixed else Protocol()).replace(**changes)


def _confirm(args, group: str, exploration: str, seeds: list[int], variants: list[str], p) -> None:
    """Refuse seeds that an earlier run of the exploration or of this group used (this command's own,
    rerun to move its stages on, excepted), then fix the protocol with the group before any run."""
    from ..errors import require
    from ..experiments import protocol as proto
    from ..experiments.groupruns import seeds_of

    record = proto.read_record(group, args.root) or {}
    own = set(record.get("seeds", []))
    for g, mine in ((exploration, set()), (group, own)):
        used = seeds_of(g, args.root, args.summaries) - mine
        overlap = sorted(set(seeds) & used)
        require(
            not overlap,
            f"seeds {overlap} were already run in group {g!r} (its seeds: {sorted(used | mine)}); a confirmation "
            "needs seeds that no earlier run of the experiment used: pick others",
        )
    proto.store(group, args.root, p, exploration=exploration, variants=variants)
    record = proto.read_record(group, args.root)
    record["seeds"] = sorted(own | set(seeds))
    proto.write_record(group, args.root, record)


def run_speedup(args) -> int:
    from .. import runs
    from ..analysis import fid
    from ..errors import require
    from ..experiments import runlength, speedup, sweep
    from .sweep import dry_run, launch_options, launched_text, seeds_arg, split_roots

    split_roots(args, reading=args.report_only)
    require(
        not args.head_to_head or (args.report_only and args.variants),
        "--head-to-head reports arms already trained: add --report-only and name its arms with --variants",
    )
    group, exploration = _groups(args)
    args.summaries = args.summaries or args.results.parent / "results" / "speedup-runs"
    variants = _variants(args) or list(speedup.default_variants(args.dataset))
    seeds = seeds_arg(args.seeds)

    def plan(names, sets):
        extra = (args.paper_eval, args.eval_every_images)
        return speedup.plan(args.dataset, names, seeds, sets, group, args.paper, *extra)[1]

    planned = plan(variants, args.set)
    p = _protocol(args, group)
    if args.dry_run:
        dry_run(group, planned, args)
        return 0
    if not args.report_only:
        options = launch_options(args)
        # after the launch's own checks, before anything is queued: no FID weights, or too few samples
        options["then"] = lambda: fid.preflight(planned[0].config)
        if args.confirm:
            _confirm(args, group, exploration, seeds, variants, p)
        if args.fixed_length or speedup.fixed_length(args.dataset):
            statuses = sweep.launch(group, planned, args.device, args.threads, args.root, **options)
            print(launched_text(statuses, group, args.launcher))
            if not args.wait:
                print(f"when they have finished: {command_text(args)} --report-only")
                return 0
            for r in planned:
                runs.wait(r.name, timeout=float("inf"), root=args.root)
        else:
            maximum = args.max_steps or 4 * planned[0].config["steps"]

            def replan(n):
                return [r for r in plan(variants, [*args.set, f"steps={n}"]) if r.variant != p.reference]

            def launch(rs):
                statuses = sweep.launch(group, rs, args.device, args.threads, args.root, **options)
                print(launched_text(statuses, group, args.launcher))

            while True:
                stage, message = runlength.advance(group, planned, replan, p, maximum, args.root, launch)
                print(message)
                if stage == "complete":
                    break
                if not args.wait:
                    print(f"rerun to move on: {command_text(args)}" + (" --wait" if stage != "complete" else ""))
                    return 0
                for st in runs.list_runs(args.root):
                    if st.group == group and st.active:
                        runs.wait(st.name, timeout=float("inf"), root=args.root)
    return report(args, group, exploration, p)


def head_to_head(args, group: str, p) -> int:
    """The section 'CLTS against today's timestep rules': every named arm against the reference (the
    pre-registered Holm family), CLTS against each other rule (secondary), the P(t) picture of the arms
    as their runs trained them, on their schedule."""
    from .. import resultsmd, runs
    from ..experiments import compare, headtohead, speedup
    from ..experiments.protocol import preregistered
    from ..plots import timesteps as pt_figures
    from ..training import config as train_config
    from ..training import timestep_field
    from .sweep import seeds_arg

    variants = _variants(args)
    out_dir = args.results.parent / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    speedup.save_run_summaries(group, args.summaries, args.roots)
    pairs = headtohead.secondary_pairs(variants, p.reference)
    result = compare.compare(group, p, args.roots, args.summaries, variants=variants, secondary=pairs)
    stem = f"{group}-h2h"
    reports = args.out or runs.workspace_root(args.root).parent / "compare"
    figures = _figures(result, reports / stem, out_dir, args, stem)
    trained = result["variants"]
    arms = {a: trained.get(a) or train_config.resolve(a, networks=False) for a in variants}
    drawn, options, why = headtohead.picture_arms(arms, timestep_field.field_presets())
    picture, png = None, None
    if drawn:
        diffusion = trained[p.reference]["diffusion"]
        picture = timestep_field.field(diffusion, drawn, int(result["run_steps"]), options)
        dest = out_dir / f"{stem}-timesteps.png"
        pt_figures.save_png(picture, dest, "effective")
        png = str(dest.relative_to(args.results.parent))
    body = headtohead.section(
        result,
        variants,
        picture,
        why,
        command_text(args),
        seeds_arg(args.seeds),
        preregistered(group),
        figures,
        png,
    )
    meta = {"arms": variants, "planned": seeds_arg(args.seeds), "command": command_text(args)}
    speedup.save_summary(out_dir / f"{stem}.json", {**result, "head_to_head": meta})
    resultsmd.write_section(args.results, speedup.section_name(args.dataset) + " --head-to-head", body)
    print(body)
    return 0


def report(args, group: str, exploration: str, p) -> int:
    from .. import runs
    from ..errors import DstabError
    from ..experiments import compare, speedup
    from .sweep import seeds_arg

    family = args.dataset.split(":")[0]
    reports = args.out or runs.workspace_root(args.root).parent / "compare"
    out_dir = args.results.parent / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.head_to_head:
        return head_to_head(args, group, p)
    for g in dict.fromkeys([group, exploration] if args.confirm else [group]):
        speedup.save_run_summaries(g, args.summaries, args.roots)
    variants = _variants(args)
    if not args.confirm:
        result = compare.compare(group, p, args.roots, args.summaries, variants=variants)
        figures = _figures(result, reports / group, out_dir, args, f"speedup-{family}")
        body = speedup.section(result, command_text(args), figures)
        speedup.save_summary(args.summary or out_dir / f"speedup-{family}.json", result)
    else:
        try:
            conf = compare.compare(group, p, args.roots, args.summaries, variants=variants)
            waiting = None
        except DstabError as exc:
            conf, waiting = None, _progress(group, args, str(exc))
        try:
            expl = compare.compare(
                exploration, compare.exploration_protocol(p), args.roots, args.summaries, variants=variants
            )
        except DstabError:
            expl = None
        if conf is None and expl is None:
            raise DstabError(f"neither {group!r} nor {exploration!r} has complete runs to report: {waiting}")
        figures = {r["group"]: _figures(r, reports / r["group"], out_dir, args) for r in (expl, conf) if r}
        planned = seeds_arg(args.seeds)
        body = speedup.confirm_section(conf, expl, command_text(args), figures, waiting, planned, variants)
        for r in (expl, conf):
            if r:
                speedup.save_summary(out_dir / f"{r['group']}.json", r)
    speedup.write_section(args.results, args.dataset, body)
    print(body)
    return 0


def _progress(group: str, args, why: str) -> str:
    from ..errors import DstabError
    from ..experiments import groupruns

    try:
        done, notes = groupruns.load(group, args.roots, args.summaries)
    except DstabError:
        return f"{why}"
    states = {}
    for n in notes:
        states[n["state"]] = states.get(n["state"], 0) + 1
    parts = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    text = f"group `{group}`: {len(done)} of {len(done) + len(notes)} runs finished ({parts})"
    return text + (f" ({why})" if done else "")


def _figures(result: dict, report_dir: Path, out_dir: Path, args, stem: str | None = None) -> dict[str, str]:
    """The group's full report in `report_dir`, its figures vs iterations (images seen for CIFAR-10,
    whose paper claim is per image) and CPU seconds copied beside RESULTS.md as `<stem>-curves*.png`
    (default the group's name); returns {caption: path relative to RESULTS.md}."""
    from . import compare as compare_cmd

    stem = stem or result["group"]
    first = "images" if args.dataset.split(":")[0] == "cifar10" else "iterations"
    files = compare_cmd.write_report(result, report_dir, (first, "cpu"))
    out = {}
    for axis in (first, "cpu"):
        name = files.get(axis)
        if not name:
            continue
        dest = out_dir / f"{stem}-curves{'' if axis == first else '-' + axis}.png"
        shutil.copyfile(report_dir / name, dest)
        caption = f"{stem}: mean over seeds with 90% t-band, seeds faint, ladder and floor, vs {axis}"
        out[caption] = str(dest.relative_to(args.results.parent))
    return out
