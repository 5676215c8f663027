"""Where the zoo lives and what its manifest says, readable without PyTorch.

The dashboard's home page shows the zoo's numbers from the manifest and the
shipped results before anything imports torch; `dstab.zoo` (which trains and
verifies the zoo) re-exports these names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import DstabError

MANIFEST = "manifest.json"


PACKAGE = Path(__file__).resolve().parent
INSTALLED_ZOO = PACKAGE / "zoo_data"  # where `pip install .` puts checkpoints/ (setup.py: package data)
CHECKOUT_ZOO = PACKAGE.parent / "checkpoints"  # a source checkout (or an editable install of one)


def zoo_root() -> Path:
    """Where the zoo is, by one rule: $DSTAB_ZOO if set; else the copy installed with the package
    (`dstab/zoo_data`, a non-editable install); else `checkpoints/` beside the package (a checkout)."""
    if os.environ.get("DSTAB_ZOO"):
        return Path(os.environ["DSTAB_ZOO"])
    return INSTALLED_ZOO if (INSTALLED_ZOO / MANIFEST).exists() else CHECKOUT_ZOO


def manifest_path(root: Path | None = None) -> Path:
    """The zoo's manifest file, which must exist."""
    path = (root or zoo_root()) / MANIFEST
    if not path.exists():
        where = "DSTAB_ZOO" if os.environ.get("DSTAB_ZOO") and root is None else "the zoo folder"
        raise DstabError(
            f"no zoo manifest at {path} ({where}); set DSTAB_ZOO to the folder that holds the zoo's manifest.json "
            "(a dstab checkout's checkpoints/), or build a zoo there with `dstab zoo build`"
        )
    return path


def writable_zoo(root: Path | None = None) -> Path:
    """The zoo folder a command may write (build, precompute, measure): not the copy inside the installed
    package, which is shared by every user of the install and may be read-only."""
    root = Path(root or zoo_root())
    if root.resolve() == INSTALLED_ZOO.resolve():
        raise DstabError(
            f"{root} is the zoo installed with the package; copy it to a folder of yours and set DSTAB_ZOO "
            "to that folder (or pass --root) before writing to it"
        )
    return root


def read_manifest(root: Path | None = None) -> dict:
    return json.loads(manifest_path(root).read_text())


def checkpoint_path(entry_id: str, stage: str = "final", root: Path | None = None) -> Path:
    """The file of a zoo entry's checkpoint at `stage` ('final', 'early', ...), from the manifest."""
    root = Path(root or zoo_root())
    entries = read_manifest(root)["entries"]
    if entry_id not in entries:
        raise DstabError(f"no zoo entry {entry_id!r}; known: {sorted(entries)}")
    stages = entries[entry_id]["checkpoints"]
    if stage not in stages:
        raise DstabError(f"zoo entry {entry_id!r} has no {stage!r} checkpoint; stages: {sorted(stages)}")
    return root / stages[stage]["path"]


def resolve_checkpoint(ref: str, stage: str = "final") -> Path:
    """A checkpoint path from a file path or a zoo id (e.g. digits/dm-eps-s0)."""
    path = Path(ref)
    if path.exists() or path.suffix or path.is_absolute() or "\x00" in str(ref) or str(ref).startswith("."):
        return path  # a file name, not an id: the loader says what is wrong with it
    try:
        return checkpoint_path(str(ref), stage)
    except DstabError as exc:
        raise DstabError(f"{ref!r} is neither a checkpoint file nor a zoo id ({exc})") from None


def group_ids(entries: dict, family: str, group: str) -> list[str]:
    """Manifest ids of a family's group (e.g. 'digits', 'dm-init'), sorted: the seed-0 run comes first."""
    return sorted(eid for eid, e in entries.items() if eid.startswith(f"{family}/") and group in e.get("groups", []))


def is_collapsed(entry: dict) -> bool:
    """Whether the manifest records the entry's samples as mode-collapsed (`dstab.collapse`)."""
    return bool((entry.get("collapse") or {}).get("collapsed"))


def collapse_label(entry: dict) -> str:
    """'collapsed: 1 of 8 modes' for a collapsed entry, '' for a healthy or unmeasured one."""
    c = entry.get("collapse") or {}
    return f"collapsed: {c['coverage']} of {c['modes']} modes" if c.get("collapsed") else ""


def collapse_rows(entries: dict) -> list[dict]:
    """One row per measured entry: coverage, precision (toy2d) or confident share and class entropy
    (digits), the collapsed flag and its rule; fields a dataset lacks are None."""
    rows = []
    for eid, e in sorted(entries.items()):
        c = e.get("collapse")
        if c:
            keys = ("coverage", "modes", "precision", "confident_share", "class_entropy", "collapsed", "rule")
            rows.append({"id": eid, "dataset": e.get("dataset"), **{k: c.get(k) for k in keys}})
    return rows
