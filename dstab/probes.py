"""Probes: a checkpoint plus a fixed, seeded batch -> a deterministic loss f(theta).

Every analysis (surfaces, interpolation, Hessians) receives only a Probe, so
it never knows whether it faces a DM or a GAN. A Probe owns a private deep
copy of the analysed module; `loss(params, buffers)` runs it through
`torch.func.functional_call`, so the caller's model is never moved, never
switched between train and eval mode and never has `requires_grad` touched.

Normalisation layers are evaluated in eval mode with the stored running
statistics (BatchNorm in DCGAN). Why eval mode: the loss is then a fixed
function of the weights, each example is independent of the others (so
batches can be split or concatenated freely), and the statistics are the
buffers that 1-D interpolation blends. Train-mode BatchNorm would make the
loss depend on the batch composition and leave the buffers unused.

Probes (DESIGN.md, "Data flows one way"):
- DM: the training loss (eps-MSE, or x0-MSE for x0-prediction models; Ho et
  al. 2020 Eq. 14 "L_simple") at chosen timesteps with fixed x0 and noise,
  averaged over the timesteps.
- GAN "g": the generator's loss (the one the checkpoint was trained with)
  with D frozen; "d": the discriminator's BCE with G frozen; fixed z and
  fixed real batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from . import confine, sizing
from . import data as data_mod
from .bundle import nonfinite
from .checkpoints import Bundle
from .diffusion import NoiseSource
from .errors import DstabError, require
from .gan import d_loss_bce, generator_loss
from .modelconfig import check_timesteps
from .sampling import sample_shape

KINDS = ("dm", "gan-g", "gan-d", "custom")
BN_MODE = "eval (stored running statistics)"


def finite_or_error(tensors: dict[str, torch.Tensor], what: str) -> None:
    """DstabError naming the first tensor holding NaN or inf."""
    for key in nonfinite(tensors)[:1]:
        raise DstabError(f"{what}: {key} holds NaN or inf values; the checkpoint is damaged or diverged")


def _frozen_copy(module: nn.Module) -> nn.Module:
    copied = copy.deepcopy(module).float().eval()
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied


class Probe:
    """A deterministic scalar loss of one module's parameters.

    `loss_fn(model, **data)` computes the loss, where `model(*args)` calls the
    module with the weights being evaluated and `data` holds the fixed tensors
    (and frozen modules) the probe moves with `.to(device)`.
    """

    def __init__(
        self,
        module: nn.Module,
        loss_fn: Callable[..., torch.Tensor],
        *,
        name: str,
        kind: str,
        data: dict | None = None,
        info: dict | None = None,
    ):
        require(kind in KINDS, f"unknown probe kind {kind!r}; choose one of {KINDS}")
        self.name, self.kind = name, kind
        self._module = _frozen_copy(module)
        self._alias_module()
        finite_or_error({**self.params, **self.buffers}, name)
        require(self.params, f"{name}: the module has no parameters to analyse")
        self._loss_fn = loss_fn
        self.data = dict(data or {})
        self.info = dict(info or {})
        self.device = next(iter(self.params.values())).device

    def _alias_module(self) -> None:
        """params and buffers are the private module's own tensors (one copy of the weights, not two:
        nothing writes to either; `module_at` copies them into a fresh module)."""
        self.params = {k: v.detach() for k, v in self._module.named_parameters()}
        self.buffers = {k: v.detach() for k, v in self._module.named_buffers()}

    def loss(self, params: dict[str, torch.Tensor] | None = None, buffers: dict | None = None) -> torch.Tensor:
        """The scalar loss at `params` (any subset overrides the probe's own; differentiable)."""
        p = self.params if params is None else {**self.params, **params}
        b = self.buffers if buffers is None else {**self.buffers, **buffers}
        weights = {**p, **b}
        model = lambda *args: functional_call(self._module, weights, args)
        return self._loss_fn(model, **self.data)

    def module_at(self, params: dict[str, torch.Tensor] | None = None) -> nn.Module:
        """A fresh copy of the probe's module holding `params` (for engines that need a real module)."""
        module = copy.deepcopy(self._module)
        with torch.no_grad():
            for name, p in module.named_parameters():
                p.copy_(self.params[name] if params is None or name not in params else params[name])
        return module

    def loss_of(self, module: nn.Module) -> torch.Tensor:
        """The probe's loss computed by calling `module` itself (a copy from `module_at`)."""
        return self._loss_fn(module, **self.data)

    def to(self, device) -> Probe:
        """A copy of this probe on `device` (this one is left where it is)."""
        device = torch.device(device)
        moved = copy.copy(self)
        if device == self.device:  # nothing writes to a probe's tensors: the copy may share them
            moved.params, moved.buffers, moved.data = dict(self.params), dict(self.buffers), dict(self.data)
            return moved
        moved._module = copy.deepcopy(self._module).to(device)
        moved._alias_module()
        moved.data = {k: _moved(v, device) for k, v in self.data.items()}
        moved.device = device
        return moved

    def _batched(self) -> dict[str, torch.Tensor]:
        """The data tensors with a first (batch) axis."""
        return {k: v for k, v in self.data.items() if isinstance(v, torch.Tensor) and v.dim() >= 1}

    def batch_size(self) -> int | None:
        """The first size shared by every data tensor of one or more dimensions (None: none, or several)."""
        sizes = {v.shape[0] for v in self._batched().values()}
        return sizes.pop() if len(sizes) == 1 else None

    def split(self, size: int) -> list[tuple[float, Probe]] | None:
        """The probe's batch in micro-batches of at most `size` samples: [(share of the batch, a probe on
        that part)], or None where there is nothing to split (no data tensor, tensors whose first sizes
        differ, or a batch of at most `size`). The parts' losses, weighted by their shares, sum to the
        probe's only where its loss is a mean over samples with no coupling between them (no BatchNorm
        on batch statistics): `hvp.HessianOperator` checks that on the values before using them."""
        require(isinstance(size, int) and size >= 1, f"a micro-batch must hold at least one sample, got {size!r}")
        batch = self.batch_size()
        if batch is None or batch <= size:
            return None
        tensors = self._batched()
        parts = []
        for a in range(0, batch, size):
            part = copy.copy(self)
            part.data = {**self.data, **{k: v[a : a + size] for k, v in tensors.items()}}
            parts.append((min(size, batch - a) / batch, part))
        return parts

    @property
    def num_params(self) -> int:
        return sum(v.numel() for v in self.params.values())

    def describe(self) -> dict:
        """JSON-able identity of the probe: what a cached result depends on."""
        return {"name": self.name, "kind": self.kind, "num_params": self.num_params, "bn_mode": BN_MODE, **self.info}


def _moved(value, device):
    if isinstance(value, nn.Module):
        return copy.deepcopy(value).to(device)
    if isinstance(value, torch.Tensor):
        return value.to(device)
    return value


def _require_kind(bundle: Bundle, kind: str, probe: str) -> None:
    if bundle.kind != kind:
        other = "gan_probe(bundle, role='g'|'d')" if bundle.kind == "gan" else "dm_probe(bundle, timesteps)"
        raise DstabError(f"{bundle.name} is a {bundle.kind} checkpoint; a {probe} probe needs a {kind}: use {other}")


def _dataset_spec(bundle: Bundle, dataset) -> str:
    """The canonical spec of the probe's dataset: a Dataset given, else `dataset` (the user's choice), else
    the header's once `confine.header_dataset` allows it (a header names no file outside the allowed roots)."""
    if isinstance(dataset, data_mod.Dataset):
        return dataset.spec
    return data_mod.canonical_spec(dataset or confine.header_dataset(bundle.header.get("dataset"), bundle.name))


def dataset_for(bundle: Bundle, dataset=None) -> data_mod.Dataset:
    """The dataset `bundle` is evaluated on (see `_dataset_spec`), checked to hold samples of its shape."""
    if isinstance(dataset, data_mod.Dataset):
        ds = dataset
    else:
        seed = int(bundle.header.get("train_config", {}).get("data_seed", 0))
        ds = data_mod.load(_dataset_spec(bundle, dataset), seed=seed)
    want = sample_shape(bundle)
    require(
        tuple(ds.sample_shape) == tuple(want),
        f"{bundle.name} works on samples shaped {tuple(want)} but dataset {ds.spec} has {tuple(ds.sample_shape)}",
    )
    return ds


def _dm_loss(model, diffusion, x0, t, noise) -> torch.Tensor:
    return diffusion.loss_terms(model, x0, t, noise).mean()


def _base_info(bundle: Bundle, batch_size: int, seed: int, dataset_spec: str) -> dict:
    return {
        "checkpoint": bundle.name,
        "checkpoint_sha256": bundle.sha256,
        "dataset": dataset_spec,
        "batch_size": int(batch_size),
        "seed": int(seed),
    }


def dm_probe(bundle: Bundle, timesteps: list[int] | int, batch_size: int = 64, seed: int = 0, dataset=None) -> Probe:
    """L_simple at `timesteps` with fixed x0 and noise, averaged over the timesteps.

    All timesteps go through the model as one batch of len(timesteps) * batch_size
    examples; the mean of equal-sized per-timestep means is the overall mean."""
    _require_kind(bundle, "dm", "DM")
    require(batch_size >= 1, f"batch size must be positive, got {batch_size}")
    require(not bundle.header["arch"].get("num_classes"), "class-conditional DMs are not supported by probes yet")
    diffusion = bundle.diffusion
    ts = check_timesteps(timesteps, diffusion.T)  # ProbeSpec.check applies the same rule to a spec
    inputs = [(sample_shape(bundle), "float32"), ((), "int64")]
    # a Hessian-vector product keeps the forward graph and a second backward: ~3 forwards' activations
    sizing.check_forward(bundle.header["arch"], inputs, batch_size * len(ts), f"{bundle.name}'s probe", copies=3)
    ds = dataset_for(bundle, dataset)
    x0 = ds.fixed_batch(batch_size, seed)
    source = NoiseSource(seed, tuple(x0.shape))
    noise = torch.cat([source.step_noise(t) for t in ts])
    t_vec = torch.tensor(ts, dtype=torch.long).repeat_interleave(batch_size)
    info = {**_base_info(bundle, batch_size, seed, ds.spec), "timesteps": ts, "prediction": diffusion.prediction}
    data = {"diffusion": diffusion, "x0": x0.repeat(len(ts), *[1] * (x0.dim() - 1)), "t": t_vec, "noise": noise}
    return Probe(bundle.model, _dm_loss, name=f"{bundle.name} t={ts}", kind="dm", data=data, info=info)


def _gan_g_loss(model, discriminator, z, g_loss) -> torch.Tensor:
    return g_loss(discriminator(model(z))).mean()


def _gan_d_loss(model, real, fake) -> torch.Tensor:
    # eval-mode BatchNorm makes examples independent, so one forward over both halves is exact
    logits = model(torch.cat([real, fake]))
    return d_loss_bce(logits[: real.shape[0]], logits[real.shape[0] :]).mean()


def gan_probe(bundle: Bundle, role: str, batch_size: int = 64, seed: int = 0, dataset=None) -> Probe:
    """Generator loss with D frozen (role "g") or discriminator BCE with G frozen (role "d")."""
    _require_kind(bundle, "gan", "GAN")
    require(role in ("g", "d"), f"GAN probe role must be 'g' (generator) or 'd' (discriminator), got {role!r}")
    require(batch_size >= 1, f"batch size must be positive, got {batch_size}")
    for r, m in bundle.modules.items():
        finite_or_error(dict(m.state_dict()), f"{bundle.name}:{r}")
    G_in, D_in = [(tuple(bundle.generator.latent_shape), "float32")], [(sample_shape(bundle), "float32")]
    for net, inputs in (("generator", G_in), ("discriminator", D_in)):
        arch = bundle.header["arch"].get(net)
        if arch:
            sizing.check_forward(arch, inputs, 2 * batch_size, f"{bundle.name}'s {net} probe", copies=3)
    G, D = _frozen_copy(bundle.generator), _frozen_copy(bundle.discriminator)
    z = NoiseSource(seed, (batch_size,)).latent(tuple(G.latent_shape))
    loss_name = bundle.header.get("gan", {}).get("loss", "non-saturating")
    if role == "g":  # G's loss sees only D(G(z)): no real data is loaded, only its spec recorded (the cache key)
        info = {
            **_base_info(bundle, batch_size, seed, _dataset_spec(bundle, dataset)),
            "role": role,
            "g_loss": loss_name,
        }
        data = {"discriminator": D, "z": z, "g_loss": generator_loss(loss_name)}
        return Probe(G, _gan_g_loss, name=f"{bundle.name} G", kind="gan-g", data=data, info=info)
    ds = dataset_for(bundle, dataset)
    real = ds.fixed_batch(batch_size, seed)
    info = {**_base_info(bundle, batch_size, seed, ds.spec), "role": role, "g_loss": loss_name}
    with torch.no_grad():
        fake = G(z)
    return Probe(D, _gan_d_loss, name=f"{bundle.name} D", kind="gan-d", data={"real": real, "fake": fake}, info=info)


def module_probe(module: nn.Module, loss_fn: Callable[..., torch.Tensor], name: str = "custom", data=None) -> Probe:
    """Any module and loss: `loss_fn(model, **data)` with `model(*args)` the module's forward."""
    return Probe(module, loss_fn, name=name, kind="custom", data=data, info={"checkpoint_sha256": None})
