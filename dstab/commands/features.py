"""`dstab features train`: the local feature network behind "FD (local features)"."""

from __future__ import annotations

from pathlib import Path

import torch

from ..analysis import features
from ..errors import require


def register(sub) -> None:
    p = sub.add_parser(
        "features",
        help="train the small digit classifier whose features give FD (local features)",
        description=features.__doc__.split("\n\n")[0],
    )
    fsub = p.add_subparsers(dest="features_command", metavar="{train}", parser_class=type(p))
    fsub.required = True
    t = fsub.add_parser("train", help="train it on the digits and save it (with its test accuracy)")
    t.add_argument("--out", type=Path, default=None, help="weights file (default: checkpoints/features/...)")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (one keeps the result reproducible)")
    t.set_defaults(func=run_train)


def run_train(args) -> int:
    require(args.epochs >= 1, "--epochs must be >= 1")
    require(args.threads >= 1, "--threads must be >= 1")
    torch.set_num_threads(args.threads)
    net, record = features.train_classifier(epochs=args.epochs, seed=args.seed)
    out = args.out or features.features_path("digits")
    features.save_classifier(net, record, out)
    print(f"test accuracy {record['test_accuracy']:.4f} on {record['test_size']} held-out digits; saved {out}")
    return 0
