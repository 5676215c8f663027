"""`python -m dstab <command>`: every figure of the dashboard, headless.

Commands are listed in the static table `dstab.commands.COMMANDS`; only the
module of the command being run is imported, so `--help` and `--version`
import neither PyTorch nor any analysis. A module exposes `register(sub)`,
which sets `func(args) -> int` on its parsers. A compute command's
`--threads` is applied here, before it runs. A `DstabError` (bad input) is
printed on one line and exits with status 2, and so is what the system
refuses about a path the user gave (an `OSError`: a directory given as a
file, a file where a folder is needed, no permission, a full disk) or a file
that is not text where text is read (`UnicodeDecodeError`); anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from . import __version__
from .commands import COMMANDS
from .errors import DstabError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors also exit 2, on one line
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _prog() -> str:
    """'dstab' when run as the installed console command, else 'python -m dstab'."""
    name = sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else ""
    return "dstab" if name in ("dstab", "dstab.exe") else "python -m dstab"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with `command`'s module registered; every other command is only listed."""
    parser = _Parser(
        prog=_prog(),
        description="dstab: why diffusion models train more stably than GANs. "
        "Train, sample and analyse DM and GAN checkpoints headless.",
    )
    parser.add_argument("--version", action="version", version=f"dstab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    chosen = COMMANDS[command].module if command in COMMANDS else None
    for name, entry in COMMANDS.items():
        if entry.module != chosen:
            sub.add_parser(name, help=entry.help, add_help=False)
        elif name == next(n for n, e in COMMANDS.items() if e.module == chosen):
            importlib.import_module(f"dstab.commands.{chosen}").register(sub)
    return parser


def _command(argv: list[str]) -> str | None:
    # the top-level options take no values, so the first word is the command
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    try:
        if hasattr(args, "torch_threads"):
            from .device import set_threads

            set_threads(args.torch_threads)
        return int(args.func(args) or 0)
    except DstabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {os_message(exc)}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        reason = f"{exc.reason} at byte {exc.start}"
        print(f"error: a file given is not UTF-8 text ({reason}); check the path", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no room: the disk, the user's quota, the file size limit


def os_message(exc: OSError) -> str:
    """One line for what the system refused: the path(s) and the reason, e.g. "runs/x: Not a directory"."""
    paths = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc) or type(exc).__name__
    fix = "free space there or write elsewhere" if exc.errno in FULL else "check the path and its permissions"
    return f"{paths}: {reason}; {fix}" if paths else f"{reason}; check the paths given"
