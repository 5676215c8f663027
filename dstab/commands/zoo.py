"""`dstab zoo build|list|measure|census`: the embedded zoo, its collapse records and the seed census."""

from __future__ import annotations

from pathlib import Path

from .. import census, resultsmd, zoo, zooindex
from ..device import resolve_device
from ..errors import require
from . import add_command, add_device_arg, add_threads_arg


def register(sub) -> None:
    p = add_command(sub, "zoo", description=zoo.__doc__.split("\n\n")[0])
    zsub = p.add_subparsers(dest="zoo_command", metavar="{build,list,measure,census}", parser_class=type(p))
    zsub.required = True
    b = zsub.add_parser(
        "build",
        help="train the zoo (about half an hour on 2 CPU cores)",
        description="Train every zoo run (or those whose id contains --only) and write "
        "checkpoints, sample grids and manifest.json. Reproducible: seeds and configs are fixed.",
    )
    b.add_argument("--root", type=Path, default=None, help="output folder (default: $DSTAB_ZOO, else checkpoints/)")
    b.add_argument("--only", default=None, help="build only entries whose id contains this text, e.g. digits/gan")
    b.add_argument("--scale", type=float, default=1.0, help="multiply all step counts (e.g. 0.01 for a smoke test)")
    add_threads_arg(b)
    add_device_arg(b)
    b.set_defaults(func=run_build)
    ls = zsub.add_parser("list", help="list the zoo's entries", description="List the zoo's entries from its manifest.")
    ls.add_argument("--root", type=Path, default=None)
    ls.add_argument(
        "--verify", action="store_true", help="also check every file's sha256 and every entry's collapse record"
    )
    ls.add_argument("--all", action="store_true", help="list the runs `zoo build` knows, built or not")
    ls.set_defaults(func=run_list)
    m = zsub.add_parser(
        "measure",
        help="record each entry's mode collapse in the manifest",
        description="Draw each built entry's fixed collapse samples (toy2d: mode coverage and precision; digits: "
        "the digit classifier's confident share and class entropy) and record them, with the collapsed flag "
        "and its rule, in manifest.json. Checkpoints are not touched; `zoo build` measures what it trains.",
    )
    m.add_argument("--root", type=Path, default=None)
    m.add_argument("--only", default=None, help="only entries whose id contains this text")
    m.add_argument("--force", action="store_true", help="measure entries that already have a record, too")
    add_threads_arg(m)
    add_device_arg(m)
    m.set_defaults(func=run_measure)
    c = zsub.add_parser(
        "census",
        help="train many seeds of the toy2d DM and GAN recipes and count the collapsed ones",
        description=" ".join(census.__doc__.split("\n\n")[1].split()),
    )
    c.add_argument("--seeds", type=int, default=census.DEFAULT_SEEDS, help="seeds per kind (default 16)")
    c.add_argument("--scale", type=float, default=1.0, help="multiply the recipes' step counts (tests: 0.01)")
    c.add_argument("--out", type=Path, default=None, help="JSON and figure folder (default <zoo>/results/census)")
    c.add_argument("-o", "--output", type=Path, default=Path("RESULTS.md"), help="RESULTS.md to write its section into")
    c.add_argument("--jobs", type=int, default=1, help="seeds trained at once, one process each (default 1)")
    c.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the RESULTS.md section from the stored census JSON; train nothing",
    )
    add_threads_arg(c)
    add_device_arg(c)
    c.set_defaults(func=run_census)


def run_build(args) -> int:
    require(args.scale > 0, "--scale must be > 0")
    zoo.build(zooindex.writable_zoo(args.root), args.only, args.scale, resolve_device(args.device))
    return 0


def run_measure(args) -> int:
    n = zoo.measure(zooindex.writable_zoo(args.root), args.only, args.force, resolve_device(args.device))
    print(f"{n} entries measured")
    return 0


def run_census(args) -> int:
    require(args.scale > 0, "--scale must be > 0")
    require(args.seeds >= 1, "--seeds must be >= 1")
    require(args.jobs >= 1, "--jobs must be >= 1")
    if args.out is None and not args.report_only:
        zooindex.writable_zoo()  # its results/census is the default --out
    if args.report_only:
        record = census.load(root=args.out)
        require(record is not None, "no stored census: run `python -m dstab zoo census` first (or give its --out)")
    else:
        record = census.run(args.seeds, "toy2d", args.scale, args.out, resolve_device(args.device), jobs=args.jobs)
    resultsmd.write_section(args.output, census.SECTION, census.markdown(record))
    print(census.headline(record))
    return 0


def run_list(args) -> int:
    if args.all:
        for spec in zoo.specs():
            print(f"{spec.id:24s} {spec.config.kind:4s} {spec.config.steps:6d} steps  groups={','.join(spec.groups)}")
        return 0
    manifest = zoo.read_manifest(args.root)
    head = f"{'id':24s} {'kind':4s} {'pred':4s} {'seed':>4s} {'steps':>6s} {'loss':>8s} {'wall s':>7s}"
    print(f"{head} {'modes':>5s}  stages")
    for eid, e in sorted(manifest["entries"].items()):
        stages = ",".join(f"{k}@{v['step']}" for k, v in sorted(e["checkpoints"].items()))
        c = e.get("collapse")
        modes = f"{c['coverage']}/{c['modes']}{'!' if c['collapsed'] else ''}" if c else "?"
        print(
            f"{eid:24s} {e['kind']:4s} {e['prediction'] or '-':4s} {e['seed']:4d} {e['steps']:6d} "
            f"{e['loss_last']:8.4f} {e['wall_time_s']:7.1f} {modes:>5s}  {stages}"
        )
    print(
        f"{len(manifest['entries'])} entries in {zoo.zoo_root() if args.root is None else args.root}; "
        "modes: covered/total, ! = collapsed (`zoo measure`)"
    )
    if args.verify:
        problems = zoo.verify(args.root)
        for p in problems:
            print("PROBLEM:", p)
        print("all sha256 match, every collapse record present" if not problems else f"{len(problems)} problems")
        return 1 if problems else 0
    return 0
