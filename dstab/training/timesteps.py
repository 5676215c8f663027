"""Timestep samplers, in the spirit of improved-diffusion's ScheduleSampler.

A sampler returns, for a batch, timesteps t and per-example loss weights w;
the trainer minimises mean(w * loss_terms). Samplers may depend on the
training iteration (curricula) and may learn from observed losses
(`observe`), so both are part of the interface from the start.
"""

from __future__ import annotations

import torch


class TimestepSampler:
    name = "base"

    def __init__(self, T: int):
        self.T = int(T)

    def pmf(self, step: int) -> torch.Tensor:
        """P(t) over t = 0..T-1 at training iteration `step` (float64)."""
        raise NotImplementedError

    def weights(self, t: torch.Tensor, step: int) -> torch.Tensor:
        return torch.ones(t.shape[0], dtype=torch.float32, device=t.device)

    def sample(self, batch: int, step: int, generator: torch.Generator, device="cpu"):
        t = torch.multinomial(self.pmf(step), batch, replacement=True, generator=generator).to(device)
        return t, self.weights(t, step)

    def observe(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Per-example losses after a step (used by loss-aware samplers)."""


class UniformSampler(TimestepSampler):
    name = "uniform"

    def pmf(self, step: int) -> torch.Tensor:
        return torch.full((self.T,), 1.0 / self.T, dtype=torch.float64)

    def sample(self, batch: int, step: int, generator: torch.Generator, device="cpu"):
        t = torch.randint(0, self.T, (batch,), generator=generator).to(device)
        return t, self.weights(t, step)
