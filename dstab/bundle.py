"""A loaded checkpoint (`Bundle`), its header, and what every loader shares.

`dstab.checkpoints` (dstab's own format) and each importer of a published
format (`dstab.importers`) build their Bundles with these: the header fields,
the checked filling of a module with a state dict, and a `torch.load` that
never runs pickled code. This module imports neither of them, so the
importers depend on it and `checkpoints` on the importers, one way.
"""

from __future__ import annotations

import datetime as _dt
import io
import pickle
import pickletools
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import __version__, budgets, models, sizing
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

    def nonfinite_weights(self) -> list[str]:
        """`role.key` of every floating tensor holding NaN or inf (a diverged or damaged checkpoint)."""
        return [f"{role}.{key}" for role, m in self.modules.items() for key in nonfinite(m.state_dict())]

    def require_finite(self, what: str) -> None:
        """DstabError naming the first NaN/inf tensor, for analyses whose numbers would all be NaN."""
        bad = self.nonfinite_weights()
        if bad:
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise DstabError(
                f"{self.name}: {bad[0]}{more} hold NaN or inf weights, so {what} would be NaN; "
                "the checkpoint is damaged or its training diverged"
            )


def nonfinite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating tensors of `tensors` that hold NaN or inf."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


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
    `what` names the source in the error, `problem` says what a misfit means there.

    The network is first built on the meta device (`sizing.meta_module`: no storage), its parameter
    count checked against the budget and its keys and shapes against `state`, so a header declaring a
    huge network is refused before anything is allocated; it is then filled without a copy."""
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
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    if {name for name, _ in module.named_buffers()} - set(own):
        module = models.build(arch)  # a non-persistent buffer: it needs the builder's values
        module.load_state_dict(state)
    else:
        # the module takes the tensors themselves (a read file's, or a memory-mapped .pt's): no copy
        module.load_state_dict(state, assign=True)
    return module.eval()


EOCD, EOCD64, EOCD64_LOCATOR = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
CENTRAL_ENTRY_BYTES = 46  # the fixed part of one central-directory entry: no member takes less


def _directory_size(path: Path) -> tuple[int, int]:
    """(members the zip's end record states, bytes of its central directory), from the last 64 KiB of the
    file (the end record, and its zip64 form): what a zip holds, before its directory is parsed."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
        at = tail.rfind(EOCD)
        if at < 0 or len(tail) < at + 22:
            raise DstabError(f"{path}: damaged zip archive (no end record); re-save the checkpoint with torch.save")
        members, cd_bytes = struct.unpack("<10xHL6x", tail[at : at + 22])
        if at >= 20 and tail[at - 20 : at - 16] == EOCD64_LOCATOR:  # zip64: counts beyond 65,535
            (offset,) = struct.unpack("<8xQ4x", tail[at - 20 : at])
            f.seek(offset)
            record = f.read(56)
            if len(record) == 56 and record[:4] == EOCD64:
                members, cd_bytes = struct.unpack("<32xQQ8x", record)
    return members, cd_bytes


def check_archive(path: Path) -> None:
    """Refuse a zip checkpoint (PyTorch's format) that holds too many members (counted from its end record
    and its directory's size, before the directory is parsed), or whose members would inflate beyond what
    its size on disk allows, or the memory budget: read from the zip's directory alone."""
    if not zipfile.is_zipfile(path):
        return
    stated, cd_bytes = _directory_size(path)
    room, limit = cd_bytes // CENTRAL_ENTRY_BYTES, budgets.limit("DSTAB_MAX_ARCHIVE_MEMBERS")
    if max(stated, room) > limit:
        held = f"lists {stated:,} members" if stated > limit else f"has room for {room:,} members"
        raise DstabError(
            f"{path}: refused: its zip directory {held}, above the DSTAB_MAX_ARCHIVE_MEMBERS limit of {limit:,}; "
            "raise DSTAB_MAX_ARCHIVE_MEMBERS if the file is a real checkpoint"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DstabError(f"{path}: damaged zip archive ({exc}); re-save the checkpoint with torch.save") from None
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
