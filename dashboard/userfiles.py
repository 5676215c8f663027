"""User checkpoints on the server: paths confined to allowed roots, bounded uploads.

The dashboard may be opened by people who should not be able to read arbitrary
files on the server, so a typed path is only accepted inside the zoo, the
workspace or a root the operator lists in DSTAB_ALLOWED_ROOTS (os.pathsep
separated). Uploads are capped (DSTAB_MAX_UPLOAD_MB, default 64) below
Streamlit's own server.maxUploadSize so that the user gets our message rather
than a transport error, checked to be a loadable checkpoint, and only then kept;
all kept uploads together stay under DSTAB_UPLOAD_QUOTA_MB (default 1024).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from dstab import fileio
from dstab.confine import allowed_roots, confined_path, workspace_root  # noqa: F401 (this module's API)
from dstab.errors import DstabError

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")
DEFAULT_MAX_UPLOAD_MB = 64
DEFAULT_UPLOAD_QUOTA_MB = 1024


def uploads_dir() -> Path:
    return workspace_root() / "uploads"


def max_upload_bytes() -> int:
    return int(float(os.environ.get("DSTAB_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)) * 2**20)


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


def max_uploads_bytes() -> int:
    return int(float(os.environ.get("DSTAB_UPLOAD_QUOTA_MB", DEFAULT_UPLOAD_QUOTA_MB)) * 2**20)


def require_quota(name: str, size: int) -> None:
    """All kept uploads together stay under DSTAB_UPLOAD_QUOTA_MB (default 1024)."""
    folder = uploads_dir()
    used = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() else 0
    quota = max_uploads_bytes()
    if used + size > quota:
        raise DstabError(
            f"{name} was not kept: the server's uploads ({used / 2**20:.0f} MiB) would exceed their quota of "
            f"{quota / 2**20:.0f} MiB; ask the operator to clear {folder} or raise DSTAB_UPLOAD_QUOTA_MB"
        )


def save_upload(name: str, payload: bytes) -> Path:
    """Keep an uploaded checkpoint in the workspace if it is small enough, fits the quota and loads.

    The file is named by its content hash, so uploading the same bytes twice
    reuses one file and two different files never overwrite each other. A file
    that fails to load is deleted whatever the failure.
    """
    require_upload_size(name, len(payload))
    suffix = Path(name).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise DstabError(f"{name} is not a checkpoint file; upload one of {', '.join(CHECKPOINT_SUFFIXES)}")
    digest = hashlib.sha256(payload).hexdigest()
    target = uploads_dir() / f"{digest[:16]}-{_safe_stem(name)}{suffix}"
    if target.exists():
        return target
    require_quota(name, len(payload))
    fileio.atomic_write_bytes(target, payload)
    from dstab import checkpoints  # PyTorch is imported when a checkpoint is loaded, not before

    try:
        checkpoints.load(target)
    except DstabError as exc:
        target.unlink(missing_ok=True)
        raise DstabError(f"{name} was not kept: {exc}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
