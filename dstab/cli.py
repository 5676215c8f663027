"""`python -m dstab <command>`: every figure of the dashboard, headless.

Each command lives in a module of `dstab.commands` exposing
`register(subparsers)`; it sets `func(args) -> int` on its parser. A
`DstabError` (bad input) is printed on one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import DstabError

# one module per command group; each adds its subcommands
COMMAND_MODULES = [
    "zoo",
    "sample",
    "info",
    "convert",
    "train",
    "features",
    "reproduce",
    "landscape",
    "hessian",
    "consistency",
    "report",
    "runs",
    "sweep",
    "compare",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors also exit 2, on one line
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m dstab",
        description="dstab: why diffusion models train more stably than GANs. "
        "Train, sample and analyse DM and GAN checkpoints headless.",
    )
    parser.add_argument("--version", action="version", version=f"dstab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"dstab.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DstabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
