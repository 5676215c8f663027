"""A miniature zoo for the dashboard's tests: the real zoo's ids, layout and manifest
schema, with tiny randomly initialised models so it builds in about a second.

The pages only need checkpoints that load and a manifest that lists them;
training them (zoo.build) would spend most of the test budget on sampling.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dstab import checkpoints, models
from dstab.plots.png import save_samples

DIGITS_DM = {
    "arch": "unet",
    "image_size": 8,
    "in_channels": 1,
    "model_channels": 8,
    "norm_groups": 4,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [],
}
DIGITS_GAN = {
    "generator": {"arch": "dcgan_g", "image_size": 8, "channels": 1, "nz": 8, "ngf": 8, "extra_layers": 0},
    "discriminator": {"arch": "dcgan_d", "image_size": 8, "channels": 1, "ndf": 8, "extra_layers": 0},
}
TOY_DM = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2}
TOY_GAN = {
    "generator": {"arch": "mlp_g", "data_dim": 2, "latent_dim": 2, "hidden": 16, "depth": 2},
    "discriminator": {"arch": "mlp_d", "data_dim": 2, "hidden": 16, "depth": 2},
}
DIFFUSION = {"schedule": "linear", "T": 1000, "prediction": "eps"}


def _wide(arch: dict) -> dict:
    if "generator" in arch:
        return {
            **arch,
            "generator": {**arch["generator"], **({"ngf": 16} if "ngf" in arch["generator"] else {"hidden": 32})},
        }
    return {**arch, **({"model_channels": 12} if arch["arch"] == "unet" else {"hidden": 32})}


def runs() -> list[tuple[str, str, str, dict, int, str | None, list[str]]]:
    """(id, kind, dataset, arch, seed, prediction, groups) as zoo.specs() lays them out."""
    out = []
    for family, dataset, dm, gan in (
        ("digits", "digits", DIGITS_DM, DIGITS_GAN),
        ("toy2d", "toy2d:8gaussians", TOY_DM, TOY_GAN),
    ):
        for s in range(3):
            out.append(
                (
                    f"{family}/dm-eps-s{s}",
                    "dm",
                    dataset,
                    dm,
                    s,
                    "eps",
                    ["dm-init"] + (["dm-structure"] if s == 0 else []),
                )
            )
        out.append((f"{family}/dm-eps-wide", "dm", dataset, _wide(dm), 0, "eps", ["dm-structure"]))
        for s in range(3):
            out.append(
                (f"{family}/dm-x0-s{s}", "dm", dataset, dm, s, "x0", (["dm-x0"] if s == 0 else []) + ["x0-init"])
            )
        for s in range(3):
            out.append(
                (
                    f"{family}/gan-s{s}",
                    "gan",
                    dataset,
                    gan,
                    s,
                    None,
                    ["gan-init"] + (["gan-structure"] if s == 0 else []),
                )
            )
        out.append((f"{family}/gan-wide", "gan", dataset, _wide(gan), 0, None, ["gan-structure"]))
    return out


def _modules(kind: str, arch: dict, seed: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    if kind == "dm":
        return {"model": models.build(arch).eval()}
    return {role: models.build(arch[role]).eval() for role in ("generator", "discriminator")}


def build(root: Path) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    entries = {}
    for eid, kind, dataset, arch, seed, prediction, groups in runs():
        extra = {"diffusion": {**DIFFUSION, "prediction": prediction}} if kind == "dm" else {}
        files = {}
        for stage, step, init_seed in (("early", 1, 1000 + seed), ("final", 10, seed)):
            path = root / eid / f"{stage}.safetensors"
            path.parent.mkdir(parents=True, exist_ok=True)
            header = checkpoints.make_header(kind, arch, dataset, step, seed, name=eid, **extra)
            sha = checkpoints.save(path, header, _modules(kind, arch, init_seed))
            files[stage] = {
                "path": str(path.relative_to(root)),
                "step": step,
                "sha256": sha,
                "bytes": path.stat().st_size,
            }
        shape = (4, 1, 8, 8) if dataset == "digits" else (64, 2)
        save_samples(
            torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1, root / eid / "samples.png"
        )
        entries[eid] = {
            "id": eid,
            "kind": kind,
            "dataset": dataset,
            "groups": groups,
            "prediction": prediction,
            "seed": seed,
            "data_seed": 0,
            "steps": 10,
            "wall_time_s": 0.1,
            "loss_first": 1.0,
            "loss_last": 0.5,
            "checkpoints": files,
            "samples": f"{eid}/samples.png",
            "sample_seed": 0,
        }
    manifest = {"entries": entries, "format_version": 1, "scale": 0.0}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest
