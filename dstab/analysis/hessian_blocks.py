"""Per-block spectra: where in a network the curvature sits.

A block is a set of parameter tensors; its diagonal Hessian block H_bb is H restricted to them (the
curvature of the loss when only that block moves). For each block:

- lambda_1 of H_bb by the same checked Lanczos as the whole network (`locking.verified_end`), on
  vectors of the block's size, each product H (v_b, 0) taken on the full operator and restricted;
- tr(H_bb) by Hutchinson from the whole network's own probes, no product more: with Rademacher z,
  z_b . (H z)_b = z_b^T H_bb z_b + sum_c z_b^T H_bc z_c, whose second part has mean zero (z_b, z_c
  independent), so the blocks' estimates are unbiased and sum to the whole trace's, sample by sample.

The partition (`partition`) comes from one forward pass of the probe's loss with hooks: a parameter
belongs to the stage of the nearest module above it whose output is an image-shaped (N, C, H, W)
tensor, labelled by that resolution, and to "attention" when a module above it is an attention
block (its class name says so), else "conv": a UNet's stages by resolution, attention apart from
convolutions; a DCGAN's G and D layers by resolution. Parameters with no image-shaped module above
them (time embeddings, MLPs) are "other", or, in a network with no image-shaped module at all,
one block per layer. Probes without a module (a bare loss of named tensors) get one block per tensor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from . import hessian_memory, locking, spill

ATTENTION = re.compile(r"attention|attn", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    name: str
    segments: tuple[tuple[int, int], ...]  # (offset, size) in the flat parameter vector

    @property
    def n(self) -> int:
        return sum(size for _, size in self.segments)

    def take(self, V: torch.Tensor) -> torch.Tensor:
        """The block's coordinates of the rows of V (B, n)."""
        return torch.cat([V[:, a : a + s] for a, s in self.segments], dim=1)

    def put(self, Q: torch.Tensor, n: int) -> torch.Tensor:
        """Rows of n with Q's entries at the block's coordinates, zero elsewhere."""
        V = Q.new_zeros(len(Q), n)
        at = 0
        for a, s in self.segments:
            V[:, a : a + s] = Q[:, at : at + s]
            at += s
        return V


def _stages(probe) -> dict[str, str]:
    """Parameter name -> block label (see the module docstring)."""
    module = getattr(probe, "_module", None)
    if module is None:
        return {k: k for k in probe.params}
    shapes: dict[str, tuple] = {}

    def record(name: str):
        def hook(_module, _inputs, out) -> None:  # returns None: the output is left as it is
            shapes.setdefault(name, _shape(out))

        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in module.named_modules() if name]
    try:
        with torch.no_grad():
            probe.loss()
    finally:
        for h in hooks:
            h.remove()
    kinds = {name: type(m).__name__ for name, m in module.named_modules()}
    spatial = any(len(s) >= 4 for s in shapes.values())
    labels = {}
    for pname in probe.params:
        owner = pname.rsplit(".", 1)[0] if "." in pname else ""
        above = _ancestors(owner)
        if not spatial:
            labels[pname] = f"{owner or pname} ({kinds.get(owner, 'tensor')})"
            continue
        image = next((a for a in above if len(shapes.get(a, ())) >= 4), None)
        if image is None:
            labels[pname] = "other"
            continue
        h, w = shapes[image][-2:]
        kind = "attention" if any(ATTENTION.search(kinds.get(a, "")) for a in above) else "conv"
        labels[pname] = f"{h}x{w} {kind}"
    return labels


def _shape(out) -> tuple:
    first = out[0] if isinstance(out, (tuple, list)) and out else out
    return tuple(first.shape) if isinstance(first, torch.Tensor) else ()


def _ancestors(owner: str) -> list[str]:
    """The module path and every module above it, nearest first (the root excluded)."""
    parts = owner.split(".") if owner else []
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _order(label: str) -> tuple:
    found = re.match(r"(\d+)x(\d+) (\w+)", label)
    if found:  # highest resolution first, convolutions before attention
        return (0, -int(found.group(1)) * int(found.group(2)), found.group(3) != "conv", label)
    return (1, 0, False, label)


def partition(probe) -> list[Block]:
    """The probe's parameters in blocks (see the module docstring), in the flat vector's layout of
    `HessianOperator` (the probe's parameter order)."""
    labels = _stages(probe)
    segments: dict[str, list[tuple[int, int]]] = {}
    offset = 0
    for name, p in probe.params.items():
        segments.setdefault(labels[name], []).append((offset, p.numel()))
        offset += p.numel()
    return [Block(label, tuple(segments[label])) for label in sorted(segments, key=_order)]


GPU_BATCH = 4  # Hutchinson probes per `op.batched` call on a GPU (one vmapped backward); 1 on a CPU


def hutchinson_parts(op, samples: int, seed: int, blocks: list[Block], progress=None):
    """((trace, stderr), [(trace, stderr) per block]) from `samples` Rademacher probes z^T H z, the
    blocks' from the same products (see the module docstring). On a CPU one probe at a time (batching
    saves nothing there and holds 2 vectors of n per probe)."""
    batch = GPU_BATCH if op.vmap else 1
    gen = torch.Generator().manual_seed(seed)
    whole, parts = [], [[] for _ in blocks]
    while len(whole) < samples:
        Z = torch.stack([op.rademacher(gen) for _ in range(min(batch, samples - len(whole)))])
        HZ = op.batched(Z)
        whole.extend((Z * HZ).sum(dim=1).tolist())
        for b, part in zip(blocks, parts):
            part.extend((b.take(Z) * b.take(HZ)).sum(dim=1).tolist())
        if progress:
            progress(len(whole))
    return _mean_se(whole), [_mean_se(p) for p in parts]


def _mean_se(values: list[float]) -> tuple[float, float]:
    v = np.array(values)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def block_lambda_1(op, block: Block, seed: int, tol: float, max_steps: int, verify: bool, scratch_dir=None):
    """(EndValues of lambda_1 of H_bb, products) by the checked Lanczos on the block's vectors, its basis
    bounded as the whole run's would be (`hessian_memory`: capped, and in a file in `scratch_dir`)."""
    mv = lambda Q: block.take(op.batched(block.put(Q, op.n)))  # noqa: E731
    gen = torch.Generator().manual_seed(seed)
    start = [torch.randn(1, block.n, generator=gen).to(op.device)]  # handed over (`lanczos.handed`)
    _, cap = hessian_memory.cap_of(block.n, 1, max_steps, 1)
    with spill.opened(block.n, scratch_dir if cap is not None else None) as scratch:
        return locking.verified_end(mv, start, 1, "top", tol, max_steps, None, seed, cap, verify, scratch=scratch)


def block_spectra(op, blocks, traces, seed, tol, max_steps, verify, scratch_dir=None) -> list[dict]:
    """Every block's lambda_1 (its own run) beside its trace (`traces`: from `hutchinson_parts`)."""
    rows = []
    for i, (block, (trace, stderr)) in enumerate(zip(blocks, traces)):
        ends, used = block_lambda_1(op, block, seed + 3 + i, tol, max_steps, verify, scratch_dir)
        rows.append(
            {
                "block": block.name,
                "n_params": block.n,
                "lambda_1": float(ends.values[0]),
                "lambda_1_bound": float(ends.bounds[0]),
                "lambda_1_converged": bool(ends.converged),
                "verification": "verified" if ends.checked else ("unverified" if not verify else "unchecked"),
                "trace": trace,
                "trace_stderr": stderr,
                "products": used,
            }
        )
    return rows
