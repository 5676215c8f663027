"""`dstab zoo build|list`: the embedded zoo."""

from __future__ import annotations

from pathlib import Path

from .. import zoo
from ..device import resolve_device
from ..errors import require
from . import add_command, add_device_arg, add_threads_arg


def register(sub) -> None:
    p = add_command(sub, "zoo", description=zoo.__doc__.split("\n\n")[0])
    zsub = p.add_subparsers(dest="zoo_command", metavar="{build,list}", parser_class=type(p))
    zsub.required = True
    b = zsub.add_parser(
        "build",
        help="train the zoo (about half an hour on 2 CPU cores)",
        description="Train every zoo run (or those whose id contains --only) and write "
        "checkpoints, sample grids and manifest.json. Reproducible: seeds and configs are fixed.",
    )
    b.add_argument("--root", type=Path, default=None, help="output folder (default: the repository's checkpoints/)")
    b.add_argument("--only", default=None, help="build only entries whose id contains this text, e.g. digits/gan")
    b.add_argument("--scale", type=float, default=1.0, help="multiply all step counts (e.g. 0.01 for a smoke test)")
    add_threads_arg(b)
    add_device_arg(b)
    b.set_defaults(func=run_build)
    ls = zsub.add_parser("list", help="list the zoo's entries", description="List the zoo's entries from its manifest.")
    ls.add_argument("--root", type=Path, default=None)
    ls.add_argument("--verify", action="store_true", help="also check every file's sha256")
    ls.add_argument("--all", action="store_true", help="list the runs `zoo build` knows, built or not")
    ls.set_defaults(func=run_list)


def run_build(args) -> int:
    require(args.scale > 0, "--scale must be > 0")
    zoo.build(args.root, args.only, args.scale, resolve_device(args.device))
    return 0


def run_list(args) -> int:
    if args.all:
        for spec in zoo.specs():
            print(f"{spec.id:24s} {spec.config.kind:4s} {spec.config.steps:6d} steps  groups={','.join(spec.groups)}")
        return 0
    manifest = zoo.read_manifest(args.root)
    print(f"{'id':24s} {'kind':4s} {'pred':4s} {'seed':>4s} {'steps':>6s} {'loss':>8s} {'wall s':>7s}  stages")
    for eid, e in sorted(manifest["entries"].items()):
        stages = ",".join(f"{k}@{v['step']}" for k, v in sorted(e["checkpoints"].items()))
        print(
            f"{eid:24s} {e['kind']:4s} {e['prediction'] or '-':4s} {e['seed']:4d} {e['steps']:6d} "
            f"{e['loss_last']:8.4f} {e['wall_time_s']:7.1f}  {stages}"
        )
    print(f"{len(manifest['entries'])} entries in {zoo.zoo_root() if args.root is None else args.root}")
    if args.verify:
        problems = zoo.verify(args.root)
        for p in problems:
            print("PROBLEM:", p)
        print("all sha256 match" if not problems else f"{len(problems)} problems")
        return 1 if problems else 0
    return 0
