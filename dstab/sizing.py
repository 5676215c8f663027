"""What a network will cost, found before its weights are allocated.

- Loading (`bundle.build_filled`): `meta_module` builds the network on the meta device, where a
  header declaring a 100,000-wide MLP costs milliseconds, not 40 GB; its parameter count is checked
  and it is filled with the file's own tensors.
- Configs (training, activations): `plan` and `activation_bytes` build on PyTorch's meta device
  (shapes, no storage), cached per config: the parameter count, the state-dict shapes, and one meta
  forward at batch 1 with every module's output summed (what autograd keeps for a backward pass),
  scaled by the batch. A network that cannot run on the meta device (an op without a meta kernel) is
  not refused for it: its activations count as unknown (0).
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from . import budgets, models
from .errors import DstabError

# builders refuse impossible configs with DstabError; anything else a crafted config can raise
CONFIG_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RuntimeError)


class _ShapesOnly(TorchFunctionMode):
    """Builds on the meta device in one function mode: tensor constructors get device="meta" (what
    `with torch.device("meta")` does, one mode layer fewer) and the in-place initialisers are skipped
    (no values to fill; their meta versions run as slow Python decompositions). A function mode is
    per thread, so a real build in another thread is unaffected."""

    SKIPPED = {
        torch.Tensor.uniform_,
        torch.Tensor.normal_,
        torch.Tensor.zero_,
        torch.Tensor.fill_,
        torch.Tensor.bernoulli_,
        torch.Tensor.exponential_,
        torch.Tensor.random_,
    }

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.SKIPPED:
            return args[0]
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def meta_module(arch, what: str) -> nn.Module:
    """The module `arch` describes, on the meta device; DstabError naming `what` if the config is bad."""
    if not isinstance(arch, dict):
        raise DstabError(f"{what}: the architecture config must be a JSON object, got {type(arch).__name__}")
    try:
        with _ShapesOnly():
            return models.build(arch)
    except DstabError as exc:
        raise DstabError(f"{what}: {exc}") from None
    except CONFIG_ERRORS as exc:
        raise DstabError(
            f"{what}: invalid architecture config ({type(exc).__name__}: {exc}); check its values"
        ) from None


@lru_cache(maxsize=256)
def _plan(arch_json: str) -> tuple[int, dict[str, tuple[int, ...]]]:
    module = meta_module(json.loads(arch_json), "network")
    return sum(p.numel() for p in module.parameters()), {k: tuple(v.shape) for k, v in module.state_dict().items()}


def plan(arch, what: str) -> tuple[int, dict[str, tuple[int, ...]]]:
    """(parameter count, state-dict shapes) of `arch`, from a meta-device build cached per config (a
    meta build costs about 1.5 real builds of a small network; a process loads many checkpoints of one
    architecture), and refused above DSTAB_MAX_PARAMS or the memory budget."""
    if not isinstance(arch, dict):
        raise DstabError(f"{what}: the architecture config must be a JSON object, got {type(arch).__name__}")
    try:
        key = json.dumps(arch, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise DstabError(f"{what}: the architecture config is not plain JSON ({exc})") from None
    try:
        n, shapes = _plan(key)
    except DstabError as exc:
        raise DstabError(f"{what}: {str(exc).removeprefix('network: ')}") from None
    budgets.check_params(n, what)
    return n, shapes


def checked_params(arch, what: str) -> int:
    """Parameter count of `arch`, refused above DSTAB_MAX_PARAMS or the memory budget."""
    return plan(arch, what)[0]


@lru_cache(maxsize=64)
def _bytes_per_example(arch_json: str, shapes: tuple[tuple[tuple[int, ...], str], ...]) -> int:
    module = meta_module(json.loads(arch_json), "network")
    total = 0

    def add(_mod, _inp, out):
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    hooks = [m.register_forward_hook(add) for m in module.modules()]
    try:
        args = [torch.zeros((1, *shape), dtype=getattr(torch, dtype), device="meta") for shape, dtype in shapes]
        with torch.no_grad():
            module(*args)
    except Exception:  # noqa: BLE001 - an op without a meta kernel: the size is unknown, not wrong
        return 0
    finally:
        for h in hooks:
            h.remove()
    return total


def activation_bytes(arch: dict, inputs: list[tuple[tuple[int, ...], str]], batch: int) -> int:
    """Bytes of all module outputs of one forward at `batch` examples; `inputs` are the per-example
    shapes and dtypes of the forward's arguments, e.g. [((3, 32, 32), "float32"), ((), "int64")]."""
    key = json.dumps(arch, sort_keys=True)
    return _bytes_per_example(key, tuple((tuple(s), d) for s, d in inputs)) * int(batch)


def check_forward(arch: dict, inputs, batch: int, what: str, copies: float = 1.0) -> None:
    """Refuse a forward (times `copies`: backward passes, Hessian-vector products) above the budget."""
    batch = budgets.check_count(batch, "DSTAB_MAX_BATCH", f"{what}: batch size")
    budgets.check_memory(int(activation_bytes(arch, inputs, batch) * copies), f"{what} at batch {batch}")
