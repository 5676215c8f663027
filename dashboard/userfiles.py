"""User checkpoints on the server: paths confined to allowed roots, bounded uploads.

The dashboard may be opened by people who should not be able to read arbitrary
files on the server, so a typed path is only accepted inside the zoo, the
workspace or a root the operator lists in DSTAB_ALLOWED_ROOTS (os.pathsep
separated). Uploads are capped (DSTAB_MAX_UPLOAD_MB, default 64) below
Streamlit's own server.maxUploadSize so that the user gets our message rather
than a transport error, checked to be a loadable checkpoint, and only then kept.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from dstab import fileio, zooindex
from dstab.errors import DstabError

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")
DEFAULT_MAX_UPLOAD_MB = 64


def workspace_root() -> Path:
    return Path(os.environ.get("DSTAB_WORKSPACE", Path(__file__).resolve().parent.parent / "workspace"))


def uploads_dir() -> Path:
    return workspace_root() / "uploads"


def max_upload_bytes() -> int:
    return int(float(os.environ.get("DSTAB_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)) * 2**20)


def allowed_roots() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("DSTAB_ALLOWED_ROOTS", "").split(os.pathsep) if p.strip()]
    return [p.resolve() for p in (zooindex.zoo_root(), workspace_root(), *extra)]


def confined_path(text: str) -> Path:
    """The resolved path if it lies inside an allowed root (symlinks followed first)."""
    text = (text or "").strip()
    if not text:
        raise DstabError("empty checkpoint path; type the path of a .safetensors (or .pt) file on the server")
    path = Path(text).expanduser().resolve()
    roots = allowed_roots()
    if not any(path.is_relative_to(r) for r in roots):
        listed = ", ".join(str(r) for r in roots)
        raise DstabError(
            f"{text} is outside the folders this server may read ({listed}); copy the checkpoint into one of "
            "them, upload it, or have the operator add its folder to DSTAB_ALLOWED_ROOTS"
        )
    if not path.exists():
        raise DstabError(f"no file at {path}; check the path")
    return path


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem).strip("._")
    return stem[:60] or "checkpoint"


def require_upload_size(name: str, size: int) -> None:
    limit = max_upload_bytes()
    if size > limit:
        raise DstabError(
            f"{name} is {size / 2**20:.1f} MiB, above this server's upload limit of {limit / 2**20:.0f} MiB; "
            "place the file in an allowed folder on the server and give its path instead"
        )


def save_upload(name: str, payload: bytes) -> Path:
    """Keep an uploaded checkpoint in the workspace if it is small enough and loads.

    The file is named by its content hash, so uploading the same bytes twice
    reuses one file and two different files never overwrite each other.
    """
    require_upload_size(name, len(payload))
    suffix = Path(name).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise DstabError(f"{name} is not a checkpoint file; upload one of {', '.join(CHECKPOINT_SUFFIXES)}")
    digest = hashlib.sha256(payload).hexdigest()
    target = uploads_dir() / f"{digest[:16]}-{_safe_stem(name)}{suffix}"
    if target.exists():
        return target
    fileio.atomic_write_bytes(target, payload)
    from dstab import checkpoints  # PyTorch is imported when a checkpoint is loaded, not before

    try:
        checkpoints.load(target)
    except DstabError as exc:
        target.unlink(missing_ok=True)
        raise DstabError(f"{name} was not kept: {exc}") from None
    return target
