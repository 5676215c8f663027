"""Plain PyTorch state dicts: reading them once, and naming the layout they are closest to.

Importers of `.pt`/`.pth` files share `read_state_dict`, which unwraps the usual
containers and memory-maps the file, so that detection and loading cost no copy
of a large checkpoint. `diagnose` backs the last importer tried: a state dict
that no importer claimed gets an error naming the closest of the known layouts
(`dstab.importers.LAYOUTS`) and the first keys that do not fit it.
`module_from_state` builds the dstab module an importer fills.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..bundle import build_filled, check_archive, safe_torch_load
from ..errors import DstabError

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
# containers that training scripts commonly wrap a state dict in
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


def _unwrapped(obj) -> dict[str, torch.Tensor] | None:
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    # torch.nn.DataParallel / DistributedDataParallel save every key under "module."
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def read_state_dict(path: Path) -> dict[str, torch.Tensor] | None:
    """The tensors of a pickled state dict (float as stored), or None if `path` holds
    something else. Refused pickles raise DstabError (see safe_torch_load).

    torch.save's zip files are memory-mapped (copy-on-write): reading one, and so detecting
    and loading it, costs no memory beyond the pages touched, and each call maps it afresh,
    so modules that took its tensors never share them with another load."""
    path = Path(path)
    if not path.is_file() or path.suffix not in PICKLE_SUFFIXES:
        return None
    check_archive(path)  # its member count and inflated size, before torch maps it
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - legacy (non-zip) files, refusals, damage: safe_torch_load says which
        obj = safe_torch_load(path)
    return _unwrapped(obj)


def has_keys(path: Path, required: tuple[str, ...]) -> bool:
    """Detection helper: a state dict holding all `required` keys; never raises."""
    try:
        state = read_state_dict(path)
    except DstabError:
        return False
    return state is not None and all(k in state for k in required)


@dataclass(frozen=True)
class Layout:
    """A published key layout: keys every such file has, and a pattern all its keys match."""

    name: str
    required: tuple[str, ...]
    pattern: str
    tail: str  # what keys look like below their top-level name, so renamed modules still score
    hint: str

    def fit(self, keys: list[str]) -> float:
        present = sum(k in keys for k in self.required)
        matching = sum(bool(re.match(self.pattern, k)) for k in keys)
        tails = sum(bool(re.match(self.tail, k.partition(".")[2])) for k in keys)
        return (present + matching + tails) / (len(self.required) + 2 * len(keys))


def module_from_state(arch: dict, state: dict, path: Path) -> torch.nn.Module:
    """The dstab module for `arch` holding an imported `state`, after checking every key and shape."""
    return build_filled(arch, state, path, "the weights do not fit the architecture")


def mismatch_message(path: Path, keys: list[str], layouts: tuple[Layout, ...]) -> str:
    best = max(layouts, key=lambda layout: layout.fit(keys))
    missing = [k for k in best.required if k not in keys]
    unexpected = [k for k in keys if not re.match(best.pattern, k)]
    return (
        f"{path}: its {len(keys)} keys match no layout dstab knows; closest is {best.name} "
        f"({best.fit(keys):.0%} fit): missing {missing[:4]}, unexpected {unexpected[:4]}. {best.hint}"
    )


def is_state_dict(path: Path) -> bool:
    try:
        return read_state_dict(path) is not None
    except DstabError:
        return False


def diagnose(path: Path, layouts: tuple[Layout, ...]):
    """Refuses a state dict no importer claimed, naming the closest of `layouts`."""
    raise DstabError(mismatch_message(path, list(read_state_dict(path)), layouts))
