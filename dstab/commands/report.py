"""`dstab report`: the paper's comparisons on the zoo, written as RESULTS.md (generated, never hand-edited)."""

from __future__ import annotations

import os
from pathlib import Path

from .. import cache, report
from ..device import resolve_device
from . import add_command, add_device_arg, add_threads_arg


def register(sub) -> None:
    p = add_command(
        sub,
        "report",
        description="Consistency of DM vs GAN groups (different inits, different structures; paper Table 1), the "
        "x0-prediction counterexample, Hessian spectra of DM vs GAN, and the roughness numbers of cached "
        "surface/interpolation results, each claim marked as holding or not on the zoo. Results come from the "
        "cache when present (precomputed zoo: seconds) and are computed and cached otherwise.",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("RESULTS.md"), help="file to write (default RESULTS.md)")
    p.add_argument("--root", type=Path, default=None, help="zoo folder (default: DSTAB_ZOO or checkpoints/)")
    p.add_argument("--quick", action="store_true", help="tiny settings for a smoke test (4 samples, 5 DDIM steps)")
    p.add_argument(
        "--store-shipped",
        action="store_true",
        help="write new results into the zoo's shipped cache (<zoo>/results/) instead of the user cache: "
        "precomputes the defaults that pages open with",
    )
    add_device_arg(p)
    add_threads_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.root is not None:  # the shipped cache lives under the zoo: one root for both
        os.environ["DSTAB_ZOO"] = str(args.root)
    store = cache.shipped_dir() if args.store_shipped else None
    print(report.build(args.output, args.root, resolve_device(args.device), args.quick, store))
    return 0
