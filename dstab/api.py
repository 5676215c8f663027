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
CLI (JSON + NPZ, keyed by the weights' sha256, the batch's sha256 and the loss
function's code, defaults, closure and the global functions and values it names),
so a repeated call returns the stored result. A loss that holds objects the key
cannot see into (anything but tensors, modules, functions and plain values) is
computed every time and never stored; `cache_results=False` asks for that too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import fields
from types import CodeType, ModuleType

import torch
from torch import nn
from torch.utils import _pytree as pytree

from . import cache
from .analysis import landscape
from .analysis.consistency import IMAGE_PEAK, ConsistencyResult, psnr_matrix
from .analysis.directions import BIAS_MODES
from .analysis.hessian_settings import HessianSettings
from .analysis.interpolation import Curve, interpolation_alphas
from .analysis.landscape import Surface
from .analysis.specs import SURFACE_ENGINES, CurveSpec, HessianSpec, SurfaceSpec
from .checkpoints import weights_sha256
from .diffusion import NoiseSource
from .errors import DstabError, require
from .probes import Probe, module_probe
from .stfile import hash_tensor


def _value_digest(h, value, depth: int = 0) -> bool:
    """Feed `value` to the hash; False if it is something the hash cannot vouch for."""
    if depth > 4:
        return False
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        h.update(repr(value).encode())
    elif isinstance(value, torch.Tensor):
        hash_tensor(h, "", value)
    elif isinstance(value, nn.Module):
        h.update(type(value).__qualname__.encode() + weights_sha256(value.state_dict()).encode())
    elif isinstance(value, (tuple, list)):
        return all(_value_digest(h, v, depth + 1) for v in value)
    elif isinstance(value, dict):
        return all(_value_digest(h, k, depth + 1) and _value_digest(h, value[k], depth + 1) for k in sorted(value))
    elif callable(value) and hasattr(value, "__code__"):
        return _code_digest(h, value, depth + 1)
    else:
        return False
    return True


def _code_bytes(h, code) -> None:
    """Bytecode, names and constants; nested code (comprehensions, lambdas) by content, not by repr,
    which holds a memory address."""
    h.update(code.co_code + repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _code_bytes(h, const)
        else:
            h.update(repr(const).encode())


def _code_digest(h, fn, depth: int = 0) -> bool:
    """The function's code, defaults, closure and the globals it names (functions, tensors, modules,
    plain values; imported modules and classes by name only)."""
    code = fn.__code__
    h.update(f"{fn.__module__}.{fn.__qualname__}|".encode())
    _code_bytes(h, code)
    cells = [c.cell_contents for c in (fn.__closure__ or ())]
    scope = getattr(fn, "__globals__", {})
    named = [scope[n] for n in code.co_names if n in scope and not isinstance(scope[n], (type, ModuleType))]
    return all(_value_digest(h, v, depth) for v in (list(fn.__defaults__ or ()), cells, named))


def _loss_identity(loss_fn) -> str | None:
    h = hashlib.sha256()
    if isinstance(loss_fn, nn.Module):  # e.g. nn.MSELoss(): its class and its state
        return _value_digest(h, loss_fn) and h.hexdigest() or None
    if not hasattr(loss_fn, "__code__"):
        return None
    return h.hexdigest() if _code_digest(h, loss_fn) else None


def probe(
    model: nn.Module, loss_fn: Callable, batch=None, *, name: str | None = None, cache_results: bool = True
) -> Probe:
    """A deterministic loss of `model`'s parameters: `loss_fn(model, batch)`, where `model(*args)`
    runs the module's forward with the weights being analysed. `batch`: a tensor, or any nest of
    tuples/lists/dicts of tensors (moved with the probe). Normalisation layers run in eval mode."""
    require(isinstance(model, nn.Module), f"dstab.probe needs a torch.nn.Module, got {type(model).__name__}")
    require(callable(loss_fn), "loss_fn must be callable as loss_fn(model, batch)")
    leaves, spec = pytree.tree_flatten(batch)
    data = {f"leaf{i}": leaf for i, leaf in enumerate(leaves)}
    n = len(leaves)

    def call(model, **data):
        out = loss_fn(model, pytree.tree_unflatten([data[f"leaf{i}"] for i in range(n)], spec))
        require(isinstance(out, torch.Tensor) and out.numel() == 1, "loss_fn must return a scalar tensor")
        return out.reshape(())

    p = module_probe(model, call, name=name or type(model).__name__, data=data)
    weights = weights_sha256(model.state_dict())
    h = hashlib.sha256()
    batch_ok = _value_digest(h, leaves) and _value_digest(h, str(spec))
    loss_id = _loss_identity(loss_fn)
    if cache_results and batch_ok and loss_id:
        ident = hashlib.sha256(f"{weights}|{h.hexdigest()}|{loss_id}".encode()).hexdigest()
        p.info.update(checkpoint_sha256=ident, weights_sha256=weights, batch_sha256=h.hexdigest())
    else:
        p.info.update(weights_sha256=weights, cache="off: the loss or batch holds values the key cannot see")
    return p


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


def _got(spec, probes: tuple[Probe, ...], inputs, refresh: bool):
    """The spec's result for custom probes: the results cache keyed like the CLI's (the spec's own
    params, `own_params()`, with the probe's identity in place of a checkpoint's probe spec), the
    spec's own engine on a miss."""
    params = {"probe": _probe_key(probes[0]), **spec.own_params()}
    found = cache.get_or_compute(spec.name, params, _shas(*probes), lambda: spec.compute(inputs()), refresh)
    return spec.read(found)


def surface(
    probe: Probe,
    grid: int = 21,
    radius: float = 1.0,
    seed: int = 0,
    bias_mode: str = "ignore",
    engine: str = "dstab",
    device=None,
    refresh: bool = False,
) -> Surface:
    """The loss on a grid x grid plane spanned by two filter-normalised random directions
    (seeded), over [-radius, radius]^2 around the probe's weights. engine: dstab's batched one
    or loss-landscapes (the reference it is tested against)."""
    require(engine in SURFACE_ENGINES, f"unknown surface engine {engine!r}; choose one of {SURFACE_ENGINES}")
    require(bias_mode in BIAS_MODES, f"unknown bias mode {bias_mode!r}; choose one of {BIAS_MODES}")
    landscape.grid_coordinates(grid, radius)  # a bad grid fails before any compute
    spec = SurfaceSpec(grid=grid, radius=radius, seed=seed, bias_mode=bias_mode, engine=engine)
    return _got(spec, (probe,), lambda: _on(probe, device), refresh)


def interpolate(
    probe_a: Probe, probe_b: Probe, lo: float = -0.5, hi: float = 1.5, steps: int = 20, device=None, refresh=False
) -> Curve:
    """probe_a's loss at theta = alpha * theta_a + (1 - alpha) * theta_b (buffers blended alike) for
    alpha over [lo, hi] at `steps` points per unit: b at alpha = 0, a at 1 (the paper's early/late)."""
    interpolation_alphas(lo, hi, steps)
    spec = CurveSpec(lo=lo, hi=hi, steps=steps)
    return _got(spec, (probe_a, probe_b), lambda: (_on(probe_a, device), _on(probe_b, device)), refresh)


def hessian(probe: Probe, engine: str = "dstab", device=None, refresh: bool = False, **settings):
    """The Hessian numbers of the paper (Lanczos top-k eigenvalues, Hutchinson trace, SLQ density)
    by dstab's engine, PyHessian's ("pyhessian") or scipy ARPACK on dstab's products ("arpack");
    settings as `dstab hessian` (top_k, trace_samples, slq_runs, slq_steps, seed, tol, max_steps,
    block, lambda_min, verify, per_block). Returns a HessianSpectrum (`.lambda_1`, `.blocks`,
    `.summary()`)."""
    known = [f.name for f in fields(HessianSettings)]
    unknown = sorted(set(settings) - set(known))
    require(not unknown, f"unknown Hessian settings {unknown}; known: {known}")
    spec = HessianSpec(engine=engine, **settings)
    return _got(spec, (probe,), lambda: _on(probe, device), refresh)


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
