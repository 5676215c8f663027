"""`dstab train`: one training run in a run directory (contract: dstab/runs/rundir.py)."""

from __future__ import annotations

from pathlib import Path

from .. import paper
from ..device import resolve_device
from ..errors import require
from ..runs import runner
from ..training import config as train_config
from . import add_command, add_device_arg, add_threads_arg


def register(sub) -> None:
    p = add_command(
        sub,
        "train",
        description="Train into RUN_DIR (config.json, checkpoints/, metrics.sqlite, heartbeat, status.json). "
        f"Presets: {', '.join(sorted(train_config.PRESETS))}. SIGTERM stops cleanly; --resume continues exactly.",
    )
    p.add_argument("--out", type=Path, help="new run directory (must not exist or be empty)")
    p.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint"
    )
    p.add_argument("--config", type=Path, help="config file (.json, .toml, .yaml); may name a 'preset' to start from")
    p.add_argument("--preset", help="start from a named preset")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an option; dotted keys reach nested ones (timesteps.sigma=100); values are JSON",
    )
    p.add_argument(
        "--paper", action="store_true", help="the paper's lr, batch, EMA (scaled), beta0, floor, mu, sigma; then --set"
    )
    add_threads_arg(p)
    p.add_argument("--quiet", action="store_true", help="do not echo log lines (they still go to RUN_DIR/train.log)")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    require(
        (args.out is None) != (args.resume is None), "give exactly one of --out RUN_DIR (new run) or --resume RUN_DIR"
    )
    device = resolve_device(args.device)
    if args.resume is not None:
        require(
            not (args.config or args.preset or args.set or args.paper),
            "--resume takes the run's own config.json; --config, --preset, --set and --paper do not apply",
        )
        result = runner.resume(args.resume, device, echo=not args.quiet)
    else:
        require(args.config or args.preset, "a new run needs --config FILE or --preset NAME")
        config = train_config.resolve(args.preset, args.config, args.set)
        if args.paper:  # preset < the paper's values (EMA scaled to the final steps) < --set
            config = paper.to_paper(config)
            for text in args.set:
                train_config.apply_override(config, *train_config.parse_override(text))
            config = train_config.TrainConfig.from_dict(config).to_dict()
        result = runner.start(args.out, config, device, echo=not args.quiet)
    state = "stopped" if result["stopped"] else "finished"
    print(f"{state} at step {result['step']}")
    return 0
