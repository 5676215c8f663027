"""dstab's checkpoint format, its loader and the seam for importers.

One `.safetensors` file per checkpoint. Tensors are grouped by role with a
prefix: a DM stores `model.*` (the weights to analyse and sample: the EMA when
training kept one); a GAN stores `generator.*` and `discriminator.*`. The
safetensors metadata holds one JSON header under the key "dstab": kind,
architecture configs, diffusion (schedule, T, prediction type), dataset,
step, seed, git commit, storage dtype and the sha256 of the weights, which
`load()` verifies. Weights may be stored as float16; they always load as float32.

Other files go through the importers of `dstab.importers`, asked in the order
of its static table `IMPORTERS`; a pickle is only ever opened with
`torch.load(weights_only=True)`. The Bundle and the header live in
`dstab.bundle`, which the importers share with this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from . import budgets, stfile
from .bundle import (  # noqa: F401 (part of this module's API)
    FORMAT,
    FORMAT_VERSION,
    OPTIONAL_ROLES,
    ROLES,
    Bundle,
    build_filled,
    check_archive,
    make_header,
    safe_torch_load,
)
from .diffusion import Diffusion
from .errors import DstabError
from .fileio import atomic_write_bytes, file_sha256, git_commit  # noqa: F401 (part of this module's API)
from .importers import IMPORTERS


def weights_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Hash of names, dtypes, shapes and bytes, independent of file layout."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        stfile.hash_tensor(h, key, tensors[key])
    return h.hexdigest()


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
    table = stfile.parse_table(raw[8 : 8 + header_len], path)  # its tensor count, before any tensor is made
    try:
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
    if path.is_file():  # what a file's own directory says it holds, before anything in it is read
        stfile.read_table(path) if path.suffix == ".safetensors" else check_archive(path)
    if path.is_file() and path.suffix == ".safetensors":
        budgets.check_memory(path.stat().st_size, f"reading {path}")
        raw = path.read_bytes()
        bundle = _load_native(path, raw)
        if bundle is not None:
            return bundle
    for importer in IMPORTERS:
        if importer.detect(path):
            bundle = importer.load(path, **hints)
            if bundle.sha256 is None and path.is_file():
                bundle.sha256 = file_sha256(path)
            return bundle
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        safe_torch_load(path)  # refuses code-running pickles with a clear message
    known = ", ".join(importer.name for importer in IMPORTERS)
    raise DstabError(f"{path} is not a dstab checkpoint and no importer recognises it (importers: {known})")
