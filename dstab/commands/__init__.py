"""CLI command groups; see dstab.cli.

`COMMANDS` is the static table of every command: its name, the module of this
package that registers it, and its one-line help. `python -m dstab --help`
lists the table without importing any command module (so without PyTorch);
a command's module is imported only when that command runs. Each module's
`register(sub)` adds its commands with `add_command`, which takes the help line
from the table, so the listing and the command cannot disagree.
"""

from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    module: str  # dstab.commands.<module> registers it
    help: str


COMMANDS: dict[str, Command] = {
    "zoo": Command("zoo", "build, list or measure the embedded zoo of DMs and GANs; the seed census"),
    "sample": Command("sample", "write a PNG grid (and/or the raw arrays) of a checkpoint's samples"),
    "info": Command("info", "print a checkpoint's header as JSON"),
    "convert": Command("convert", "write an imported checkpoint in dstab's format"),
    "train": Command("train", "train a DM or GAN in a run directory (presets: the paper's MDLRC+CLTS and its peers)"),
    "features": Command("features", "train the small digit classifier whose features give FD (local features)"),
    "reproduce": Command("reproduce", "re-run one of the paper's experiments at small scale"),
    "surface": Command("landscape", "2-D loss surface around a checkpoint (Li et al. 2018)"),
    "interpolate": Command("landscape", "1-D loss along the line between two checkpoints"),
    "precompute": Command("landscape", "precompute the zoo's default results into <zoo>/results"),
    "hessian": Command(
        "hessian", "Hessian spectrum of a checkpoint's loss (lambda_1, lambda_min, trace, sigma^2, density)"
    ),
    "consistency": Command("consistency", "PSNR consistency C(q) of models sampled from one seed (paper Eq. 1)"),
    "trajectory": Command("trajectory", "a DM's x0 estimate at every sampler step, from one seed (Diffusion process)"),
    "report": Command("report", "run the paper's comparisons on the zoo and write RESULTS.md"),
    "runs": Command("runs", "start, watch, stop and resume background training runs"),
    "sweep": Command("sweep", "queue variants x seeds x --set axes as background runs of one group"),
    "compare": Command("compare", "four readouts of a speed-up, t intervals, Holm and one verdict for a group of runs"),
    "timesteps": Command("timesteps", "every training preset's distribution over t on one schedule (PNG, HTML, CSV)"),
}


def add_command(sub, name: str, **kwargs):
    """The parser of command `name`, with its help line from `COMMANDS`."""
    return sub.add_parser(name, help=COMMANDS[name].help, **kwargs)


def add_device_arg(parser) -> None:
    parser.add_argument("--device", default="auto", help="auto (default: CUDA if present), cpu, cuda, cuda:N")


def add_stage_arg(parser) -> None:
    parser.add_argument(
        "--stage", choices=["final", "early"], default="final", help="zoo checkpoint stage (default final)"
    )


def add_threads_arg(parser, default: int | None = None, why: str = "") -> None:
    """`--threads N`; dstab.cli sets torch's CPU threads from it before the command runs.
    `default` None: `dstab.device.default_threads()` ($DSTAB_THREADS, else half the cores, at most 4)."""
    shown = "$DSTAB_THREADS, else half the cores, at most 4" if default is None else str(default)
    parser.add_argument(
        "--threads",
        dest="torch_threads",
        type=int,
        default=default,
        metavar="N",
        help=f"torch CPU threads (default {shown}{why})",
    )


def add_dataset_arg(parser, what: str = "the probe's batch") -> None:
    """`--dataset SPEC`: the user's pick instead of the checkpoint header's dataset; the one rule of
    `dstab.confine` (built-in names, or a folder inside the allowed roots) applies to both."""
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="SPEC",
        help=f"dataset of {what} (default: the checkpoint's own): digits, toy2d[:variant], cifar10, or "
        "folder:PATH / cifar10:PATH inside the allowed roots (DSTAB_ALLOWED_ROOTS, the workspace)",
    )


def check_dataset_arg(args) -> None:
    """Refuse a bad --dataset before any checkpoint is loaded."""
    if getattr(args, "dataset", None) is not None:
        from ..confine import chosen_dataset

        chosen_dataset(args.dataset)
