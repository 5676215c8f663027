"""`dstab convert` peak memory: streamed (this version) vs whole-file (the previous one), side by side.

A synthetic guided-diffusion state dict (random weights, the ImageNet-64 layout at a chosen width)
is written with torch.save by a subprocess; each variant then converts it in a fresh subprocess,
which reports its own peak RSS (VmHWM, Linux). "baseline" is a subprocess that imports the same modules and converts
nothing, so "(peak - baseline) / file" is what converting costs per byte of checkpoint.

- streamed: `dstab convert` as shipped: the .pt memory-mapped, modules taking its tensors, the
  safetensors file written one tensor at a time, then verified on the meta device;
- whole-file: what convert did before: torch.load into memory, a module filled by copy,
  safetensors.torch.save into one bytes object, then a full checkpoints.load to read it back.

Usage: python bench/bench_convert.py [--channels 128] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLAGS = {
    "image_size": 64,
    "num_res_blocks": 3,
    "attention_resolutions": "32,16,8",
    "channel_mult": "1,2,3,4",
    "num_head_channels": 64,
    "resblock_updown": True,
    "learn_sigma": True,
    "class_cond": True,
}

CHILD = """
import json, sys
from pathlib import Path
mode, src, out, flags = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
from dstab import checkpoints, cli
if mode == "streamed":
    argv = ["convert", src, "-o", out] + [f"--flag={k}={v}" for k, v in flags.items()]
    assert cli.main(argv) == 0
elif mode == "whole-file":
    import torch
    from safetensors.torch import save
    from dstab.fileio import atomic_write_bytes
    from dstab.importers import openai
    state = torch.load(src, map_location="cpu", weights_only=True)
    facts = openai.weight_facts(state)
    full = openai.completed(flags, facts)
    arch = {**openai.arch_from_flags(full), "in_channels": facts["in_channels"], "num_classes": facts["num_classes"]}
    model = openai.models.build(arch)
    model.load_state_dict(state)
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    header = checkpoints.make_header("dm", arch, "x", 0, 0, diffusion=openai.diffusion_from_flags(full).to_config())
    header = {**header, "storage_dtype": "float32", "weights_sha256": checkpoints.weights_sha256(tensors)}
    atomic_write_bytes(out, save(tensors, metadata={"dstab": json.dumps(header, sort_keys=True)}))
    checkpoints.load(out)
# VmHWM is this process's own peak (ru_maxrss would include the parent's RSS at spawn time)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) * 1024)
"""


MAKE = """
import json, sys
import torch
from dstab import models
from dstab.importers import openai
arch = {**openai.arch_from_flags({"codebase": "guided-diffusion", **json.loads(sys.argv[2])}), "num_classes": 1000}
torch.manual_seed(0)
torch.save(models.build(arch).state_dict(), sys.argv[1])
"""


def peak(mode: str, src: Path, out: Path) -> int:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(src), str(out), json.dumps(FLAGS)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return int(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=128, help="num_channels of the synthetic model (default 128)")
    ap.add_argument("--keep", type=Path, help="folder for the files (default: a temporary one, removed)")
    args = ap.parse_args()
    FLAGS["num_channels"] = args.channels
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / "model.pt"
        subprocess.run([sys.executable, "-c", MAKE, str(src), json.dumps(FLAGS)], cwd=REPO, check=True)
        size = src.stat().st_size
        base = peak("baseline", src, folder / "none.safetensors")
        rows = [(mode, peak(mode, src, folder / f"{mode}.safetensors")) for mode in ("streamed", "whole-file")]
    print(f"synthetic guided-diffusion ImageNet-64 layout, num_channels={args.channels}: {size / 2**20:.0f} MiB")
    print(f"baseline (imports only): {base / 2**20:.0f} MiB RSS")
    print("| variant    | peak RSS MiB | (peak - baseline) / file |")
    print("|------------|--------------|--------------------------|")
    for mode, rss in rows:
        print(f"| {mode:<10} | {rss / 2**20:12.0f} | {(rss - base) / size:24.2f} |")
    print(f"whole-file / streamed, extra memory: {(rows[1][1] - base) / max(rows[0][1] - base, 1):.2f}")


if __name__ == "__main__":
    main()
