"""Custom architectures: registered in code, by an installed package, or by a file the operator names.

A checkpoint written by `dstab.checkpoints.save` records its architecture config
(`{"arch": NAME, ...}`); loading it builds `NAME` from the architecture table of
`dstab.models`. To open checkpoints of an architecture of your own (on the CLI or
in the dashboard), register it under its name, in one of three ways:

- in code: `dstab.register_architecture("mynet", MyNet)` (`dstab.models` holds the table);
- an installed package: an entry point in the group `dstab.architectures`,
  `mynet = "mypkg.nets:MyNet"` (the entry point's name is the architecture's name);
- `DSTAB_PLUGINS`: os.pathsep-separated Python files, each inside the allowed roots
  (the zoo, the workspace or DSTAB_ALLOWED_ROOTS, as for checkpoint paths typed into
  the dashboard), which call `dstab.register_architecture` when run.

Plugins are loaded once, the first time an unknown architecture name is met. None
may take a built-in name (`dstab.models.BUILTIN`): an entry point that tries is
skipped with a PluginWarning, a DSTAB_PLUGINS file that tries is refused.
`MyNet(config)` receives the config dict; a DM's network is called `net(x, t)`, a
GAN's generator needs a `latent_shape` attribute. A config may carry "sample_shape"
(e.g. [3, 32, 32]) so that sampling knows what one sample looks like.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from importlib import metadata

from . import confine
from .errors import DstabError

GROUP = "dstab.architectures"
_loaded = False


class PluginWarning(UserWarning):
    """An installed package's entry point that was skipped (it names a built-in architecture)."""


def _run_file(text: str) -> None:
    path = confine.inside_roots(text, "DSTAB_PLUGINS file")
    if path.suffix != ".py" or not path.is_file():
        raise DstabError(f"DSTAB_PLUGINS names {text}, which is not a Python file")
    spec = importlib.util.spec_from_file_location(f"dstab_plugin_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def _entry_points() -> list:
    return list(metadata.entry_points(group=GROUP))


def load_plugins(register: Callable[[str, type], None], force: bool = False) -> None:
    """Register the architectures of installed packages (through `register(name, cls)`, i.e.
    `dstab.models.register_architecture`) and run the DSTAB_PLUGINS files (once)."""
    global _loaded
    if _loaded and not force:
        return
    _loaded = True
    for ep in _entry_points():
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party package must say which
            raise DstabError(f"entry point {ep.name} = {ep.value} ({GROUP}) cannot be loaded: {exc}") from None
        try:
            register(ep.name, cls)
        except DstabError as exc:  # a built-in name: the package's other plugins still load
            warnings.warn(f"entry point {ep.name} = {ep.value} ({GROUP}) skipped: {exc}", PluginWarning, stacklevel=2)
    for text in os.environ.get("DSTAB_PLUGINS", "").split(os.pathsep):
        if text.strip():
            _run_file(text.strip())
