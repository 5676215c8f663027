"""The embedded zoo: small DMs and GANs that dstab trains itself.

Built by `python -m dstab zoo build` on data that ships inside a package
(scikit-learn's digits) or is generated (toy2d). For each dataset it holds
three eps-prediction DMs identical but for the init seed, one of another
structure, one x0-prediction DM, three GANs identical but for the init seed
and one of another structure; every run keeps an early checkpoint (10% of
training) and its final one. `checkpoints/manifest.json` records configs,
seeds, steps, wall time and sha256 of every file.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import __version__, checkpoints, collapse
from .errors import DstabError
from .fileio import file_sha256, git_commit, write_json
from .plots.png import save_samples
from .sampling import generate
from .training.config import DIGITS_UNET
from .training.trainer import TrainConfig, train
from .zooindex import (  # noqa: F401 (part of this module's API)
    MANIFEST,
    checkpoint_path,
    read_manifest,
    resolve_checkpoint,
    zoo_root,
)

SAMPLE_SEED = 0
EARLY_FRACTION = 0.1


@dataclass
class ZooSpec:
    id: str  # "<dataset family>/<run>"
    groups: list[str]  # e.g. "dm-init": runs that differ only in the init seed
    config: TrainConfig = field(default_factory=TrainConfig)


def _digits_unet(**over) -> dict:
    return {**DIGITS_UNET, **over}


def _digits_gan(**over) -> dict:
    g = {"arch": "dcgan_g", "image_size": 8, "channels": 1, "nz": 32, "ngf": 128, "extra_layers": 1, **over}
    d = {"arch": "dcgan_d", "image_size": 8, "channels": 1, "ndf": 128, "extra_layers": 1}
    return {"generator": g, "discriminator": d}


def _toy_gan(**over) -> dict:
    g = {"arch": "mlp_g", "data_dim": 2, "latent_dim": 2, "hidden": 128, "depth": 3, **over}
    d = {"arch": "mlp_d", "data_dim": 2, "hidden": 128, "depth": 3}
    return {"generator": g, "discriminator": d}


# steps per dataset: long enough for recognisable digits, short enough for a CPU build
DM_STEPS = {"digits": 5000, "toy2d": 3000}
GAN_STEPS = {"digits": 3000, "toy2d": 3000}


def specs(scale: float = 1.0) -> list[ZooSpec]:
    """The zoo's runs; `scale` shrinks step counts (tests build a miniature zoo)."""
    out = []
    for family, dataset in (("digits", "digits"), ("toy2d", "toy2d:8gaussians")):
        if family == "digits":
            dm_arch, wide_arch = _digits_unet(), _digits_unet(model_channels=32)
            gan_arch, wide_gan = _digits_gan(), _digits_gan(ngf=64, extra_layers=2)
            dm_common = {"batch_size": 64, "lr": 1e-3}
            gan_common = {"batch_size": 64, "lr": 2e-4, "beta1": 0.5, "ema_rate": None, "grad_clip": None}
        else:
            dm_arch = {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 128, "depth": 3}
            wide_arch = {**dm_arch, "hidden": 256, "depth": 4}
            gan_arch, wide_gan = _toy_gan(), _toy_gan(hidden=256, depth=4)
            dm_common = {"batch_size": 256, "lr": 1e-3}
            gan_common = {"batch_size": 256, "lr": 2e-4, "beta1": 0.5, "ema_rate": None, "grad_clip": None}
        dm_steps = max(10, int(DM_STEPS[family] * scale))
        gan_steps = max(10, int(GAN_STEPS[family] * scale))

        def dm(arch, seed, prediction="eps"):
            return TrainConfig(
                kind="dm",
                dataset=dataset,
                arch=arch,
                seed=seed,
                steps=dm_steps,
                diffusion={"schedule": "linear", "T": 1000, "prediction": prediction},
                save_steps=[max(1, int(dm_steps * EARLY_FRACTION))],
                storage_dtype="float16",
                **dm_common,
            )

        def gan(arch, seed):
            return TrainConfig(
                kind="gan",
                dataset=dataset,
                arch=arch,
                seed=seed,
                steps=gan_steps,
                save_steps=[max(1, int(gan_steps * EARLY_FRACTION))],
                storage_dtype="float16",
                **gan_common,
            )

        for s in range(3):
            out.append(
                ZooSpec(f"{family}/dm-eps-s{s}", ["dm-init", "dm-structure"] if s == 0 else ["dm-init"], dm(dm_arch, s))
            )
        out.append(ZooSpec(f"{family}/dm-eps-wide", ["dm-structure"], dm(wide_arch, 0)))
        # x0-prediction DMs of three inits, same architecture and data order as dm-init:
        # the paper's Fig. 9 counterexample tests their consistency as a group
        for s in range(3):
            out.append(
                ZooSpec(f"{family}/dm-x0-s{s}", ["dm-x0", "x0-init"] if s == 0 else ["x0-init"], dm(dm_arch, s, "x0"))
            )
        for s in range(3):
            out.append(
                ZooSpec(
                    f"{family}/gan-s{s}", ["gan-init", "gan-structure"] if s == 0 else ["gan-init"], gan(gan_arch, s)
                )
            )
        out.append(ZooSpec(f"{family}/gan-wide", ["gan-structure"], gan(wide_gan, 0)))
    return out


def _write_manifest(root: Path, manifest: dict) -> None:
    write_json(root / MANIFEST, manifest)


def build_entry(spec: ZooSpec, root: Path, device="cpu", log=print) -> dict:
    run_dir = root / spec.id
    for stale in run_dir.glob("*.safetensors"):
        stale.unlink()
    result = train(spec.config, run_dir, device=device)
    early_step = min(result["checkpoints"])
    files = {}
    for stage, step in (("early", early_step), ("final", spec.config.steps)):
        target = run_dir / f"{stage}.safetensors"
        os.replace(result["checkpoints"][step], target)
        files[stage] = {
            "path": str(target.relative_to(root)),
            "step": step,
            "sha256": file_sha256(target),
            "bytes": target.stat().st_size,
        }
    bundle = checkpoints.load(run_dir / "final.safetensors")
    samples = generate(bundle, 64, SAMPLE_SEED, device=device)
    save_samples(samples, run_dir / "samples.png")
    (run_dir / "train_config.json").unlink(missing_ok=True)
    entry = {
        "id": spec.id,
        "kind": spec.config.kind,
        "dataset": spec.config.dataset,
        "groups": spec.groups,
        "prediction": spec.config.diffusion["prediction"] if spec.config.kind == "dm" else None,
        "seed": spec.config.seed,
        "data_seed": spec.config.data_seed,
        "train_config": asdict(spec.config),
        "steps": spec.config.steps,
        "wall_time_s": round(result["wall_time_s"], 1),
        "loss_first": result["loss_first"],
        "loss_last": result["loss_last"],
        "checkpoints": files,
        "samples": str((run_dir / "samples.png").relative_to(root)),
        "sample_seed": SAMPLE_SEED,
    }
    if collapse.measurable(spec.config.dataset):
        entry["collapse"] = collapse.measure(bundle, device)
    log(
        f"{spec.id}: {spec.config.steps} steps in {entry['wall_time_s']} s, "
        f"loss {entry['loss_first']:.4f} -> {entry['loss_last']:.4f}"
    )
    return entry


def build(root: Path | None = None, only: str | None = None, scale: float = 1.0, device="cpu", log=print) -> dict:
    """Train the zoo (or the entries whose id contains `only`) into `root`, updating the
    manifest after every entry so an interrupted build keeps what it finished."""
    root = Path(root or zoo_root())
    root.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in specs(scale) if only is None or only in s.id]
    if not chosen:
        raise DstabError(f"no zoo entry matches {only!r}; see `python -m dstab zoo list --all`")
    try:
        manifest = read_manifest(root)
    except DstabError:
        manifest = {"entries": {}}
    sync_groups(manifest)
    for spec in chosen:
        t0 = time.perf_counter()
        manifest["entries"][spec.id] = build_entry(spec, root, device, log)
        manifest["entries"][spec.id]["build_wall_time_s"] = round(time.perf_counter() - t0, 1)
        manifest.update(
            format_version=1,
            dstab_version=__version__,
            git_commit=git_commit(),
            torch_version=torch.__version__,
            platform=platform.platform(),
            threads=torch.get_num_threads(),
            scale=scale,
        )
        _write_manifest(root, manifest)
    return manifest


def sync_groups(manifest: dict) -> None:
    """Give every built entry the groups its spec names today: a group added later (x0-init) reaches
    entries built before it without retraining them."""
    groups = {s.id: s.groups for s in specs()}
    for eid, entry in manifest["entries"].items():
        entry["groups"] = list(groups.get(eid, entry["groups"]))


def measure(root: Path | None = None, only: str | None = None, force: bool = False, device="cpu", log=print) -> int:
    """Record the collapse measurement (`dstab.collapse`) of built entries that lack it (all with `force`),
    and sync their groups; the checkpoints are not touched. Returns the number of entries measured.
    The manifest is read again just before the write, so a build that finished meanwhile is kept."""
    root = Path(root or zoo_root())
    records = {}
    for eid, entry in sorted(read_manifest(root)["entries"].items()):
        if (only is not None and only not in eid) or ("collapse" in entry and not force):
            continue
        if not collapse.measurable(entry["dataset"]):
            continue
        records[eid] = c = collapse.measure(checkpoints.load(root / entry["checkpoints"]["final"]["path"]), device)
        log(f"{eid}: coverage {c['coverage']}/{c['modes']}{' COLLAPSED' if c['collapsed'] else ''}")
    manifest = read_manifest(root)
    sync_groups(manifest)
    for eid, record in records.items():
        if eid in manifest["entries"]:
            manifest["entries"][eid]["collapse"] = record
    _write_manifest(root, manifest)
    return len(records)


COLLAPSE_FIELDS = ("coverage", "modes", "collapsed", "rule", "settings")


def verify(root: Path | None = None) -> list[str]:
    """Problems found (missing files, sha256 mismatches, a missing collapse record); empty when intact."""
    root = Path(root or zoo_root())
    problems = []
    for eid, entry in read_manifest(root)["entries"].items():
        if collapse.measurable(entry["dataset"]):
            missing = [k for k in COLLAPSE_FIELDS if k not in entry.get("collapse", {})]
            if missing:
                problems.append(f"{eid}: no collapse record ({', '.join(missing)}); run `python -m dstab zoo measure`")
        for stage, f in entry["checkpoints"].items():
            path = root / f["path"]
            if not path.exists():
                problems.append(f"{eid} {stage}: missing {path}")
            elif file_sha256(path) != f["sha256"]:
                problems.append(f"{eid} {stage}: sha256 mismatch for {path}")
    return problems


def load_checkpoint(ref: str, stage: str = "final") -> checkpoints.Bundle:
    """The Bundle of a file or a zoo id; a zoo checkpoint is named `<id>@<stage>`."""
    bundle = checkpoints.load(resolve_checkpoint(ref, stage))
    if Path(ref).exists():
        return bundle
    bundle.header = {**bundle.header, "name": f"{ref}@{stage}"}
    return bundle
