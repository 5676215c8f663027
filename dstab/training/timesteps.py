"""Timestep samplers, in the spirit of improved-diffusion's ScheduleSampler.

A sampler returns, for a batch, timesteps t and per-example loss weights w;
the trainer minimises mean(w * loss_terms). Samplers may depend on the
training iteration `it` (0-based: iterations completed before this one) and
may learn from observed losses (`observe`); loss-aware samplers carry state
that `state_dict()` exposes so a resumed run continues exactly.

Two kinds of peers live here on purpose:
- samplers that change P(t) itself with unit weights (CLTS), so the curriculum
  is not undone by importance weights;
- weightings that keep P(t) uniform and reweight the loss (Min-SNR, P2), and
  the loss-second-moment sampler, which changes P(t) but importance-weights
  it back to an unbiased estimate of the uniform objective.
"""

from __future__ import annotations

import torch

from .sampler_options import (  # noqa: F401 (CLTS_* and SAMPLERS re-exported)
    CLTS_MU_FRACTION,
    CLTS_SIGMA_FRACTION,
    SAMPLERS,
    clts_settings,
    sampler_options,
    second_moment_settings,
)


class TimestepSampler:
    name = "base"

    def __init__(self, T: int):
        self.T = int(T)

    def pmf(self, it: int) -> torch.Tensor:
        """P(t) over t = 0..T-1 at iteration `it` (float64)."""
        raise NotImplementedError

    def weights(self, t: torch.Tensor, it: int) -> torch.Tensor:
        return torch.ones(t.shape[0], dtype=torch.float32, device=t.device)

    def sample(self, batch: int, it: int, generator: torch.Generator, device="cpu"):
        t = torch.multinomial(self.pmf(it), batch, replacement=True, generator=generator).to(device)
        return t, self.weights(t, it)

    def observe(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Per-example losses after a step (used by loss-aware samplers)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class UniformSampler(TimestepSampler):
    name = "uniform"

    def pmf(self, it: int) -> torch.Tensor:
        return torch.full((self.T,), 1.0 / self.T, dtype=torch.float64)

    def sample(self, batch: int, it: int, generator: torch.Generator, device="cpu"):
        # randint, not multinomial: the zoo was trained with exactly this stream
        t = torch.randint(0, self.T, (batch,), generator=generator).to(device)
        return t, self.weights(t, it)


def clts_gamma(it: int, target_iter: float) -> float:
    """g = min(1, iter / target_iter) (paper Eq. 8)."""
    return min(1.0, max(0, it) / target_iter)


class CLTSSampler(TimestepSampler):
    """Curriculum learning timestep schedule (paper Sec. 4.2, Eq. 7-8):
    P(t) = (1 - g) U(t) + g N(t; mu, sigma), N renormalised over t = 0..T-1.
    Paper defaults mu = 0.3 T, sigma = T; weights stay 1."""

    name = "clts"

    def __init__(self, T: int, target_iter: float, mu: float | None = None, sigma: float | None = None):
        super().__init__(T)
        self.mu, self.sigma, self.target_iter = clts_settings(T, target_iter, mu, sigma)
        ts = torch.arange(T, dtype=torch.float64)
        g = torch.exp(-0.5 * ((ts - self.mu) / self.sigma) ** 2)
        self.gaussian = g / g.sum()

    def pmf(self, it: int) -> torch.Tensor:
        g = clts_gamma(it, self.target_iter)
        return (1.0 - g) / self.T + g * self.gaussian


def min_snr_weight(snr: torch.Tensor, gamma: float, prediction: str) -> torch.Tensor:
    """Min-SNR-gamma (Hang et al. 2023): the x0-loss weight min(SNR, gamma),
    which for an eps-prediction loss becomes min(SNR, gamma) / SNR."""
    clipped = torch.clamp(snr, max=gamma)
    return clipped / snr if prediction == "eps" else clipped


def p2_weight(snr: torch.Tensor, k: float, gamma: float) -> torch.Tensor:
    """P2 weighting (Choi et al. 2022) on the simple eps loss: 1 / (k + SNR)^gamma."""
    return 1.0 / (k + snr) ** gamma


class WeightedUniformSampler(UniformSampler):
    """Uniform t with a per-timestep loss weight (Min-SNR, P2)."""

    def __init__(self, T: int, name: str, table: torch.Tensor):
        super().__init__(T)
        self.name = name
        self.table = table.to(torch.float32)

    def weights(self, t: torch.Tensor, it: int) -> torch.Tensor:
        return self.table.to(t.device)[t]


class LossSecondMomentSampler(TimestepSampler):
    """improved-diffusion's LossSecondMomentResampler (Nichol & Dhariwal 2021,
    Sec. 3.3): P(t) proportional to sqrt(E[L_t^2]) over the last `history`
    losses per t, mixed with `uniform_prob` of uniform, once every t has a full
    history (uniform before); importance weights 1 / (T P(t)) keep the
    objective unbiased."""

    name = "loss-second-moment"

    def __init__(self, T: int, history: int = 10, uniform_prob: float = 0.001):
        super().__init__(T)
        self.history, self.uniform_prob = second_moment_settings(history, uniform_prob)
        self.losses = torch.zeros(T, self.history, dtype=torch.float64)
        self.counts = torch.zeros(T, dtype=torch.long)

    def warmed_up(self) -> bool:
        return bool((self.counts >= self.history).all())

    def pmf(self, it: int) -> torch.Tensor:
        if not self.warmed_up():
            return torch.full((self.T,), 1.0 / self.T, dtype=torch.float64)
        w = torch.sqrt((self.losses**2).mean(dim=1))
        return w / w.sum() * (1.0 - self.uniform_prob) + self.uniform_prob / self.T

    def sample(self, batch: int, it: int, generator: torch.Generator, device="cpu"):
        p = self.pmf(it)
        t = torch.multinomial(p, batch, replacement=True, generator=generator)
        w = (1.0 / (self.T * p[t])).to(torch.float32)
        return t.to(device), w.to(device)

    def observe(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        for ti, loss in zip(t.tolist(), losses.detach().double().cpu().tolist()):
            if self.counts[ti] >= self.history:  # shift out the oldest loss
                self.losses[ti, :-1] = self.losses[ti, 1:].clone()
                self.losses[ti, -1] = loss
            else:
                self.losses[ti, self.counts[ti]] = loss
            self.counts[ti] += 1

    def state_dict(self) -> dict:
        return {"losses": self.losses.clone(), "counts": self.counts.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.losses, self.counts = state["losses"].clone(), state["counts"].clone()


def make_sampler(options: dict, diffusion, total_steps: int) -> TimestepSampler:
    """A sampler from its config, e.g. {"name": "clts", "target_iter": 500}; CLTS
    may give its target as a fraction of the run instead ("target_frac": 0.2)."""
    name, opts = sampler_options(options, diffusion.T, total_steps)
    T = diffusion.T
    if name == "uniform":
        return UniformSampler(T)
    if name == "clts":
        return CLTSSampler(T, **opts)
    snr = diffusion.snr(torch.arange(T)).double()
    if name == "min-snr":
        return WeightedUniformSampler(T, name, min_snr_weight(snr, opts["gamma"], diffusion.prediction))
    if name == "p2":
        return WeightedUniformSampler(T, name, p2_weight(snr, opts["k"], opts["gamma"]))
    return LossSecondMomentSampler(T, **opts)
