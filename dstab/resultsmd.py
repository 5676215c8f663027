"""RESULTS.md is written by several commands, each owning one marked section.

A section runs from `<!-- BEGIN name -->` to `<!-- END name -->`; a command
replaces its own section (or appends it) and leaves every other one as it was.
"""

from __future__ import annotations

from pathlib import Path

from .fileio import atomic_write_bytes

HEADER = "# dstab results\n\nGenerated sections, one per command; rerun a command to refresh its section.\n"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the section `name` of the file at `path` with `body` (markers added), or append it."""
    begin, end = markers(name)
    section = f"{begin}\n{body.strip()}\n{end}\n"
    path = Path(path)
    text = path.read_text() if path.exists() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_bytes(path, text.encode())
