"""File helpers every layer uses, with no heavy imports: atomic writes, JSON, file hashes, the git commit.

`dashboard` reads the zoo's manifest and shipped results through these before
PyTorch is imported, so this module must stay free of torch and numpy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def user_cache_dir() -> Path:
    """The writable user cache: $DSTAB_CACHE, else $XDG_CACHE_HOME/dstab, else ~/.cache/dstab; never inside
    the installed package. It holds the results cache (`dstab.cache`), decoded datasets, feature
    statistics and the memory guard's table (`sizing`), each in its own subfolder."""
    if os.environ.get("DSTAB_CACHE"):
        return Path(os.environ["DSTAB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dstab"


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _named(exc: OSError, path: Path) -> OSError:
    """`exc` with `path` as its file name when it has none (a write to a full disk names no file)."""
    if exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
    return exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """A temporary path beside `path`, with the same suffix (writers that read the format from the name,
    PIL, plotly, still do); when the block exits cleanly it is renamed over `path`, else removed. So a
    full disk or a crash leaves the old file or the complete new one, never half of one, and the error
    names `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide shared results from other users
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _named(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike):
    """A binary file object for a temporary file beside `path`; on a clean exit it is fsynced and
    renamed over `path` (`atomic_path`): a crash or a full disk leaves either the old file or the new
    one, never half of one. Large payloads can so be written piece by piece."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_with(path: str | os.PathLike, write) -> Path:
    """`write(a temporary path)` (PIL's `Image.save`, a figure writer), renamed over `path` once complete
    (`atomic_path`); returns `path`."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def writable_dir(path: str | os.PathLike, option: str) -> Path:
    """`path` as a folder that exists and takes new files, checked before a long computation
    (a DstabError naming `option` now, rather than a traceback when the results are ready)."""
    from .errors import DstabError

    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise DstabError(f"{option} {path} is a file, not a folder; give a folder")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".dstab-write-check-"):
            pass
    except OSError as exc:
        raise DstabError(f"{option} {path} cannot be written ({exc.strerror or exc}); choose another folder") from None
    except ValueError as exc:  # a NUL byte in the name
        raise DstabError(f"{option} {str(path)[:80]!r} is not a usable path ({exc})") from None
    return path


def writable_file(path: str | os.PathLike, what: str) -> Path:
    """`path` as a file to write: not a folder, in a folder that takes new files (`writable_dir`),
    checked before a long computation."""
    from .errors import DstabError

    path = Path(path)
    if path.is_dir():
        raise DstabError(f"{what} {path} is a folder; give the file to write")
    writable_dir(path.parent, f"{what}'s folder")
    return path


def json_safe(value, bad: list[str] | None = None, where: str = ""):
    """`value` as plain JSON types: arrays and numpy scalars (anything with `.tolist()`) become lists
    and numbers, NaN and inf become null; the path of each non-finite value is appended to `bad`."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: json_safe(v, bad, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, bad, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        if bad is not None:
            bad.append(where or "value")
        return None
    return value


def write_json(path: str | os.PathLike, obj) -> None:
    """`obj` as indented JSON, atomically. JSON has no NaN or inf: they are written as null, and a
    warning naming them goes to stderr, so a non-finite number is never written silently."""
    bad: list[str] = []
    text = json.dumps(json_safe(obj, bad), indent=2, sort_keys=True, allow_nan=False)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        print(f"warning: {path}: NaN/inf written as null at {', '.join(bad[:3])}{more}", file=sys.stderr)
    atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """`payload` written to `path` atomically (see atomic_writer)."""
    with atomic_writer(path) as f:
        f.write(payload)
