"""Default results for every zoo entry, written into the shipped cache (<zoo>/results/).

Pages open on these without computing anything. Each analysis registers a
task `fn(entry_id, entry, root, device, log) -> int` (results written) under
a name; `python -m dstab precompute --only surface,interpolate` runs the
chosen ones. Results already present are skipped, so an interrupted run
resumes where it stopped. `dstab.report` registers the Hessian and consistency tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import cache, zoo
from ..errors import DstabError
from . import service

Task = Callable[..., int]
TASKS: dict[str, Task] = {}


def register(name: str, task: Task) -> None:
    TASKS[name] = task


def _probe_settings(entry: dict, timesteps=service.DEFAULT_TIMESTEPS) -> list[dict]:
    """The default probes of an entry: DM timesteps or GAN roles."""
    if entry["kind"] == "dm":
        return [{"timestep": t} for t in timesteps]
    return [{"role": r} for r in service.DEFAULT_ROLES]


def _surfaces(entry_id: str, entry: dict, root: Path, device, log) -> int:
    bundle = service.load(entry_id)
    settings = _probe_settings(entry, service.SURFACE_TIMESTEPS)
    for probe in settings:
        s, source = service.surface_for(bundle, **probe, **service.DEFAULTS, device=device, root=root)
        log(f"surface {entry_id} {probe}: centre {s.centre_loss:.4g} ({source}, {s.meta['seconds']:.1f} s)")
    return len(settings)


def _interpolations(entry_id: str, entry: dict, root: Path, device, log) -> int:
    if not {"early", "final"} <= set(entry["checkpoints"]):
        return 0
    a, b = service.load(entry_id, "final"), service.load(entry_id, "early")
    for probe in _probe_settings(entry):
        settings = {**service.INTERP_DEFAULTS, "batch_size": service.DEFAULTS["batch_size"]}
        c, source = service.interpolation_for(a, b, **probe, **settings, device=device, root=root)
        log(f"interpolate {entry_id} {probe}: roughness {c.meta['metrics']['roughness']:.3g} ({source})")
    return len(_probe_settings(entry))


register("surface", _surfaces)
register("interpolate", _interpolations)


def tasks() -> dict[str, Task]:
    """Every task: these two, and those `dstab.report` registers (hessian, consistency) on import."""
    from .. import report  # noqa: F401

    return TASKS


def run(only: list[str] | None = None, entries: str | None = None, device="cpu", log=print) -> int:
    """Run the chosen tasks (all by default) on the zoo entries whose id contains `entries`."""
    names = only or list(tasks())
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise DstabError(f"unknown precompute task(s) {unknown}; choose from {sorted(TASKS)}")
    manifest = zoo.read_manifest()
    chosen = {k: v for k, v in manifest["entries"].items() if entries is None or entries in k}
    if not chosen:
        raise DstabError(f"no zoo entry matches {entries!r}")
    root = cache.shipped_dir()
    written = 0
    for name in names:
        for entry_id, entry in sorted(chosen.items()):
            written += TASKS[name](entry_id, entry, root, device, log)
    return written
