"""What each page asks of dstab: cache name, parameters, checkpoints and the computation.

A `Request` is everything `compute.cached` needs. The parameters are built by
the library's own functions (`service.probe_params`, `landscape.surface_params`,
`hessian.hessian_params`, ...) and the computation calls the library's cached
entry points (`service.surface_for`, `hessian_engines.cached`, `consistency.cached`),
so a page finds exactly the results `python -m dstab precompute` and
`python -m dstab report` shipped, and what a page computes the CLI finds too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dstab import cache, probes, report
from dstab.analysis import consistency as cons
from dstab.analysis import hessian, hessian_engines, interpolation, landscape, service
from dstab.checkpoints import Bundle
from dstab.defaults import CONSISTENCY_PARAMS
from dstab.diffusion import NoiseSource
from dstab.sampling import sample_shape

from . import server
from .jobs import Job

server.torch_ready()  # every analysis page imports us before it computes: torch runs with the server's threads

DM_TIMESTEPS = service.DEFAULT_TIMESTEPS  # the precomputed ones
DM_TIMESTEP_CHOICES = list(service.SURFACE_TIMESTEPS)  # the zoo ships every DM's surface at each
# Hessian: the report's probe and settings, which `dstab report` ships for the zoo
HESSIAN_SETTINGS = report.HESSIAN_SETTINGS
HESSIAN_BATCH = report.HESSIAN_PROBE["batch_size"]
QUARTILES = "quartile midpoints"  # the report's DM probe: t at 1/8, 3/8, 5/8, 7/8 of T, averaged


@dataclass
class Request:
    name: str
    params: dict
    shas: list[str]
    run: Callable[[Job], cache.Result]  # computes (or finds) and stores the result
    label: str
    units: int  # loss evaluations or model calls, for the cost estimate
    unit: Callable[[], Callable[[], object]]  # builds one unit of the work, to time it (only on a cache miss)
    unit_key: tuple  # what that timing is remembered by in this process


def _who(bundle: Bundle) -> str:
    return bundle.sha256 or bundle.name


def _result(obj, source: str) -> cache.Result:
    meta, arrays = obj.to_record()
    return cache.Result(meta, arrays, key="", source=source)


def probe_args(bundle: Bundle, timestep: int, role: str) -> dict:
    return {"timestep": int(timestep)} if bundle.kind == "dm" else {"role": role}


def surface_request(bundle: Bundle, label: str, timestep: int, role: str, grid: int, radius: float, seed: int,
                    device) -> Request:  # fmt: skip
    args = probe_args(bundle, timestep, role)
    d = service.DEFAULTS
    pp = service.probe_params(bundle, args.get("timestep"), args.get("role"), d["batch_size"], d["probe_seed"])
    params = {"probe": pp, **landscape.surface_params(grid, radius, seed, d["bias_mode"])}

    def run(job: Job) -> cache.Result:
        total = grid * grid
        found = service.surface_for(bundle, **args, grid=grid, radius=radius, seed=seed, device=device,
                                    progress=lambda n: job.advance(n, total))  # fmt: skip
        return _result(*found)

    return Request("surface", params, [bundle.sha256], run, f"{label} surface", grid * grid,
                   lambda: loss_call(bundle, timestep, role, device), _loss_key(bundle, args, device))  # fmt: skip


def interpolation_request(final: Bundle, early: Bundle, label: str, timestep: int, role: str, lo: float, hi: float,
                          steps: int, device) -> Request:  # fmt: skip
    """From the early checkpoint (alpha = 0) to the final one (alpha = 1), the zoo's convention."""
    args = probe_args(final, timestep, role)
    d = service.DEFAULTS
    pp = service.probe_params(final, args.get("timestep"), args.get("role"), d["batch_size"], d["probe_seed"])
    params = {"probe": pp, **interpolation.interpolation_params(lo, hi, steps)}
    points = len(interpolation.interpolation_alphas(lo, hi, steps))

    def run(job: Job) -> cache.Result:
        found = service.interpolation_for(final, early, **args, lo=lo, hi=hi, steps=steps, device=device,
                                          progress=lambda n: job.advance(n, points))  # fmt: skip
        return _result(*found)

    return Request("interpolate", params, [final.sha256, early.sha256], run, f"{label} interpolation", points,
                   lambda: loss_call(final, timestep, role, device), _loss_key(final, args, device))  # fmt: skip


def _loss_key(bundle: Bundle, args: dict, device) -> tuple:
    return ("loss", _who(bundle), *args.values(), str(device))


def hessian_probe(bundle: Bundle, timestep: int | str, role: str, device):
    """The report's probe (batch 16; a DM at the quartile midpoints) or a DM at one timestep."""
    if bundle.kind == "dm" and timestep != QUARTILES:
        return probes.dm_probe(bundle, [int(timestep)], HESSIAN_BATCH, 0).to(device)
    return report.default_probe(bundle, role if bundle.kind == "gan" else None).to(device)


def hessian_request(bundle: Bundle, label: str, timestep, role: str, settings: dict, device) -> Request:
    probe = hessian_probe(bundle, timestep, role, device)
    params = hessian.hessian_params(probe, "dstab", **settings)

    def run(job: Job) -> cache.Result:
        spectrum, source = hessian_engines.cached(probe, "dstab", progress=job.progress, **settings)
        meta, arrays = spectrum.to_record()
        return cache.Result(meta, arrays, key="", source=source, params=params)

    # Lanczos (until converged, often ~50 steps) + trace probes + SLQ steps, one HVP each (about 3 losses)
    hvps = 50 + settings["trace_samples"] + settings["slq_runs"] * settings["slq_steps"]
    key = ("hessian-loss", _who(bundle), str(timestep), role, str(device))
    return Request("hessian", params, [bundle.sha256], run, f"{label} Hessian", 3 * hvps, lambda: probe.loss, key)


def consistency_request(bundles: list[Bundle], names: list[str], num: int, seed: int, sampler: str,
                        steps: int | None, device) -> Request:  # fmt: skip
    """GANs share latents, not a sampler: they are keyed with sampler ddpm and no steps, as the report keys them."""
    if bundles[0].kind == "gan":
        sampler, steps = "ddpm", None
    settings = {"num": num, "seed": seed, "sampler": sampler, "steps": steps}
    params = {**CONSISTENCY_PARAMS, **settings}  # as cons.cached keys it

    def run(job: Job) -> cache.Result:
        result, source = cons.cached(bundles, names, device=device, **settings)
        return _result(result, source)

    calls = 1 if bundles[0].kind == "gan" else (steps or bundles[0].diffusion.T)
    label = f"consistency of {', '.join(n.split('/')[-1] for n in names)}"
    unit_key = ("sample", _who(bundles[0]), num, str(device))
    return Request("consistency", params, [b.sha256 for b in bundles], run, label, len(bundles) * calls,
                   lambda: sample_call(bundles[0], num, device), unit_key)  # fmt: skip


def loss_call(bundle: Bundle, timestep: int, role: str, device) -> Callable[[], object]:
    """One loss evaluation of the landscape probe: the unit of surfaces and interpolations."""
    d = service.DEFAULTS
    if bundle.kind == "dm":
        return probes.dm_probe(bundle, [int(timestep)], d["batch_size"], d["probe_seed"]).to(device).loss
    return probes.gan_probe(bundle, role, d["batch_size"], d["probe_seed"]).to(device).loss


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


def default_hessian(bundle: Bundle) -> cache.Result | None:
    """The report's Hessian of a loaded checkpoint, by its exact key (`shipped.hessian` finds a zoo
    entry's without loading it)."""
    probe = report.default_probe(bundle, None if bundle.kind == "dm" else "g")
    return cache.lookup("hessian", hessian.hessian_params(probe, "dstab", **HESSIAN_SETTINGS), [bundle.sha256])


def predicted_noise(xt: np.ndarray, x0: np.ndarray, abar: np.ndarray) -> np.ndarray:
    """eps_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) per frame: the noise the model's x0
    estimate implies (for an eps-DM the model's own output, up to clipping of x0)."""
    shape = (len(abar),) + (1,) * (xt.ndim - 1)
    a = abar.reshape(shape)
    return (xt - np.sqrt(a) * x0) / np.sqrt(1 - a)


def trajectory_request(bundle: Bundle, label: str, sampler: str, steps: int, seed: int, n: int, device) -> Request:
    """A DM's sampling trajectory from NoiseSource(seed), sampled as `sampling.generate` samples (x0
    clipped for images only; class labels from the same source): at every sampler step the model's
    input x_t, its x0 estimate and the noise that estimate implies."""
    shape = sample_shape(bundle)
    clip = len(shape) == 3
    params = {"sampler": sampler, "steps": int(steps), "seed": int(seed), "n": int(n), "clip": clip,
              "frames": ["x_t", "x0_hat", "eps_hat"]}  # fmt: skip

    def compute(job: Job) -> tuple[dict, dict]:
        model = bundle.model.to(device)
        calls = iter(range(1, steps + 1))
        inputs = []

        def reporting(x, t, *y):  # one model call per sampler step: report it, and stop here on Cancel
            job.progress(next(calls), steps)
            inputs.append(x.cpu())
            return model(x, t, *y)

        source = NoiseSource(seed, (n, *shape))
        classes = bundle.header["arch"].get("num_classes")
        y = {"y": source.labels(classes).to(device)} if classes else {}
        final, frames = bundle.diffusion.sample(
            reporting, source, sampler=sampler, steps=steps if sampler == "ddim" else None, device=device,
            trajectory=True, clip=clip, **y,
        )  # fmt: skip
        ts = np.array([f[0] for f in frames])
        x0_hat, x_t = torch.stack([f[1] for f in frames]).numpy(), torch.stack(inputs).numpy()
        abar = bundle.diffusion.alphas_cumprod.numpy()[ts]
        eps_hat = predicted_noise(x_t, x0_hat, abar).astype(np.float32)
        arrays = {"t": ts, "x0_hat": x0_hat, "x_t": x_t, "eps_hat": eps_hat, "final": final.cpu().numpy()}
        return params, arrays

    def run(job: Job) -> cache.Result:
        return cache.get_or_compute("trajectory", params, [bundle.sha256], lambda: compute(job))

    return Request("trajectory", params, [bundle.sha256], run, f"{label} {sampler.upper()} trajectory", steps,
                   lambda: sample_call(bundle, n, device), ("sample", _who(bundle), int(n), str(device)))  # fmt: skip
