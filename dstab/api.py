"""dstab's public Python API: the dashboard's analyses for any `torch.nn.Module` and loss.

    import dstab
    p = dstab.probe(model, loss_fn, batch)        # loss_fn(model, batch) -> scalar tensor
    surf = dstab.surface(p, grid=21)              # 2-D loss surface (Li et al. 2018)
    spec = dstab.hessian(p)                       # lambda_1, trace, spectral density (Lanczos, SLQ)
    curve = dstab.interpolate(p_late, p_early)    # 1-D linear interpolation, b at 0, a at 1
    c = dstab.consistency([fn_a, fn_b], shape=(3, 32, 32))   # the paper's Eq. 1

A probe holds a private copy of the model in eval mode and of the batch; the model
itself is never moved, switched between train and eval, or has `requires_grad`
touched. Results go through the same engines and the same results cache as the
CLI (JSON + NPZ), keyed by the weights, the batch and every piece of code and
setting the model and the loss reach (`dstab.fingerprint`), so a repeated call
returns the stored result and a changed one never does. What the key cannot see
is computed every time and never stored; `cache=False` asks for that too. Each
result's `meta["cache"]` says which: read / stored (with the path) or off (why).
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import fields

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree as pytree

from . import budgets, cache, fingerprint
from .analysis import landscape
from .analysis.consistency import IMAGE_PEAK, ConsistencyResult, psnr_matrix
from .analysis.directions import BIAS_MODES
from .analysis.hessian_settings import HessianSettings
from .analysis.interpolation import Curve, interpolation_alphas
from .analysis.landscape import Surface
from .analysis.specs import SURFACE_ENGINES, CurveSpec, HessianSpec, SurfaceSpec
from .checkpoints import weights_sha256
from .diffusion import NoiseSource
from .errors import DstabError, DstabWarning, require
from .probes import Probe, module_probe


def probe(model: nn.Module, loss_fn: Callable, batch=None, *, name: str | None = None, cache: bool = True) -> Probe:
    """A deterministic loss of `model`'s parameters: `loss_fn(model, batch)`, where `model(*args)`
    runs the module's forward with the weights being analysed. `batch`: a tensor, or any nest of
    tuples/lists/dicts of tensors (moved with the probe). Normalisation layers run in eval mode.
    `cache=False`: its results are computed every time and never stored. With the cache on, the loss
    is called once here (twice if it touched a global random generator, see `_random_draws`)."""
    require(isinstance(model, nn.Module), f"dstab.probe needs a torch.nn.Module, got {type(model).__name__}")
    require(callable(loss_fn), "loss_fn must be callable as loss_fn(model, batch)")
    require(isinstance(cache, bool), f"cache must be True or False, got {cache!r}")
    leaves, spec = pytree.tree_flatten(batch)
    data = {f"leaf{i}": leaf for i, leaf in enumerate(leaves)}
    n = len(leaves)

    def call(model, **data):
        out = loss_fn(model, pytree.tree_unflatten([data[f"leaf{i}"] for i in range(n)], spec))
        require(isinstance(out, torch.Tensor) and out.numel() == 1, "loss_fn must return a scalar tensor")
        return out.reshape(())

    p = module_probe(model, call, name=name or type(model).__name__, data=data)
    weights = weights_sha256(model.state_dict())
    p.info.update(weights_sha256=weights)
    if not cache:
        p.info.update(cache="off: cache=False")
        return p
    try:
        ident = fingerprint.probe_key(model, loss_fn, leaves, str(spec), weights)
    except fingerprint.Unkeyable as exc:  # computed every time rather than risk another computation's number
        p.info.update(cache=f"off: the key cannot cover {exc}")
        return p
    drawn = _random_draws(p)
    if drawn:
        p.info.update(cache=f"off: {drawn}")
        warnings.warn(
            f"{p.name}: {drawn}; its results are computed every time, never stored, and mix noise across "
            "points: draw the noise from a seeded torch.Generator made inside loss_fn for a deterministic loss",
            DstabWarning,
            stacklevel=2,
        )
        return p
    p.info.update(checkpoint_sha256=ident)
    return p


def _rng_states() -> tuple:
    """The global random generators a loss can draw from without naming them: PyTorch's CPU (and CUDA,
    once started), NumPy's and Python's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda, np.random.get_state(), random.getstate()


def _set_rng_states(states: tuple) -> None:
    cpu, cuda, numpy_state, python_state = states
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def _same_states(a: tuple, b: tuple) -> bool:
    (cpu_a, cuda_a, np_a, py_a), (cpu_b, cuda_b, np_b, py_b) = a, b
    same_numpy = np_a[0] == np_b[0] and np.array_equal(np_a[1], np_b[1]) and np_a[2:] == np_b[2:]
    return (
        torch.equal(cpu_a, cpu_b)
        and len(cuda_a) == len(cuda_b)
        and all(torch.equal(x, y) for x, y in zip(cuda_a, cuda_b))
        and same_numpy
        and py_a == py_b
    )


def _random_draws(p: Probe) -> str:
    """'' when the probe's loss is a function of the weights and the batch alone; else what it draws
    from. The key covers code and values, not the global random generators' state, so a loss that draws
    from them (`torch.randn_like`, dropout with training=True, `np.random`) would have its first value
    stored for every later call. One call at the weights shows whether it touches a generator; only then
    a second call from another state shows whether its value depends on it (a loss that seeds the
    generator itself gives the same value twice and is cached). The caller's generators are left as
    they were."""
    before = _rng_states()
    try:  # in the caller's grad mode: a loss may take gradients itself (a gradient penalty)
        first = float(p.loss().detach())
        if _same_states(before, _rng_states()):
            return ""
        second = float(p.loss().detach())  # from the state the first call left
    finally:
        _set_rng_states(before)
    if first == second or (math.isnan(first) and math.isnan(second)):
        return ""
    return (
        f"the loss draws from a global random generator (two calls at the same weights gave {first:.6g} "
        f"and {second:.6g})"
    )


def _shas(*probes: Probe) -> list[str]:
    shas = [p.describe().get("checkpoint_sha256") for p in probes]
    return shas if all(shas) else []  # an unidentified probe is computed, never stored


def _probe_key(p: Probe) -> dict:
    """A custom probe's part of a key: what it says of itself, less its names and hashes (the sha256s
    are the key's checkpoints) and what its weights determine (parameter count) or the code words
    (BN wording): those are meta."""
    skip = (
        "name",
        "checkpoint",
        "checkpoint_sha256",
        "weights_sha256",
        "batch_sha256",
        "cache",
        "num_params",
        "bn_mode",
    )
    return {k: v for k, v in p.describe().items() if k not in skip}


def _on(p: Probe, device) -> Probe:
    return p if device is None else p.to(device)


def _got(spec, probes: tuple[Probe, ...], inputs, refresh: bool, use_cache: bool):
    """The spec's result for custom probes: the results cache keyed like the CLI's (the spec's own
    params, `own_params()`, with the probe's identity in place of a checkpoint's probe spec), the
    spec's own engine on a miss. The result's meta says where it came from (`cache`: read / stored
    with the path, or off and why)."""
    require(isinstance(use_cache, bool), f"cache must be True or False, got {use_cache!r}")
    params = {"probe": _probe_key(probes[0]), **spec.own_params()}
    shas = _shas(*probes) if use_cache else []
    found = cache.get_or_compute(spec.name, params, shas, lambda: spec.compute(inputs()), refresh)
    result = spec.read(found)
    result.meta["cache"] = _cache_note(found, probes, use_cache)
    return result


def _cache_note(found: cache.Result, probes: tuple[Probe, ...], use_cache: bool) -> str:
    if not use_cache:
        return "off: cache=False"
    if found.path is None:
        return next((p.describe()["cache"] for p in probes if "cache" in p.describe()), found.note or "off: not stored")
    return f"{'read' if found.source in ('user', 'shipped') else 'stored'}: {found.path}"


def surface(
    probe: Probe,
    grid: int = 21,
    radius: float = 1.0,
    seed: int = 0,
    bias_mode: str = "ignore",
    engine: str = "dstab",
    device=None,
    refresh: bool = False,
    cache: bool = True,
) -> Surface:
    """The loss on a grid x grid plane spanned by two filter-normalised random directions
    (seeded), over [-radius, radius]^2 around the probe's weights. engine: dstab's batched one
    or loss-landscapes (the reference it is tested against). `cache=False`: computed, neither read
    nor stored (see `probe`)."""
    require(engine in SURFACE_ENGINES, f"unknown surface engine {engine!r}; choose one of {SURFACE_ENGINES}")
    require(bias_mode in BIAS_MODES, f"unknown bias mode {bias_mode!r}; choose one of {BIAS_MODES}")
    landscape.grid_coordinates(grid, radius)  # a bad grid fails before any compute
    spec = SurfaceSpec(grid=grid, radius=radius, seed=seed, bias_mode=bias_mode, engine=engine)
    surf = _got(spec, (probe,), lambda: _on(probe, device), refresh, cache)
    if note := landscape.nonfinite_note(probe.name, surf.loss):
        warnings.warn(note, DstabWarning, stacklevel=2)
    return surf


def interpolate(
    probe_a: Probe,
    probe_b: Probe,
    lo: float = -0.5,
    hi: float = 1.5,
    steps: int = 20,
    device=None,
    refresh: bool = False,
    cache: bool = True,
) -> Curve:
    """probe_a's loss at theta = alpha * theta_a + (1 - alpha) * theta_b (buffers blended alike) for
    alpha over [lo, hi] at `steps` points per unit: b at alpha = 0, a at 1 (the paper's early/late)."""
    interpolation_alphas(lo, hi, steps)
    spec = CurveSpec(lo=lo, hi=hi, steps=steps)
    inputs = lambda: (_on(probe_a, device), _on(probe_b, device))
    return _got(spec, (probe_a, probe_b), inputs, refresh, cache)


def hessian(probe: Probe, engine: str = "dstab", device=None, refresh: bool = False, cache: bool = True, **settings):
    """The Hessian numbers of the paper (Lanczos top-k eigenvalues, Hutchinson trace, SLQ density)
    by dstab's engine, PyHessian's ("pyhessian") or scipy ARPACK on dstab's products ("arpack");
    settings as `dstab hessian` (top_k, trace_samples, slq_runs, slq_steps, seed, tol, max_steps,
    block, lambda_min, verify, per_block). Returns a HessianSpectrum (`.lambda_1`, `.blocks`,
    `.summary()`)."""
    known = [f.name for f in fields(HessianSettings)]
    unknown = sorted(set(settings) - set(known))
    require(not unknown, f"unknown Hessian settings {unknown}; known: {known}")
    for name in ("top_k", "trace_samples", "slq_runs", "slq_steps"):  # the CLI's budgets (`dstab hessian`)
        if name in settings:
            budgets.check_count(settings[name], "DSTAB_MAX_TOP_K", name)
    spec = HessianSpec(engine=engine, **settings)
    return _got(spec, (probe,), lambda: _on(probe, device), refresh, cache)


def consistency(
    samplers: Sequence[Callable[[NoiseSource], torch.Tensor]],
    shape: tuple[int, ...],
    num: int = 32,
    seed: int = 0,
    peak: float = IMAGE_PEAK,
    names: list[str] | None = None,
) -> ConsistencyResult:
    """Eq. 1 for any generative models: each `sampler(noise)` draws `num` samples of `shape` from
    the shared NoiseSource(seed, (num, *shape)) (x_T, per-step noise, GAN latents); the first is the
    reference. peak: the data range (2 for images in [-1, 1]). Not cached: a function has no hash."""
    require(len(samplers) >= 2, f"consistency compares at least 2 models, got {len(samplers)}")
    require(isinstance(num, int) and num >= 1, f"the number of samples per model must be >= 1, got {num!r}")
    require(peak > 0, f"peak (the data range) must be positive, got {peak}")
    # the CLI's budgets: samples per model, pixels per sample, and the memory all the samples take
    budgets.check_count(num, "DSTAB_MAX_SAMPLES", "num (samples per model)")
    shape = tuple(shape)
    require(all(isinstance(d, int) and d >= 1 for d in shape), f"shape must be positive integers, got {shape}")
    budgets.check_count(math.prod(shape), "DSTAB_MAX_IMAGE_PIXELS", f"shape {shape} (values per sample)")
    budgets.check_memory(4 * len(samplers) * num * math.prod(shape), f"{len(samplers)} x {num} samples of {shape}")
    names = list(names or [getattr(f, "__name__", f"model {i}") for i, f in enumerate(samplers)])
    require(len(names) == len(samplers), f"{len(names)} names for {len(samplers)} samplers")
    drawn = []
    for name, fn in zip(names, samplers):
        with torch.inference_mode():
            x = torch.as_tensor(fn(NoiseSource(seed, (num, *shape)))).detach().float().cpu()
        if tuple(x.shape) != (num, *shape):
            raise DstabError(f"{name} returned samples of shape {tuple(x.shape)}, expected {(num, *shape)}")
        drawn.append(x)
    samples = torch.stack(drawn)
    require(bool(torch.isfinite(samples).all()), "a sampler produced NaN/inf samples")
    settings = {"num": num, "seed": seed, "sampler": "custom", "steps": None, "eta": None}
    return ConsistencyResult(names, samples, psnr_matrix(samples, peak), float(peak), settings)
