"""Cached surfaces and interpolation curves for checkpoints: what the CLI and the pages call.

A result is looked up in the results cache (shipped zoo results first) by
the checkpoint's sha256 and every parameter it depends on, and computed only
when missing. The probe parameters and the analysis parameters together are
the cache parameters; device and evaluation strategy are not (they change
values by rounding only).

Defaults, chosen to be cheap on a CPU and to show the paper's per-timestep
picture: 21 x 21 grid over [-1, 1]^2, probe batch 64 with seed 0, DM
timesteps 50, 500, 900 of T = 1000 (low, middle and high noise), GAN probes
for both roles, interpolation over [-0.5, 1.5] at 20 points per unit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .. import cache, checkpoints, models, zoo
from ..checkpoints import Bundle
from ..errors import DstabError, require
from ..probes import probe_for
from . import distributed, landscape, reference
from .interpolation import Curve, interpolate, interpolation_params
from .landscape import Surface

ENGINES = ("dstab", reference.ENGINE)
DEFAULT_TIMESTEPS = (50, 500, 900)
# the landscape page's timestep choices: the zoo ships a surface of every DM at each (small multiples, instant slider)
SURFACE_TIMESTEPS = (1, 10, 50, 100, 250, 500, 750, 900, 999)
DEFAULT_ROLES = ("g", "d")
DEFAULTS = {"grid": 21, "radius": 1.0, "seed": 0, "batch_size": 64, "probe_seed": 0, "bias_mode": "ignore"}
INTERP_DEFAULTS = {"lo": -0.5, "hi": 1.5, "steps": 20}


def resolve(ref: str, stage: str = "final") -> Path:
    """A checkpoint path from a file path or a zoo id (e.g. digits/dm-eps-s0)."""
    path = Path(ref)
    if path.exists():
        return path
    try:
        return zoo.checkpoint_path(str(ref), stage)
    except DstabError as exc:
        raise DstabError(f"{ref!r} is neither a checkpoint file nor a zoo id ({exc})") from None


def load(ref: str, stage: str = "final") -> Bundle:
    bundle = checkpoints.load(resolve(ref, stage))
    if Path(ref).exists():
        return bundle
    bundle.header = {**bundle.header, "name": f"{ref}@{stage}"}
    return bundle


def _archs(bundle: Bundle) -> list[dict]:
    """The complete architecture configs of a checkpoint's networks."""
    arch = bundle.header["arch"]
    return [models.normalise(a) for a in ([arch] if bundle.kind == "dm" else arch.values())]


def probe_params(bundle: Bundle, timestep: int | None, role: str | None, batch_size: int, probe_seed: int) -> dict:
    """The probe's part of the cache parameters (role fixed to 'g' for GANs when not given)."""
    if bundle.kind == "gan":
        require(timestep is None, f"{bundle.name} is a GAN; a timestep applies to DMs only (use --role g|d)")
        return {"kind": "gan", "role": role or "g", "batch_size": int(batch_size), "seed": int(probe_seed)}
    require(role is None, f"{bundle.name} is a DM; --role applies to GANs only (use --timestep)")
    require(timestep is not None, f"{bundle.name} is a DM: give a timestep (e.g. --timestep 500)")
    return {"kind": "dm", "timesteps": [int(timestep)], "batch_size": int(batch_size), "seed": int(probe_seed)}


def _probe(bundle: Bundle, p: dict, device: torch.device):
    timesteps = p.get("timesteps")
    return probe_for(bundle, timesteps, p.get("role"), p["batch_size"], p["seed"]).to(device)


def _cached(name: str, params: dict, shas: list, compute: Callable[[], tuple[dict, dict]], refresh: bool, root):
    """cache.get_or_compute, except that under torchrun only rank 0 writes."""
    if distributed.world()[0] == 0:
        return cache.get_or_compute(name, params, shas, compute, refresh=refresh, root=root)
    found = None if refresh else cache.lookup(name, params, shas)
    return found or cache.Result(*compute(), key="", source="computed")


def surface_for(
    bundle: Bundle,
    timestep: int | None = None,
    role: str | None = None,
    grid: int = DEFAULTS["grid"],
    radius: float = DEFAULTS["radius"],
    seed: int = DEFAULTS["seed"],
    batch_size: int = DEFAULTS["batch_size"],
    probe_seed: int = DEFAULTS["probe_seed"],
    bias_mode: str = DEFAULTS["bias_mode"],
    engine: str = "dstab",
    device="cpu",
    strategy: str | None = None,
    refresh: bool = False,
    progress: Callable[[int], object] | None = None,
    root: Path | None = None,
) -> tuple[Surface, str]:
    """(surface, where it came from: 'shipped', 'user' or 'computed')."""
    require(engine in ENGINES, f"unknown engine {engine!r}; choose one of {ENGINES}")
    landscape.grid_coordinates(grid, radius)  # bad grids fail before any loading or compute
    pp = probe_params(bundle, timestep, role, batch_size, probe_seed)
    params = {"probe": pp, **landscape.surface_params(grid, radius, seed, bias_mode, engine)}
    device = distributed.local_device(torch.device(device))

    def compute():
        probe = _probe(bundle, pp, device)
        if engine == reference.ENGINE:
            return reference.surface_ll(probe, grid, radius, seed, bias_mode, progress).to_record()
        if distributed.init(device):
            rank, size = distributed.world()
            part = landscape.surface(
                probe, grid, radius, seed, bias_mode, strategy, distributed.rows_for(grid, rank, size), progress
            )
            return distributed.gather(part).to_record()
        return landscape.surface(probe, grid, radius, seed, bias_mode, strategy, None, progress).to_record()

    found = _cached("surface", params, [bundle.sha256], compute, refresh, root)
    return Surface.from_record(found.meta, found.arrays), found.source


def interpolation_for(
    bundle_a: Bundle,
    bundle_b: Bundle,
    timestep: int | None = None,
    role: str | None = None,
    lo: float = INTERP_DEFAULTS["lo"],
    hi: float = INTERP_DEFAULTS["hi"],
    steps: int = INTERP_DEFAULTS["steps"],
    batch_size: int = DEFAULTS["batch_size"],
    probe_seed: int = DEFAULTS["probe_seed"],
    device="cpu",
    refresh: bool = False,
    progress: Callable[[int], object] | None = None,
    root: Path | None = None,
) -> tuple[Curve, str]:
    """(curve from b at alpha = 0 to a at alpha = 1, where it came from)."""
    if bundle_a.kind != bundle_b.kind:
        raise DstabError(f"cannot interpolate a {bundle_a.kind} checkpoint with a {bundle_b.kind} checkpoint")
    if _archs(bundle_a) != _archs(bundle_b):
        raise DstabError(
            f"{bundle_a.name} and {bundle_b.name} have different architectures; "
            "interpolate between checkpoints of one architecture"
        )
    pp = probe_params(bundle_a, timestep, role, batch_size, probe_seed)
    params = {"probe": pp, **interpolation_params(lo, hi, steps)}
    device = torch.device(device)

    def compute():
        a, b = _probe(bundle_a, pp, device), _probe(bundle_b, pp, device)
        return interpolate(a, b, lo, hi, steps, progress).to_record()

    found = _cached("interpolate", params, [bundle_a.sha256, bundle_b.sha256], compute, refresh, root)
    return Curve.from_record(found.meta, found.arrays), found.source
