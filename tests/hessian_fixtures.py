"""Small probes with known Hessians for the Hessian tests (the Probe contract: params, buffers, loss)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

# 2 shared cores: one thread avoids oversubscription, which made these tests 20x slower
torch.set_num_threads(1)


class QuadraticProbe:
    """f(x) = 0.5 x^T A x, x shaped (n/2, 2) so the engine flattens more than one axis; H = A."""

    name, kind, device = "quadratic", "custom", torch.device("cpu")

    def __init__(self, A: torch.Tensor, seed: int = 0):
        self.A = A
        gen = torch.Generator().manual_seed(seed)
        self.params = {"x": torch.randn(A.shape[0] // 2, 2, generator=gen)}
        self.buffers = {}

    def loss(self, params=None, buffers=None):
        x = (params or self.params)["x"].reshape(-1)
        return 0.5 * x @ (self.A @ x)


def rotated(eigenvalues, seed: int = 0) -> torch.Tensor:
    """A symmetric matrix with the given eigenvalues in a random orthonormal basis (float64 then float32)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigenvalues),) * 2))
    return torch.tensor((q * np.asarray(eigenvalues)) @ q.T, dtype=torch.float32)


class TinyConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Linear(2 * 4 * 4, 2)
        self.unused = nn.Linear(2, 2)  # a parameter the loss never touches (PyHessian fails on these)

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)).flatten(1))


class ModuleProbe:
    """MSE regression of a module on a fixed seeded batch, via functional_call on a private copy."""

    name, kind, device = "tiny-conv", "custom", torch.device("cpu")

    def __init__(self, module: nn.Module, seed: int = 0, batch: int = 8):
        import copy

        self.module = copy.deepcopy(module).eval()
        self.params = {k: v.detach().clone() for k, v in module.named_parameters()}
        self.buffers = {k: v.detach().clone() for k, v in module.named_buffers()}
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(batch, 1, 6, 6, generator=gen)
        self.y = torch.randn(batch, 2, generator=gen)

    def loss(self, params=None, buffers=None):
        out = functional_call(self.module, {**(buffers or self.buffers), **(params or self.params)}, (self.x,))
        return ((out - self.y) ** 2).mean()


def dense_hessian(probe) -> np.ndarray:
    """The full Hessian by autograd, float64, for tiny probes."""
    names = list(probe.params)
    flat = torch.cat([probe.params[k].reshape(-1) for k in names]).double()
    sizes = [probe.params[k].numel() for k in names]
    shapes = [probe.params[k].shape for k in names]

    def f(v):
        parts = [p.view(s).float() for p, s in zip(torch.split(v, sizes), shapes)]
        return probe.loss(dict(zip(names, parts))).double()

    return torch.autograd.functional.hessian(f, flat).numpy()
