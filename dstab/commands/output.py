"""Where and how the CLI writes a result: `<stem>.json`, `<stem>.npz` and its figures, for every command.

A stem names the model(s) it belongs to, so two models written to one folder
never overwrite each other: `surface_<model>_<probe>`, `hessian_<model>_<probe>`,
`consistency_<models>`. A model's name is its zoo id or its file's stem; when
that name already holds another checkpoint's result in the folder (two files
both called final.safetensors), the checkpoint's short sha256 is appended.
JSON goes through `fileio.write_json`: NaN and inf are written as null, never
silently. Every file is written to a temporary name and renamed once complete,
so a full disk leaves no truncated output and its error names the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..fileio import atomic_writer, save_with, write_json

OWNERS = "checkpoints_sha256"  # the JSON key that says whose result a file holds
MAX_NAME = 120  # characters of a stem before its suffix; file systems allow 255


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def model_id(ref: str) -> str:
    """A model as named on the command line: a checkpoint file by its stem, a zoo id as given."""
    return Path(ref).stem if Path(ref).exists() else ref


def _path(stem: Path, suffix: str) -> Path:
    return stem.parent / (stem.name + suffix)  # not with_suffix: a stem may hold dots (model.v2)


def _owners(stem: Path) -> list | None:
    try:
        return json.loads(_path(stem, ".json").read_text()).get(OWNERS)
    except (OSError, ValueError, AttributeError):
        return None


def result_stem(out: Path, parts: list[str], shas: list[str | None]) -> Path:
    """out/<parts joined by '_'>, or with the checkpoints' short sha256 appended when that name
    already holds the result of other checkpoints."""
    name = "_".join(slug(p) for p in parts)
    if len(name) > MAX_NAME:  # many models: a readable head and a hash of the whole
        name = f"{name[: MAX_NAME - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    owners = _owners(out / name)
    if owners is not None and owners != list(shas):
        name = f"{name}-{'-'.join((s or 'nosha')[:8] for s in shas)}"
    return out / name


def write_result(
    stem: Path, record: dict, arrays: dict, shas: list[str | None], figures: dict[str, Callable[[Path], object]]
) -> list[Path]:
    """Writes `record` (plus whose it is) as JSON, `arrays` as NPZ and each figure at its suffix."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = [_path(stem, ".json"), _path(stem, ".npz")]
    write_json(written[0], {**record, OWNERS: list(shas)})
    with atomic_writer(written[1]) as f:  # each file complete or absent: a full disk leaves no half of one
        np.savez(f, **arrays)
    for suffix, draw in figures.items():
        written.append(save_with(_path(stem, suffix), draw))
    return written
