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
import io
import json
import os
import pickle
import pickletools
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import __version__, budgets, models, sizing
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
        t = tensors[key].contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
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
    tensors = {}
    for role, module in modules.items():
        for key, value in module.state_dict().items():
            value = value.detach().cpu()
            if value.is_floating_point():
                value = value.to(dtype)
            tensors[f"{role}.{key}"] = value.contiguous()
    header = {**header, "storage_dtype": str(dtype).removeprefix("torch."), "weights_sha256": weights_sha256(tensors)}
    atomic_write_bytes(path, st_save(tensors, metadata={"dstab": json.dumps(header, sort_keys=True)}))
    return file_sha256(path)


def _read_safetensors(raw: bytes, path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    if len(raw) < 8:
        raise DstabError(f"{path}: file is empty or truncated ({len(raw)} bytes); it is not a checkpoint")
    header_len = int.from_bytes(raw[:8], "little")
    if header_len > len(raw) - 8:
        raise DstabError(f"{path}: truncated safetensors file (header says {header_len} bytes, file has {len(raw)})")
    try:
        table = json.loads(raw[8 : 8 + header_len])
        if not isinstance(table, dict):
            raise ValueError(f"its header is a JSON {type(table).__name__}, not an object")
        meta = table.get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise ValueError(f"its metadata is a JSON {type(meta).__name__}, not an object")
        tensors = st_load(raw)
    except (SafetensorError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DstabError(f"{path}: damaged or truncated safetensors file ({exc})") from None
    return meta, tensors


def _role_state(tensors: dict[str, torch.Tensor], role: str) -> dict[str, torch.Tensor]:
    prefix = role + "."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}  # build_filled makes float32


def build_filled(arch: dict, state: dict[str, torch.Tensor], what, problem: str = "header and weights disagree"):
    """The module `arch` describes, holding `state` (as float32), once every key and shape fits.
    `what` names the source in the error, `problem` says what a misfit means there.

    Keys, shapes and the parameter budget are checked on a meta-device copy, so a header that
    declares a huge network is refused before any of it is allocated; the module's storage is then
    allocated empty and filled from `state` (no random initialisation to throw away)."""
    module = sizing.meta_module(arch, str(what))
    budgets.check_params(sum(p.numel() for p in module.parameters()), str(what))
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
    if {name for name, _ in module.named_buffers()} - set(own):
        module = models.build(arch)  # a non-persistent buffer: it needs the builder's values
    else:
        module = module.to_empty(device="cpu")
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return module.eval()


def _header_error(path, problem: str) -> DstabError:
    return DstabError(f"{path}: invalid header: {problem}; re-export the checkpoint with dstab")


def validated_header(header, path) -> dict:
    """The header, if its kind, architecture and diffusion fields have the shapes loading relies on."""
    if not isinstance(header, dict):
        raise _header_error(path, f"it is a JSON {type(header).__name__}, not an object")
    kind = header.get("kind")
    if kind not in ROLES:
        raise _header_error(path, f"unknown kind {kind!r} (choose 'dm' or 'gan')")
    arch = header.get("arch")
    if not isinstance(arch, dict):
        raise _header_error(path, "'arch' (the architecture config) is missing or not an object")
    if kind == "gan":
        for role in ROLES["gan"]:
            if not isinstance(arch.get(role), dict) and not (role in OPTIONAL_ROLES and arch.get(role) is None):
                raise _header_error(path, f"a GAN's 'arch' needs a {role!r} config object")
    elif not isinstance(header.get("diffusion"), dict):
        raise _header_error(path, "a DM needs 'diffusion' (schedule, T, prediction) as an object")
    if not isinstance(header.get("dataset", ""), str):
        raise _header_error(path, "'dataset' must be a dataset spec string")
    return header


def bundle_from_tensors(header: dict, tensors: dict[str, torch.Tensor], path: Path | None = None) -> Bundle:
    kind = validated_header(header, path)["kind"]
    arches = {"model": header["arch"]} if kind == "dm" else header["arch"]
    roles = [r for r in ROLES[kind] if r not in OPTIONAL_ROLES or arches.get(r)]
    diffusion = _diffusion(header["diffusion"], path) if kind == "dm" else None  # T is checked before the weights
    mods = {role: build_filled(arches[role], _role_state(tensors, role), f"{path}:{role}") for role in roles}
    return Bundle(header=header, modules=mods, path=path, diffusion=diffusion)


def _diffusion(config: dict, path) -> Diffusion:
    try:
        return Diffusion.from_config(config)
    except DstabError as exc:
        raise DstabError(f"{path}: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise _header_error(path, f"bad 'diffusion' settings ({type(exc).__name__}: {exc})") from None


def _load_native(path: Path, raw: bytes) -> Bundle | None:
    meta, tensors = _read_safetensors(raw, path)
    if "dstab" not in meta:
        return None
    try:
        header = json.loads(meta["dstab"])
    except (json.JSONDecodeError, TypeError, RecursionError):
        raise DstabError(f"{path}: the dstab header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _header_error(path, f"it is a JSON {type(header).__name__}, not an object")
    if header.get("format") != FORMAT:
        raise DstabError(f"{path}: not a dstab checkpoint header (format={header.get('format')!r})")
    if not isinstance(header.get("format_version", 0), int):
        raise _header_error(path, f"format_version {header.get('format_version')!r} is not an integer")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise DstabError(f"{path}: written by a newer dstab (format {header['format_version']}); upgrade dstab")
    if weights_sha256(tensors) != header.get("weights_sha256"):
        raise DstabError(f"{path}: weights do not match the sha256 in the header (file altered or corrupt)")
    bundle = bundle_from_tensors(header, tensors, path)
    bundle.sha256 = hashlib.sha256(raw).hexdigest()
    return bundle


def check_archive(path: Path) -> None:
    """Refuse a zip checkpoint (PyTorch's format) whose members would inflate beyond what its size on disk
    allows, or the memory budget, or that holds too many members: read from the zip's directory alone."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DstabError(f"{path}: damaged zip archive ({exc}); re-save the checkpoint with torch.save") from None
    budgets.check_count(len(members), "DSTAB_MAX_ARCHIVE_MEMBERS", f"{path}: number of archive members")
    inflated, on_disk = sum(m.file_size for m in members), path.stat().st_size
    # torch.save stores its records uncompressed: a far larger inflated size is a zip bomb
    if inflated > 2 * on_disk + 2**20:
        raise DstabError(
            f"{path}: refused: its members inflate to {inflated / 2**20:.1f} MiB from {on_disk / 2**20:.1f} MiB "
            "on disk (torch.save writes uncompressed archives); re-save it with torch.save"
        )
    budgets.check_memory(inflated, f"{path} (unpacked)")


def _pickle_problem(exc: Exception, path: Path) -> str:
    """What makes a refused pickle unsafe, or "" if it is merely unreadable (random bytes, truncation)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    found = next((line for line in lines if "GLOBAL" in line.upper()), "")
    if found or zipfile.is_zipfile(path):
        return found
    # a plain pickle torch's reader stops at early (e.g. protocol 4 framing): read its opcodes, never run them
    with open(path, "rb") as f:
        raw = f.read(1 << 24)
    start = 0
    for _ in range(4):  # a legacy torch file is several pickles in a row
        found = ""
        try:
            for op, arg, pos in pickletools.genops(io.BytesIO(raw[start:])):
                if op.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE") and not found:
                    found = f"it names Python objects ({op.name}{' ' + arg if isinstance(arg, str) else ''})"
                if op.name == "STOP":
                    start += pos + 1
                    break
            else:
                return ""
        except (ValueError, EOFError, UnicodeDecodeError, IndexError):
            return ""  # random bytes may start like a pickle; only one that parses to its end names objects
        if found:
            return found
    return ""


def safe_torch_load(path: Path):
    """torch.load restricted to tensors and plain containers: never runs pickled code."""
    path = Path(path)
    check_archive(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if found := _pickle_problem(exc, path):
            raise DstabError(
                f"{path}: refused: this pickle holds objects beyond tensors and plain containers "
                f"and could run code when loaded ({found}); re-save it as a state dict"
            ) from None
        raise DstabError(f"{path}: not a readable PyTorch file (damaged, or not a checkpoint)") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, MemoryError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DstabError(f"{path}: cannot be read as a PyTorch file ({first}); is it truncated?") from None


# Importers for published formats: (name, detect(path) -> bool, load(path, **hints) -> Bundle)
Importer = tuple[str, Callable[[Path], bool], Callable[..., Bundle]]
IMPORTERS: list[Importer] = []


def register_importer(name: str, detect: Callable[[Path], bool], loader: Callable[..., Bundle]) -> None:
    IMPORTERS.append((name, detect, loader))


def load(path: str | os.PathLike, **hints) -> Bundle:
    """Any checkpoint dstab understands -> a Bundle of float32 modules in eval mode.

    The boundary for files from users: whatever goes wrong reading one becomes a one-line
    DstabError naming the file (the exception's type kept in the message for bug reports)."""
    text = os.fspath(path)
    if "\x00" in text or len(text) > 4096:
        raise DstabError(f"{text[:60]!r}...: not a usable checkpoint path (a NUL byte, or over 4096 characters)")
    path = Path(text)
    try:
        return _load(path, **hints)
    except DstabError:
        raise
    except OSError as exc:
        raise DstabError(f"{path}: cannot be read ({exc.strerror or exc}); check the file") from None
    except MemoryError:
        raise DstabError(f"{path}: does not fit in memory; raise DSTAB_MAX_MEMORY_GB or use a smaller model") from None
    except Exception as exc:  # noqa: BLE001 - a crafted or damaged file may fail anywhere inside a reader
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DstabError(
            f"{path}: cannot be loaded ({type(exc).__name__}: {first}); the file is damaged or in a layout "
            "dstab does not know"
        ) from None


def _load(path: Path, **hints) -> Bundle:
    if not path.exists():
        raise DstabError(f"no checkpoint at {path}")
    if path.is_file() and path.suffix == ".safetensors":
        budgets.check_memory(path.stat().st_size, f"reading {path}")
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
