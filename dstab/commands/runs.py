"""`dstab runs list|start|stop|resume|logs|delete|schedule`: background training runs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .. import runs
from ..errors import DstabError
from ..runs import rundir
from . import add_command


def register(sub) -> None:
    p = add_command(
        sub,
        "runs",
        description="Background training runs in a workspace ($DSTAB_WORKSPACE/runs, default "
        "~/.local/share/dstab/workspace/runs). "
        "Each run is a detached `python -m dstab train` process; its state is read from its directory.",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="runs folder (default: $DSTAB_WORKSPACE/runs, else ~/.local/share/dstab/workspace/runs)",
    )
    rsub = p.add_subparsers(dest="runs_command", metavar="{list,start,stop,resume,logs,delete}", parser_class=type(p))
    rsub.required = True
    ls = rsub.add_parser("list", help="every run with its state, step and reason")
    ls.add_argument("--json", action="store_true", help="one JSON object per run")
    ls.set_defaults(func=run_list)
    st = rsub.add_parser("start", help="queue a run; it starts at once when its device has a free slot")
    st.add_argument("name")
    src = st.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="a trainer preset, e.g. baseline or mdlrc-clts")
    src.add_argument("--config", type=Path, help="a training config file (.json, .toml, .yaml)")
    st.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one option, as for `dstab train`"
    )
    st.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda:N")
    st.add_argument("--threads", type=int, default=None, help="torch CPU threads of the run")
    st.add_argument("--group", default=None, help="a label that groups runs of one sweep")
    st.add_argument("--nproc", type=int, default=1, help="processes under torchrun (the global batch kept)")
    st.set_defaults(func=run_start)
    for name, helptext, fn in (
        ("stop", "stop a run (it checkpoints and exits) or take it off the queue", run_stop),
        ("resume", "continue a stopped or died run from its last checkpoint", run_resume),
    ):
        q = rsub.add_parser(name, help=helptext)
        q.add_argument("name")
        q.add_argument("--wait", action="store_true", help="block until the run has stopped / finished")
        q.set_defaults(func=fn)
    lg = rsub.add_parser("logs", help="the tail of a run's log")
    lg.add_argument("name")
    lg.add_argument("-n", "--lines", type=int, default=40)
    lg.set_defaults(func=run_logs)
    de = rsub.add_parser("delete", help="delete a run's directory (asks for the name again)")
    de.add_argument("name")
    de.add_argument("--yes", action="store_true", help="do not ask; for scripts")
    de.set_defaults(func=run_delete)
    sc = rsub.add_parser("schedule", help="start queued runs that have a free slot (runs call this when they end)")
    sc.set_defaults(func=run_schedule)


def describe(s: runs.RunStatus) -> str:
    total = f"/{s.total_steps}" if s.total_steps else ""
    extra = f"  ({s.reason})" if s.reason else ""
    return f"{s.name:24s} {s.state:9s} step {s.step}{total:8s} {s.device or '-':7s} {s.group or '-':12s}{extra}"


def run_list(args) -> int:
    rows = runs.list_runs(args.root)
    for s in rows:
        if args.json:
            print(json.dumps({k: v for k, v in vars(s).items() if k != "log_tail"}))
        else:
            print(describe(s))
    if not args.json:
        print(f"{len(rows)} runs in {args.root or runs.workspace_root()}")
    return 0


def run_start(args) -> int:
    s = runs.start(
        args.name,
        preset=args.preset,
        config_file=args.config,
        overrides=args.set,
        device=args.device,
        group=args.group,
        threads=args.threads,
        root=args.root,
        nproc=args.nproc,
    )
    print(describe(s))
    return 0


def _finish(args, s: runs.RunStatus, goal: tuple[str, ...]) -> int:
    if args.wait:
        while s.state not in goal:
            time.sleep(0.5)
            s = runs.status(args.name, args.root)
    print(describe(s))
    return 0


def run_stop(args) -> int:
    return _finish(args, runs.stop(args.name, args.root), ("stopped", "finished", "failed", "died", "broken"))


def run_resume(args) -> int:
    return _finish(args, runs.resume(args.name, args.root), ("finished", "stopped", "failed", "died", "broken"))


def _existing(args) -> Path:
    path = runs.run_dir(args.name, args.root)
    if not path.is_dir():
        raise DstabError(f"no run named {args.name!r} in {path.parent}")
    return path


def run_logs(args) -> int:
    path = _existing(args)
    progress = path / runs.RUN / rundir.LOG
    if progress.exists():
        print(f"--- {progress} (the trainer's log lines)")
        print("\n".join(runs.log_tail(progress.parent, args.lines, progress.name)))
    print(f"--- {path / runs.LOG_NAME} (the process's stdout and stderr)")
    print("\n".join(runs.log_tail(path, args.lines)))
    return 0


def _confirm(name: str) -> str:
    """The run's name typed again; without a terminal to type it on, an error that names --yes."""
    if not sys.stdin.isatty():
        raise DstabError(
            f"runs delete asks for the run's name on a terminal and there is none; pass --yes to delete {name!r}"
        )
    try:
        return input(f"type the run's name ({name}) to delete it: ").strip()
    except EOFError:
        raise DstabError(f"no confirmation typed; {name!r} was not deleted (pass --yes in scripts)") from None


def run_delete(args) -> int:
    _existing(args)
    confirm = args.name if args.yes else _confirm(args.name)
    runs.delete(args.name, confirm, args.root)
    print(f"deleted {args.name}")
    return 0


def run_schedule(args) -> int:
    for name in runs.schedule(args.root):
        print(f"started {name}")
    return 0
