"""`dstab convert SRC -o DST.safetensors`: any importable checkpoint in dstab's own format."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import checkpoints, models, stfile
from ..errors import DstabError
from ..fileio import writable_dir
from ..importers.openai import PRESETS
from . import add_command

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def register(sub) -> None:
    p = add_command(
        sub,
        "convert",
        description="Load a checkpoint of any format dstab imports (improved-/guided-diffusion .pt, diffusers "
        "folder, pytorch/examples DCGAN netG/netD) and write it as one dstab .safetensors file, which then "
        "loads without flags. See README 'Use your own checkpoints'.",
    )
    p.add_argument("source", help="checkpoint file or folder")
    p.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    p.add_argument("--preset", choices=sorted(PRESETS), help="published improved/guided-diffusion model flags")
    p.add_argument(
        "--flag",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an improved/guided-diffusion training flag, spelt as in its scripts (repeatable), "
        "e.g. --flag image_size=64 --flag diffusion_steps=4000",
    )
    p.add_argument("--epoch", type=int, help="DCGAN folder: which netG_epoch_N.pth (default: the last)")
    p.add_argument("--dataset", help="dataset spec to record in the header (e.g. cifar10)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="storage dtype (default float32)")
    p.set_defaults(func=run)


def parse_flags(pairs: list[str]) -> dict:
    flags = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise DstabError(f"--flag takes NAME=VALUE, got {pair!r}")
        flags[name.strip().lstrip("-")] = value.strip()
    return flags


def hints_from(args) -> dict:
    hints = {"preset": args.preset, "flags": parse_flags(args.flag) or None, "epoch": args.epoch}
    hints["dataset"] = args.dataset
    return {k: v for k, v in hints.items() if v is not None}


def run(args) -> int:
    if not args.output.endswith(".safetensors"):
        raise DstabError(f"the output must be a .safetensors file, got {args.output}")
    out = Path(args.output)
    if out.is_dir():
        raise DstabError(f"--output {out} is a folder; give the .safetensors file to write")
    if out.exists() and Path(args.source).exists() and out.resolve() == Path(args.source).resolve():
        raise DstabError(f"--output {out} is the source itself; write the converted checkpoint to another file")
    writable_dir(out.parent, "the output's folder")
    bundle = checkpoints.load(args.source, **hints_from(args))
    assumed = bundle.header.get("imported_from", {}).get("assumed")
    if assumed:
        print(f"notice: {assumed}")
    header = {k: v for k, v in bundle.header.items() if k not in ("storage_dtype", "weights_sha256")}
    if args.dataset:
        header["dataset"] = args.dataset
    source = bundle.header.get("imported_from", {}).get("format", "dstab")
    # streamed: the modules hold the source's memory-mapped tensors, written one at a time
    sha = checkpoints.save(args.output, header, bundle.modules, DTYPES[args.dtype])
    del bundle
    written = verified(args.output)
    params = sum(models.count_parameters(m) for m in written.modules.values())
    print(f"wrote {args.output} ({written.kind}, {params:,} parameters, from {source}, sha256 {sha[:12]})")
    return 0


def verified(path: str) -> checkpoints.Bundle:
    """Proof that the written file loads without flags (header, architectures, diffusion, every key
    and shape, the weights' hash), read one tensor at a time: the modules it returns are on the
    meta device, so the check holds no copy of the weights."""
    header, shapes, weights_sha = stfile.read_structure(path)
    if not isinstance(header, dict) or weights_sha != header.get("weights_sha256"):
        raise DstabError(f"{path}: the written file does not read back (disk full or altered?); convert again")
    return checkpoints.bundle_from_tensors(header, shapes, path)
