"""dstab's checkpoint format, its loader and the seam for importers.

One `.safetensors` file per checkpoint. Tensors are grouped by role with a
prefix: a DM stores `model.*` (the weights to analyse and sample: the EMA when
training kept one); a GAN stores `generator.*` and `discriminator.*`. The
safetensors metadata holds one JSON header under the key "dstab": kind,
architecture configs, diffusion (schedule, T, prediction type), dataset,
step, seed, git commit, storage dtype and the sha256 of the weights, which
`load()` verifies. Weights may be stored as float16; they always load as float32.

Other files go through importers (registered with `register_importer`); a
pickle is only ever opened with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from . import __version__, models, stfile
from .diffusion import Diffusion
from .errors import DstabError
from .fileio import atomic_write_bytes, file_sha256, git_commit  # noqa: F401 (part of this module's API)

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


def weights_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Hash of names, dtypes, shapes and bytes, independent of file layout."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        stfile.hash_tensor(h, key, tensors[key])
    return h.hexdigest()


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


def save(path: str | os.PathLike, header: dict, modules: dict[str, torch.nn.Module], dtype=torch.float32) -> str:
    """Write a checkpoint atomically; returns the file's sha256.

    `modules` maps each role of the header's kind to a module whose state dict
    (parameters and buffers) is stored; floating tensors are cast to `dtype`.
    """
    expected = set(ROLES[header["kind"]])
    if not expected - OPTIONAL_ROLES <= set(modules) <= expected:
        raise DstabError(f"a {header['kind']} checkpoint needs modules {sorted(expected)}, got {sorted(modules)}")
    # written one tensor at a time (cast, hashed, written): no second copy of the weights in memory
    tensors = {f"{role}.{key}": value for role, module in modules.items() for key, value in module.state_dict().items()}
    stfile.write(path, tensors, {**header, "storage_dtype": str(dtype).removeprefix("torch.")}, dtype)
    return file_sha256(path)


def _read_safetensors(raw: bytes, path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    if len(raw) < 8:
        raise DstabError(f"{path}: file is empty or truncated ({len(raw)} bytes); it is not a checkpoint")
    header_len = int.from_bytes(raw[:8], "little")
    if header_len > len(raw) - 8:
        raise DstabError(f"{path}: truncated safetensors file (header says {header_len} bytes, file has {len(raw)})")
    try:
        meta = json.loads(raw[8 : 8 + header_len]).get("__metadata__") or {}
        tensors = st_load(raw)
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise DstabError(f"{path}: damaged or truncated safetensors file ({exc})") from None
    return meta, tensors


def _role_state(tensors: dict[str, torch.Tensor], role: str) -> dict[str, torch.Tensor]:
    prefix = role + "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}  # build_filled makes float32


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


def bundle_from_tensors(header: dict, tensors: dict[str, torch.Tensor], path: Path | None = None) -> Bundle:
    kind = header.get("kind")
    if kind not in ROLES:
        raise DstabError(f"{path}: header has unknown kind {kind!r}")
    arches = {"model": header["arch"]} if kind == "dm" else header["arch"]
    roles = [r for r in ROLES[kind] if r not in OPTIONAL_ROLES or arches.get(r)]
    mods = {role: build_filled(arches[role], _role_state(tensors, role), f"{path}:{role}") for role in roles}
    diffusion = Diffusion.from_config(header["diffusion"]) if kind == "dm" else None
    return Bundle(header=header, modules=mods, path=path, diffusion=diffusion)


def _load_native(path: Path, raw: bytes) -> Bundle | None:
    meta, tensors = _read_safetensors(raw, path)
    if "dstab" not in meta:
        return None
    try:
        header = json.loads(meta["dstab"])
    except json.JSONDecodeError:
        raise DstabError(f"{path}: the dstab header is not valid JSON") from None
    if header.get("format") != FORMAT:
        raise DstabError(f"{path}: not a dstab checkpoint header (format={header.get('format')!r})")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise DstabError(f"{path}: written by a newer dstab (format {header['format_version']}); upgrade dstab")
    if weights_sha256(tensors) != header.get("weights_sha256"):
        raise DstabError(f"{path}: weights do not match the sha256 in the header (file altered or corrupt)")
    bundle = bundle_from_tensors(header, tensors, path)
    bundle.sha256 = hashlib.sha256(raw).hexdigest()
    return bundle


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


# Importers for published formats: (name, detect(path) -> bool, load(path, **hints) -> Bundle)
Importer = tuple[str, Callable[[Path], bool], Callable[..., Bundle]]
IMPORTERS: list[Importer] = []


def register_importer(name: str, detect: Callable[[Path], bool], loader: Callable[..., Bundle]) -> None:
    IMPORTERS.append((name, detect, loader))


def load(path: str | os.PathLike, **hints) -> Bundle:
    """Any checkpoint dstab understands -> a Bundle of float32 modules in eval mode."""
    path = Path(path)
    if not path.exists():
        raise DstabError(f"no checkpoint at {path}")
    if path.is_file() and path.suffix == ".safetensors":
        raw = path.read_bytes()
        bundle = _load_native(path, raw)
        if bundle is not None:
            return bundle
    for _name, detect, loader in IMPORTERS:
        if detect(path):
            bundle = loader(path, **hints)
            if bundle.sha256 is None and path.is_file():
                bundle.sha256 = file_sha256(path)
            return bundle
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        safe_torch_load(path)  # refuses code-running pickles with a clear message
    known = ", ".join(name for name, _, _ in IMPORTERS) or "none installed"
    raise DstabError(f"{path} is not a dstab checkpoint and no importer recognises it (importers: {known})")


# Published formats (improved/guided-diffusion, diffusers, DCGAN) register themselves;
# imported last because they use the names above.
from . import importers  # noqa: E402, F401
