"""Importers for published checkpoint formats, in the static table `IMPORTERS`.

`dstab.checkpoints.load` asks each importer in the table's order whether it
recognises a path; the last one claims any leftover state dict only to explain
which of `LAYOUTS` it is closest to. The importers build their Bundles with
`dstab.bundle` and never import `dstab.checkpoints`, so the imports run one way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..bundle import Bundle
from . import dcgan, diffusers_folder, openai, state_dicts


class Importer(NamedTuple):
    name: str
    detect: Callable[[Path], bool]
    load: Callable[..., Bundle]


# published key layouts a state dict that no importer claimed is compared with
LAYOUTS = (openai.LAYOUT, dcgan.LAYOUT)


def _diagnose(path: Path, **_hints) -> Bundle:
    state_dicts.diagnose(path, LAYOUTS)  # always raises


IMPORTERS = (
    Importer("improved/guided-diffusion", openai.detect, openai.load),
    Importer("pytorch/examples DCGAN", dcgan.detect, dcgan.load),
    Importer("diffusers", diffusers_folder.detect, diffusers_folder.load),
    Importer("unrecognised state dict", state_dicts.is_state_dict, _diagnose),
)
