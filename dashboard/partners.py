"""What a picked checkpoint can be compared with: the other end of an interpolation line, and the
members of a consistency group the user forms from checkpoints of one kind.

A user's checkpoint is a first-class citizen here: a training run's folder holds a checkpoint per saved
step (`stepNNNNNNN.safetensors`), and those steps are offered as the line's early end, the earliest
first, just as a zoo run's early checkpoint is; so is any other listed checkpoint of the same kind and
architecture (the zoo's, the user's). Files in the pick's own folder are listed without loading them
(one run: one architecture); whatever is chosen is checked by the analysis spec, which names a mismatch.
"""

from __future__ import annotations

import re
from pathlib import Path

from dstab.errors import DstabError

from . import sidebar, userfiles

MAX_SIBLINGS = 200  # a run folder's checkpoints offered as ends (the earliest ones)
STEP = re.compile(r"step0*(\d+)")


def _arch(bundle) -> list:
    arch = bundle.header.get("arch")
    return [arch] if bundle.kind == "dm" else list((arch or {}).values())


def _step_key(path: Path) -> tuple:
    found = STEP.fullmatch(path.stem)
    return (0, int(found.group(1)), path.name) if found else (1, 0, path.name)


def siblings(path: Path) -> list[Path]:
    """Checkpoint files beside `path` (a run's steps, the earliest first), `path` itself left out."""
    folder = Path(path).parent
    try:
        files = [f for f in folder.iterdir() if f.suffix in userfiles.CHECKPOINT_SUFFIXES and f != Path(path)]
    except OSError:
        return []
    return [f for f in sorted(files, key=_step_key)[:MAX_SIBLINGS] if _confined(f)]


def _confined(path: Path) -> bool:
    """A file beside a confined one may still be a link out of the allowed roots."""
    try:
        userfiles.confined_path(str(path))
    except DstabError:
        return False
    return True


def _label(path: Path) -> str:
    found = STEP.fullmatch(path.stem)
    return f"yours: {path.name}" + (f" (step {int(found.group(1))})" if found else "")


def early_ends(choice, selection) -> dict[str, Path]:
    """{label: path} of the checkpoints a line to `choice` (alpha = 1) may start from (alpha = 0), the default
    first: a zoo run's early checkpoint, the pick's own folder's other checkpoints (a run's steps), then the
    listed checkpoints of the same kind and architecture."""
    out: dict[str, Path] = {}
    if choice.early is not None:
        out[f"{choice.label}, early checkpoint"] = choice.early
    if not choice.is_zoo:
        out.update({_label(f): f for f in siblings(choice.path)})
    mine = sidebar.load_bundle(choice.path)
    listed = {
        **{
            r: c
            for r, c in sidebar.zoo_choices(selection.manifest["entries"]).items()
            if r.startswith(selection.family + "/")
        },
        **sidebar.user_choices(),
    }
    for ref, other in listed.items():
        if other.kind != choice.kind or ref == choice.ref or other.path in out.values():
            continue
        try:
            same = _arch(sidebar.load_bundle(other.path)) == _arch(mine)
        except (DstabError, OSError):
            continue
        if same:
            out[other.label] = other.path
            if other.early is not None:
                out[f"{other.label}, early checkpoint"] = other.early
    return out
