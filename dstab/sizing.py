"""What a network will cost, found before its weights are allocated.

- Loading (`bundle.build_filled`): `meta_module` builds the network on the meta device, where a
  header declaring a 100,000-wide MLP costs milliseconds, not 40 GB; its parameter count is checked
  and it is filled with the file's own tensors.
- Configs (training, activations): `plan` builds on PyTorch's meta device (shapes, no storage),
  cached per config: the parameter count and the state-dict shapes. `activation_bytes` is the sum of
  every module's output at batch 1 (what autograd keeps for a backward pass), scaled by the batch:
  measured by one meta-device forward once per architecture and input shapes, ever, and kept in a
  small table in the user cache (`$DSTAB_CACHE/sizing/activations.json`). The first meta forward of
  a process imports torch._dynamo, torch._decomp and the meta registrations (2.4-2.7 CPU s, a third
  of a 9x9 surface of the digits GAN's G), so the guard reads the table first: microseconds. A network
  that cannot run on the meta device (an op without a meta kernel) is not refused for it: its
  activations count as unknown (0), and are measured again next time.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from . import budgets, fileio, models
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
        if isinstance(exc, OverflowError) or "overflow" in str(exc).lower():  # a tensor past int64's bytes
            cap = budgets.limit("DSTAB_MAX_PARAMS")
            raise DstabError(
                f"{what}: one of its tensors would be too large to exist ({exc}), so its parameter count is "
                f"far above the DSTAB_MAX_PARAMS limit of {cap:,} parameters; lower its width or channels"
            ) from None
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


TABLE = ("sizing", "activations.json")  # under the user cache: {key: bytes per example}


def _table_path():
    return fileio.user_cache_dir().joinpath(*TABLE)


def _read_table() -> dict:
    try:
        table = json.loads(_table_path().read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def _table_key(arch_json: str, shapes) -> str:
    from . import __version__

    text = json.dumps([arch_json, [[list(s), d] for s, d in shapes], __version__, torch.__version__])
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=64)
def _bytes_per_example(arch_json: str, shapes: tuple[tuple[tuple[int, ...], str], ...]) -> int:
    """From the table, else measured (one meta forward) and added to it."""
    key = _table_key(arch_json, shapes)
    known = _read_table().get(key)
    if isinstance(known, int) and known >= 0:
        return known
    measured = _meta_forward_bytes(arch_json, shapes)
    if measured > 0:
        try:
            fileio.write_json(_table_path(), {**_read_table(), key: measured})
        except OSError:  # a read-only cache: measure again next time
            pass
    return measured


def _meta_forward_bytes(arch_json: str, shapes: tuple[tuple[tuple[int, ...], str], ...]) -> int:
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
