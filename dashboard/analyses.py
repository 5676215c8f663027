"""What each page asks of dstab: cache name, parameters, checkpoints and the computation.

A `Request` is everything `compute.cached` needs; building one costs nothing
(no model is evaluated), so pages build them on every rerun. The parameter
dicts here are the cache keys: the zoo's precomputed results are found only
if `python -m dstab precompute` used the same ones, which is why pages and
precompute both take them from the library's own `*_params` functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dstab import cache, probes
from dstab.analysis import consistency as consistency_mod
from dstab.analysis import hessian as hessian_mod
from dstab.analysis import landscape
from dstab.checkpoints import Bundle
from dstab.sampling import sample_shape

from .jobs import Job

# Probe settings shown by default: the paper plots DM surfaces at several t; these are the
# timesteps the precompute covers (early, middle and late in a T = 1000 chain).
DM_TIMESTEPS = (50, 500, 900)
DM_TIMESTEPS_CHOICES = sorted({1, 10, 50, 100, 250, 500, 750, 900, 999, *DM_TIMESTEPS})
PROBE_BATCH = 64
PROBE_SEED = 0
CONSISTENCY_DEFAULTS = {"num": 32, "seed": 0, "sampler": "ddpm"}  # the paper's Table 1: M = 32, ancestral sampling


@dataclass
class Request:
    name: str
    params: dict
    shas: list[str]
    compute: Callable[[Job], tuple[dict, dict]]
    label: str
    units: int  # loss evaluations or model calls, for the cost estimate


def probe_settings(bundle: Bundle, timestep: int, role: str) -> dict:
    if bundle.kind == "dm":
        return {"probe": "dm", "timesteps": [int(timestep)], "batch_size": PROBE_BATCH, "probe_seed": PROBE_SEED}
    return {"probe": f"gan-{role}", "batch_size": PROBE_BATCH, "probe_seed": PROBE_SEED}


def make_probe(bundle: Bundle, settings: dict, device) -> probes.Probe:
    if settings["probe"] == "dm":
        probe = probes.dm_probe(bundle, settings["timesteps"], settings["batch_size"], settings["probe_seed"])
    else:
        role = settings["probe"].split("-", 1)[1]
        probe = probes.gan_probe(bundle, role, settings["batch_size"], settings["probe_seed"])
    return probe.to(device)


def surface_request(bundle: Bundle, sha: str, settings: dict, grid: int, radius: float, seed: int, device) -> Request:
    params = {**settings, **landscape.surface_params(grid, radius, seed, "ignore")}

    def compute(job: Job):
        probe = make_probe(bundle, settings, device)
        total = grid * grid
        return landscape.surface(probe, grid, radius, seed, progress=lambda n: job.progress(n, total)).to_record()

    return Request("surface", params, [sha], compute, f"{bundle.name} surface", grid * grid)


def hessian_request(bundle: Bundle, sha: str, settings: dict, top_k: int, trace_samples: int, slq_runs: int,
                    seed: int, device) -> Request:  # fmt: skip
    options = {**hessian_mod.DEFAULTS, "top_k": top_k, "trace_samples": trace_samples, "slq_runs": slq_runs,
               "seed": seed}  # fmt: skip
    params = {**settings, **options}

    def compute(job: Job):
        probe = make_probe(bundle, settings, device)
        result = hessian_mod.spectrum(probe, **options, progress=job.progress)
        return {**result.summary(), "probe": probe.describe()}, result.arrays()

    # Lanczos steps (up to 300, usually far fewer) + trace probes + SLQ steps, each one HVP ~ 3 losses
    hvps = 100 + trace_samples + slq_runs * options["slq_steps"]
    return Request("hessian", params, [sha], compute, f"{bundle.name} Hessian", 3 * hvps)


def consistency_request(bundles: list[Bundle], names: list[str], shas: list[str], num: int, seed: int,
                        sampler: str, steps: int | None, device) -> Request:  # fmt: skip
    """GANs have no sampler: their group shares latents z, and the params say so."""
    gan = bundles[0].kind == "gan"
    sampler, steps = ("gan", None) if gan else (sampler, steps)
    params = {"models": names, "num": num, "seed": seed, "sampler": sampler, "steps": steps}

    def compute(job: Job):
        result = consistency_mod.consistency(
            bundles, names, num, seed, "ddpm" if gan else sampler, steps, device=device
        )
        return result.summary(), result.arrays()

    calls = 1 if gan else (steps or bundles[0].diffusion.T)
    return Request("consistency", params, shas, compute, f"consistency of {len(names)} models", len(bundles) * calls)


def loss_call(bundle: Bundle, settings: dict, device) -> Callable[[], object]:
    """One probe loss evaluation: the unit of surfaces and interpolations."""
    probe = make_probe(bundle, settings, device)
    return probe.loss


def sample_call(bundle: Bundle, num: int, device) -> Callable[[], object]:
    """One model (DM) or generator (GAN) call on a batch of `num`: the unit of sampling."""
    shape = sample_shape(bundle)
    if bundle.kind == "dm":
        model = bundle.model.to(device)
        x, t = torch.zeros(num, *shape, device=device), torch.zeros(num, dtype=torch.long, device=device)
        return lambda: model(x, t)
    g = bundle.generator.to(device)
    z = torch.zeros(num, *g.latent_shape, device=device)
    return lambda: g(z)


def default_consistency(family: str, kind: str, entries: dict):
    """The zoo's precomputed default consistency of a kind's init group, or None."""
    names = sorted(e for e, v in entries.items() if e.startswith(family + "/") and f"{kind}-init" in v["groups"])
    if len(names) < 2:
        return None
    shas = [entries[n]["checkpoints"]["final"]["sha256"] for n in names]
    sampler = "gan" if kind == "gan" else CONSISTENCY_DEFAULTS["sampler"]
    params = {"models": names, **CONSISTENCY_DEFAULTS, "sampler": sampler, "steps": None}
    return cache.lookup("consistency", params, shas)


def default_hessian(family: str, kind: str, entries: dict):
    eid = f"{family}/{kind}-eps-s0" if kind == "dm" else f"{family}/gan-s0"
    if eid not in entries:
        return None
    settings = (
        {"probe": "dm", "timesteps": [DM_TIMESTEPS[1]], "batch_size": PROBE_BATCH, "probe_seed": PROBE_SEED}
        if kind == "dm"
        else {"probe": "gan-g", "batch_size": PROBE_BATCH, "probe_seed": PROBE_SEED}
    )
    params = {**settings, **hessian_mod.DEFAULTS}
    return cache.lookup("hessian", params, [entries[eid]["checkpoints"]["final"]["sha256"]])


def home_numbers(family: str, entries: dict) -> list[tuple[str, float | None, str]]:
    """(label, value or None, unit) for the Home page: never computes, only looks up."""
    out = []
    for kind in ("dm", "gan"):
        found = default_consistency(family, kind, entries)
        out.append((f"{kind.upper()} consistency C(q)", found.meta["C_db"] if found else None, " dB"))
    for kind in ("dm", "gan"):
        found = default_hessian(family, kind, entries)
        out.append((f"{kind.upper()} Hessian lambda_1", found.meta["lambda_1"] if found else None, ""))
    return out
