"""`dstab features train`: the local feature network behind "FD (local features)"."""

from __future__ import annotations

from pathlib import Path

from ..analysis import features
from ..errors import require
from . import add_command, add_threads_arg


def register(sub) -> None:
    p = add_command(
        sub,
        "features",
        description=features.__doc__.split("\n\n")[0],
    )
    fsub = p.add_subparsers(dest="features_command", metavar="{train}", parser_class=type(p))
    fsub.required = True
    t = fsub.add_parser("train", help="train it on the digits and save it (with its test accuracy)")
    t.add_argument("--out", type=Path, default=None, help="weights file (default: checkpoints/features/...)")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--seed", type=int, default=0)
    add_threads_arg(t, default=1, why=": one keeps the result reproducible")
    t.set_defaults(func=run_train)


def run_train(args) -> int:
    require(args.epochs >= 1, "--epochs must be >= 1")
    net, record = features.train_classifier(epochs=args.epochs, seed=args.seed)
    out = args.out or features.features_path("digits")
    features.save_classifier(net, record, out)
    print(f"test accuracy {record['test_accuracy']:.4f} on {record['test_size']} held-out digits; saved {out}")
    return 0
