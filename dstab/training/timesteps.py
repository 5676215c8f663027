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
The rules the field compares with today (EDM's log-normal, SD3's logit-normal
and mode, Laplace log-SNR, Debias, SpeeD; their tables in timestep_rules) are
fixed tables of P(t) and weights. `effective_pmf` puts both kinds on one axis:
P(t) times the loss weight, normalised (a weighting's P(t)-equivalent).
"""

from __future__ import annotations

import torch

from . import timestep_rules as rules
from .sampler_options import (  # noqa: F401 (CLTS_* and SAMPLERS re-exported)
    CLTS_MU_FRACTION,
    CLTS_SIGMA_FRACTION,
    RULE_DEFAULTS,
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

    def effective_pmf(self, it: int) -> torch.Tensor:
        """P(t) times the loss weight of t, normalised: each t's share of the expected training loss's
        weight (for a pure weighting, its P(t)-equivalent; for a pure sampler, its P(t))."""
        p = self.pmf(it) * self.weights(torch.arange(self.T), it).double()
        return p / p.sum()

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

    def weights(self, t: torch.Tensor, it: int) -> torch.Tensor:
        return (1.0 / (self.T * self.pmf(it).to(t.device)[t])).to(torch.float32)

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


class TableSampler(TimestepSampler):
    """A fixed P(t) and a fixed per-t loss weight (unit unless given): EDM's log-normal (with or without its
    weight), SD3's logit-normal and mode, Laplace log-SNR; formulas and sources in timestep_rules."""

    def __init__(self, T: int, name: str, pmf: torch.Tensor, table: torch.Tensor | None = None):
        super().__init__(T)
        self.name = name
        self.table_pmf = pmf.to(torch.float64)
        self.table = torch.ones(T) if table is None else table.to(torch.float32)

    def pmf(self, it: int) -> torch.Tensor:
        return self.table_pmf

    def weights(self, t: torch.Tensor, it: int) -> torch.Tensor:
        return self.table.to(t.device)[t]


class SpeeDSampler(TableSampler):
    """SpeeD (Wang et al. 2024, arXiv 2405.17403): t below the plateau threshold tau is k times likelier than t
    from tau on (timestep_rules.speed_base_pmf, speed_threshold), with the P2 weight 1 / (1 + SNR_t) (its authors'
    code). `dual` (their code): the second half of a batch is the first half mirrored about tau
    (tau - t below it, t - tau above), so an even batch's t follow (P + P_dual) / 2; the authors draw
    batch // 2 + 1 and cut the concatenation at the batch, one mirrored draw fewer for an even batch."""

    name = "speed"

    def __init__(self, T: int, base: torch.Tensor, tau: int, dual: bool, table: torch.Tensor | None):
        self.base, self.tau, self.dual = base, tau, dual
        self.mirror = rules.speed_dual(T, tau)
        pmf = (base + rules.mirrored_pmf(base, self.mirror)) / 2 if dual else base
        super().__init__(T, "speed", pmf, table)

    def sample(self, batch: int, it: int, generator: torch.Generator, device="cpu"):
        if not self.dual:
            return super().sample(batch, it, generator, device)
        drawn = torch.multinomial(self.base, (batch + 1) // 2, replacement=True, generator=generator)
        t = torch.cat([drawn, self.mirror[drawn[: batch // 2]]]).to(device)
        return t, self.weights(t, it)


def rule_sampler(name: str, opts: dict, diffusion) -> TimestepSampler:
    """One of the field's rules (sampler_options.RULE_DEFAULTS) on the diffusion's schedule."""
    T, prediction = diffusion.T, diffusion.prediction
    lam = rules.log_snr(diffusion.schedule, T)
    if name == "debias":
        return WeightedUniformSampler(T, name, rules.debias_weight(lam, prediction))
    if name == "speed":
        tau = rules.speed_threshold(diffusion.schedule, T, opts["eps"])
        table = rules.speed_weight(lam, prediction) if opts["p2"] else None
        return SpeeDSampler(T, rules.speed_base_pmf(T, tau, opts["k"]), tau, opts["dual"], table)
    pmf = rules.rule_pmf(name, opts, lam)
    edm = name == "lognormal" and opts["edm_weight"]
    return TableSampler(T, name, pmf, rules.edm_weight(lam, pmf, opts["sigma_data"], prediction) if edm else None)


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
    if name in RULE_DEFAULTS:
        return rule_sampler(name, opts, diffusion)
    return LossSecondMomentSampler(T, **opts)
