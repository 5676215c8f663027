"""`dstab info CHECKPOINT`: print a checkpoint's header (a file, or a zoo id such as digits/dm-eps-s0)."""

from __future__ import annotations

import json

from .. import checkpoints, models, sampling, zooindex
from . import add_command, add_stage_arg


def register(sub) -> None:
    p = add_command(sub, "info", description="Print a checkpoint's header as JSON.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint, any format an importer knows, or a zoo id")
    add_stage_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    bundle = checkpoints.load(zooindex.resolve_checkpoint(args.checkpoint, args.stage))
    info = {
        "path": str(bundle.path),
        "sha256": bundle.sha256,
        "parameters": {role: models.count_parameters(m) for role, m in bundle.modules.items()},
        "header": bundle.header,
    }
    if bundle.diffusion is not None:  # how `sample`, consistency grids and FD draw from it
        ndim = 1 + len(sampling.sample_shape(bundle))
        info["sampling"] = bundle.diffusion.sampling_summary(ndim)
    print(json.dumps(info, indent=2, sort_keys=True))
    return 0
