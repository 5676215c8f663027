"""A loaded checkpoint (`Bundle`), its header, and what every loader shares.

`dstab.checkpoints` (dstab's own format) and each importer of a published
format (`dstab.importers`) build their Bundles with these: the header fields,
the checked filling of a module with a state dict, and a `torch.load` that
never runs pickled code. This module imports neither of them, so the
importers depend on it and `checkpoints` on the importers, one way.
"""

from __future__ import annotations

import datetime as _dt
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import __version__, models
from .diffusion import Diffusion
from .errors import DstabError
from .fileio import git_commit

FORMAT = "dstab-checkpoint"
FORMAT_VERSION = 1
ROLES = {"dm": ("model",), "gan": ("generator", "discriminator")}
# a GAN imported without its discriminator (pytorch/examples saves netG and netD apart)
# can still sample and be compared for consistency; analyses that need D say so
OPTIONAL_ROLES = {"discriminator"}


@dataclass
class Bundle:
    """A loaded checkpoint: its header and ready-to-use modules (eval mode, float32)."""

    header: dict
    modules: dict[str, torch.nn.Module]
    path: Path | None = None
    sha256: str | None = None  # of the file, for cache keys
    diffusion: Diffusion | None = None
    extras: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.header["kind"]

    @property
    def model(self) -> torch.nn.Module:
        return self.modules["model"]

    @property
    def generator(self) -> torch.nn.Module:
        return self.modules["generator"]

    @property
    def discriminator(self) -> torch.nn.Module:
        if "discriminator" not in self.modules:
            raise DstabError(f"{self.name} has no discriminator (imported without one); this needs a GAN with D")
        return self.modules["discriminator"]

    def to(self, device) -> Bundle:
        for m in self.modules.values():
            m.to(device)
        return self

    @property
    def name(self) -> str:
        return self.header.get("name") or (self.path.stem if self.path else "checkpoint")


def make_header(kind: str, arch: dict, dataset: str, step: int, seed: int, **extra) -> dict:
    if kind not in ROLES:
        raise DstabError(f"unknown checkpoint kind {kind!r}; choose 'dm' or 'gan'")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "arch": arch,
        "dataset": dataset,
        "step": int(step),
        "seed": int(seed),
        "git_commit": git_commit(),
        "dstab_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def build_filled(arch: dict, state: dict[str, torch.Tensor], what, problem: str = "header and weights disagree"):
    """The module `arch` describes, holding `state` (as float32), once every key and shape fits.
    `what` names the source in the error, `problem` says what a misfit means there."""
    with torch.device("meta"):  # checked before anything is allocated, filled without a copy
        module = models.build(arch)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise DstabError(
            f"{what}: {problem}: missing {missing[:5]}, unexpected {unexpected[:5]} "
            f"({len(missing)} missing, {len(unexpected)} unexpected keys)"
        )
    wrong = [k for k in own if own[k].shape != state[k].shape]
    if wrong:
        k = wrong[0]
        raise DstabError(
            f"{what}: {problem} on {len(wrong)} shapes, e.g. {k}: "
            f"architecture wants {tuple(own[k].shape)}, file has {tuple(state[k].shape)}"
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    if {name for name, _ in module.named_buffers()} - set(own):
        module = models.build(arch)  # a non-persistent buffer: it needs the builder's values
        module.load_state_dict(state)
    else:
        # the module takes the tensors themselves (a read file's, or a memory-mapped .pt's): no copy
        module.load_state_dict(state, assign=True)
    return module.eval()


def safe_torch_load(path: Path):
    """torch.load restricted to tensors and plain containers: never runs pickled code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported object"
        raise DstabError(
            f"{path}: refused: this pickle holds objects beyond tensors and plain containers "
            f"and could run code when loaded ({first}); re-save it as a state dict"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise DstabError(f"{path}: cannot be read as a PyTorch file ({exc}); is it truncated?") from None
