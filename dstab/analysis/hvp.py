"""Hessian-vector products of a Probe's loss on flat float32 vectors.

Hessian-vector products: ``hvp="reverse"`` differentiates a gradient graph
built once (double backward; 1.7-2.4x faster than forward-over-reverse on CPU
in bench/bench_hessian.py, 4x on the digits UNet), on a GPU batching
independent products (Hutchinson probes, a Lanczos block) into one vmapped backward;
``hvp="forward"`` is torch.func forward-over-reverse jvp(grad(f)), which keeps
no graph between calls. Losses must write squares out: F.mse_loss breaks
forward-over-reverse in torch (pytorch#123996).
"""

from __future__ import annotations

import math

import torch

from ..errors import require
from ..probes import finite_or_error

HVP_MODES = ("reverse", "forward")


class HessianOperator:
    """v -> H v for a probe's loss at the probe's parameters, on flat float32 vectors.

    Works on detached copies: the probe (and any caller's model) is never touched.
    """

    def __init__(self, probe, hvp: str = "reverse"):
        require(hvp in HVP_MODES, f"unknown hvp mode {hvp!r}; choose one of {list(HVP_MODES)}")
        finite_or_error(probe.params, probe.name)
        self.probe, self.mode = probe, hvp
        self.names = list(probe.params)
        require(self.names, "the probe has no parameters to analyse")
        base = [probe.params[k].detach().float() for k in self.names]
        self.shapes = [p.shape for p in base]
        self.sizes = [p.numel() for p in base]
        self.n = sum(self.sizes)
        self.device = base[0].device
        # one flat leaf with the parameters as views of it: gradients and products come out as one
        # flat vector, with no per-tensor copies to concatenate (half the memory of a product)
        self.flat = torch.cat([p.reshape(-1) for p in base]).requires_grad_(True)
        self.params = self.unflatten(self.flat)
        self.calls = 0
        self.vmap = self.device.type == "cuda"  # batched products as one vmapped backward (see batched)
        loss = self._loss(self.params)
        self.loss = float(loss.detach())
        require(
            loss.requires_grad,
            f"{probe.name}: the loss does not depend on the parameters being analysed (it has no gradient), so "
            "its Hessian is not defined; make the loss call the model it is given",
        )
        require(
            math.isfinite(self.loss),
            f"the probe's loss is {self.loss} at the analysed parameters; the Hessian is undefined there "
            "(check the checkpoint and the probe's batch)",
        )
        (grad,) = torch.autograd.grad(loss, self.flat, create_graph=True, allow_unused=True, materialize_grads=True)
        self.grad_norm = float(grad.detach().norm())
        self._flat_grad = grad if hvp == "reverse" else None

    def _loss(self, tensors) -> torch.Tensor:
        loss = self.probe.loss(dict(zip(self.names, tensors)))
        require(loss.dim() == 0, f"a probe's loss must be a scalar, got shape {tuple(loss.shape)}")
        return loss

    def unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [t.view(s) for t, s in zip(torch.split(v, self.sizes), self.shapes)]

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.mode == "forward":
            return self._forward_over_reverse(v)
        if not self._flat_grad.requires_grad:  # the loss is linear in the parameters: H = 0
            return torch.zeros_like(v)
        (hv,) = torch.autograd.grad(
            self._flat_grad, self.flat, grad_outputs=v, retain_graph=True, materialize_grads=True
        )
        return hv

    def batched(self, V: torch.Tensor) -> torch.Tensor:
        """H V^T for the rows of V (B, n): on a GPU as one vmapped backward pass in reverse mode, on a
        CPU one product per row (the vmapped backward is no faster there: 1.0x per product on the
        toy MLP, 1.1-1.4x slower on the digits UNet, bench/RESULTS.md)."""
        if self.mode == "forward" or V.shape[0] == 1 or not self.vmap:
            out = torch.empty_like(V)
            for i, v in enumerate(V):
                out[i] = self(v)
            return out
        self.calls += V.shape[0]
        if not self._flat_grad.requires_grad:
            return torch.zeros_like(V)
        (hv,) = torch.autograd.grad(
            self._flat_grad, self.flat, grad_outputs=V, retain_graph=True, is_grads_batched=True, allow_unused=True
        )
        return torch.zeros_like(V) if hv is None else hv

    def _forward_over_reverse(self, v: torch.Tensor) -> torch.Tensor:
        primals = tuple(p.detach() for p in self.params)
        _, hv = torch.func.jvp(
            torch.func.grad(lambda *ps: self._loss(ps), argnums=tuple(range(len(primals)))),
            primals,
            tuple(self.unflatten(v)),
        )
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    def gaussian(self, gen: torch.Generator) -> torch.Tensor:
        """A standard normal vector, drawn per parameter tensor in order on the CPU (device independent)."""
        return torch.cat([torch.randn(s, generator=gen).reshape(-1) for s in self.shapes]).to(self.device)

    def rademacher(self, gen: torch.Generator) -> torch.Tensor:
        """A +-1 vector drawn per parameter tensor in order, as PyHessian draws its own
        (randint(0, 2) then 0 -> -1): with the same seed both engines start from the same vector."""
        draws = [torch.randint(0, 2, s, generator=gen).reshape(-1) for s in self.shapes]
        return (torch.cat(draws).float() * 2 - 1).to(self.device)
