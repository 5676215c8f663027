"""What a file from elsewhere may name: paths inside the allowed roots, datasets a header may ask for.

A dashboard may be reached by people who must not read arbitrary files of the
server, and a checkpoint is such a file: its header's `dataset` is data, not an
instruction. So a typed path, a shared link's path and a header's dataset are
accepted only inside the zoo, the workspace ($DSTAB_WORKSPACE, default
~/.local/share/dstab/workspace) or a root the operator lists in DSTAB_ALLOWED_ROOTS
(os.pathsep separated). A dataset picked explicitly follows the same one rule
(`chosen_dataset`: the CLI's --dataset); the page's Dataset control offers
only the built-in names.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import zooindex
from .errors import DstabError

BUILTIN_DATASETS = ("digits", "toy2d")  # generated or shipped with a package: they name no file
MAX_PATH_CHARS = 4096


def workspace_root() -> Path:
    """$DSTAB_WORKSPACE, else the user's data directory: $XDG_DATA_HOME/dstab/workspace (default
    ~/.local/share/dstab/workspace); never inside the installed package. Runs live in its runs/."""
    if os.environ.get("DSTAB_WORKSPACE"):
        return Path(os.environ["DSTAB_WORKSPACE"])
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "dstab" / "workspace"


def allowed_roots() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("DSTAB_ALLOWED_ROOTS", "").split(os.pathsep) if p.strip()]
    return [p.resolve() for p in (zooindex.zoo_root(), workspace_root(), *extra)]


def _resolved(text: str, what: str) -> Path:
    if "\x00" in text or len(text) > MAX_PATH_CHARS:
        raise DstabError(f"{what} {text[:60]!r}... is not a usable path (a NUL byte, or over {MAX_PATH_CHARS} chars)")
    try:
        return Path(text).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, names too long
        raise DstabError(f"{what} {text[:200]!r} cannot be resolved ({exc}); check the path") from None


def inside_roots(text: str, what: str = "path") -> Path:
    """`text` resolved (symlinks followed first) if it lies inside an allowed root, else DstabError."""
    path = _resolved(text, what)
    roots = allowed_roots()
    if not any(path.is_relative_to(r) for r in roots):
        listed = ", ".join(str(r) for r in roots)
        raise DstabError(
            f"{what} {text[:200]} is outside the folders this server may read ({listed}); copy it into one of "
            "them or have the operator add its folder to DSTAB_ALLOWED_ROOTS"
        )
    return path


def like(given: Path, inner: Path) -> Path:
    """`inner`, a file read because the user named `given` (a diffusers folder's config and weights, a
    DCGAN's netD beside its netG), confined like `given`: when `given` lies inside the allowed roots, so
    must `inner`, symlinks followed, so that a link inside an allowed folder reaches nothing outside them."""
    roots = allowed_roots()
    if any(_resolved(str(given), "path").is_relative_to(r) for r in roots):
        target = _resolved(str(inner), "path")
        if not any(target.is_relative_to(r) for r in roots):
            raise DstabError(
                f"{inner} leads to {target}, outside the folders this server may read "
                f"({', '.join(str(r) for r in roots)}); copy the file itself into {given}"
            )
    return inner


def confined_path(text: str) -> Path:
    """A checkpoint path typed or linked by a visitor: inside an allowed root and existing."""
    text = (text or "").strip()
    if not text:
        raise DstabError("empty checkpoint path; type the path of a .safetensors (or .pt) file on the server")
    path = inside_roots(text, "checkpoint path")
    try:
        exists = path.exists()
    except OSError as exc:
        raise DstabError(f"{text[:200]} cannot be read ({exc.strerror}); check the path") from None
    if not exists:
        raise DstabError(f"no file at {path}; check the path")
    return path


def _refusal(spec: str) -> str | None:
    """Why dataset `spec` may not be read (None: it may). The one rule: a built-in set (digits,
    toy2d[:variant]), CIFAR-10 from dstab's own download, or a cifar10:/folder: path inside an allowed root."""
    family, _, option = spec.partition(":")
    if family in BUILTIN_DATASETS or (family == "cifar10" and not option.partition("?")[0]):
        return None
    if family not in ("cifar10", "folder"):
        return "is not one dstab knows"
    where = option.partition("?")[0]
    try:
        if not where.strip():
            raise DstabError("it names no folder")
        inside_roots(where, "dataset folder")
    except DstabError as exc:
        return f"was refused ({exc})"
    return None


def header_dataset(spec, what: str) -> str:
    """A dataset spec taken from a checkpoint's header, if it names no file outside the allowed roots
    (`_refusal`). Anything else is refused, telling the user how to pick one."""
    fix = "pick the dataset explicitly (--dataset on the CLI, the Dataset control on the page)"
    if not isinstance(spec, str) or not spec.strip():
        raise DstabError(f"{what}: its header names no dataset; {fix}")
    if why := _refusal(spec):
        raise DstabError(f"{what}: the header's dataset {spec[:200]!r} {why}; {fix}")
    return spec


def chosen_dataset(spec, option: str = "--dataset") -> str:
    """A dataset the user picked (`option`), under the same rule as a header's; DstabError naming the option."""
    fix = "give digits, toy2d[:variant], cifar10, or folder:PATH / cifar10:PATH inside the allowed roots"
    if not isinstance(spec, str) or not spec.strip():
        raise DstabError(f"{option} is empty; {fix}")
    spec = spec.strip()
    if why := _refusal(spec):
        raise DstabError(f"{option} {spec[:200]!r} {why}; {fix}")
    return spec
