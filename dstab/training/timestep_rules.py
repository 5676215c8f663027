"""The timestep rules researchers compare with today, as tables over a DDPM's discrete t.

Each rule is a P(t) over t = 0..T-1 (unit loss weights) or a per-t loss weight
(uniform P(t)), or both (SpeeD). All are float64 functions of the schedule's
log-SNR lambda_t = log(abar_t / (1 - abar_t)), which falls as t grows.

Rules stated for a continuous noise level become a P(t) by integrating their
density over each t's cell in log-SNR: the cell of t runs between the midpoints
to its neighbours' lambda (t = 0 reaches +inf, t = T-1 -inf), so
P(t) = F(upper_t) - F(lower_t) with F the rule's CDF in lambda, and the table
sums to 1 exactly. Drawing a continuous level and rounding it to the nearest
discrete lambda gives the same P(t).

A weight is stated for the eps-prediction loss; an x0-prediction loss, whose
per-example MSE is the eps MSE divided by SNR_t, gets it times SNR_t (as Min-SNR
does). The options and their defaults are checked in sampler_options.
"""

from __future__ import annotations

import math

import torch

from ..errors import require
from ..modelconfig import betas_for


def log_snr(schedule: str, T: int) -> torch.Tensor:
    """lambda_t = log(abar_t / (1 - abar_t)), float64, from the schedule's float64 betas."""
    abar = torch.cumprod(1.0 - torch.from_numpy(betas_for(schedule, T)), dim=0)
    return torch.log(abar) - torch.log1p(-abar)


def cell_pmf(cdf, lam: torch.Tensor) -> torch.Tensor:
    """P(t) = cdf(upper_t) - cdf(lower_t) over each t's cell in log-SNR (midpoints to the neighbours)."""
    inf = torch.tensor([math.inf], dtype=torch.float64)
    bounds = torch.cat([inf, (lam[:-1] + lam[1:]) / 2, -inf])
    return cdf(bounds[:-1]) - cdf(bounds[1:])


def lognormal_cdf(p_mean: float, p_std: float):
    """EDM (Karras et al. 2022, NVlabs/edm training/loss.py): ln sigma ~ N(p_mean, p_std^2) with the VP
    sigma_t = sqrt((1 - abar_t) / abar_t) = exp(-lambda / 2), so P(lambda <= l) = Phi((l / 2 + p_mean) / p_std)."""
    return lambda lam: torch.special.ndtr((lam / 2 + p_mean) / p_std)


def logit_normal_cdf(m: float, s: float):
    """SD3 (Esser et al. 2024): the flow time u = sigmoid(n), n ~ N(m, s^2), of x_u = (1 - u) x0 + u eps, whose
    SNR is ((1 - u) / u)^2, so lambda = -2 n and P(lambda <= l) = Phi((l / 2 + m) / s)."""
    return lambda lam: torch.special.ndtr((lam / 2 + m) / s)


def mode_map(v: torch.Tensor, scale: float) -> torch.Tensor:
    """SD3's mode sampling: u = f(v) = 1 - v - scale (cos^2(pi v / 2) - 1 + v), v ~ U(0, 1) (as diffusers'
    compute_density_for_timestep_sampling); decreasing from f(0) = 1 to f(1) = 0 for -1 < scale < 2 / (pi - 2)."""
    return 1 - v - scale * (torch.cos(math.pi * v / 2) ** 2 - 1 + v)


def mode_cdf(scale: float, iterations: int = 64):
    """P(lambda <= l) = P(u >= sigmoid(-l / 2)) = f^-1(sigmoid(-l / 2)), f inverted by bisection (f decreasing;
    64 halvings of [0, 1] reach float64 resolution)."""

    def cdf(lam: torch.Tensor) -> torch.Tensor:
        target = torch.sigmoid(-lam / 2)
        lo, hi = torch.zeros_like(lam), torch.ones_like(lam)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            above = mode_map(mid, scale) > target  # f(mid) > target: the inverse lies right of mid
            lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
        return (lo + hi) / 2

    return cdf


def laplace_cdf(mu: float, b: float):
    """Hang et al. (arXiv 2407.03297): p(lambda) = exp(-|lambda - mu| / b) / (2 b)."""

    def cdf(lam: torch.Tensor) -> torch.Tensor:
        z = (lam - mu) / b
        return torch.where(z < 0, 0.5 * torch.exp(torch.clamp(z, max=0)), 1 - 0.5 * torch.exp(-torch.clamp(z, min=0)))

    return cdf


CDFS = {
    "lognormal": lambda o: lognormal_cdf(o["p_mean"], o["p_std"]),
    "logit-normal": lambda o: logit_normal_cdf(o["m"], o["s"]),
    "mode": lambda o: mode_cdf(o["scale"]),
    "laplace": lambda o: laplace_cdf(o["mu"], o["b"]),
}


def rule_pmf(name: str, options: dict, lam: torch.Tensor) -> torch.Tensor:
    """P(t) of a continuous rule (a key of CDFS) with its checked options, on the log-SNR table `lam`."""
    return cell_pmf(CDFS[name](options), lam)


def for_loss(eps_weight: torch.Tensor, lam: torch.Tensor, prediction: str) -> torch.Tensor:
    """A weight stated for the eps loss, for the model's loss (x0: times SNR_t)."""
    return eps_weight * torch.exp(lam) if prediction == "x0" else eps_weight


def debias_weight(lam: torch.Tensor, prediction: str) -> torch.Tensor:
    """Debias (Yu et al., arXiv 2310.08442): eps weight 1 / sqrt(SNR_t) = exp(-lambda_t / 2), divided by its
    mean over t = 0..T-1, so a uniform draw's expected weight is 1 as in the unweighted loss (on the linear
    schedule, T = 1000, the raw weight runs 0.01..157 with mean 17.8). Adam ignores a constant loss scale
    except through gradient clipping and its eps; the division keeps clipping biting as for the uniform loss."""
    w = for_loss(torch.exp(-lam / 2), lam, prediction)
    return w / w.mean()


def edm_weight(lam: torch.Tensor, pmf: torch.Tensor, sigma_data: float, prediction: str) -> torch.Tensor:
    """EDM's loss weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 (Karras et al. 2022, Table 1) is stated
    for the denoiser's x0 error; the eps error is x0's over sigma, so the eps weight is
    (sigma^2 + sigma_data^2) / sigma_data^2. Divided by its mean under `pmf` (EDM's own P(t)), so the expected
    weight of a draw is 1 (raw: 7.46 on the linear schedule, T = 1000; 1 + 4 sigma^2 grows to 1e5 at t = T-1)."""
    sigma2 = torch.exp(-lam)
    w = for_loss((sigma2 + sigma_data**2) / sigma_data**2, lam, prediction)
    return w / (pmf * w).sum()


def speed_threshold(schedule: str, T: int, eps: float) -> int:
    """SpeeD's tau: one past the first t where d sqrt(1 - abar_t) / dt (central differences, one-sided at the
    ends, as numpy.gradient in the authors' code, NUS-HPC-AI-Lab/SpeeD) falls below eps: the start of the
    near-pure-noise plateau, where the noise level hardly changes any more. 642 on the linear schedule, T = 1000."""
    abar = torch.cumprod(1.0 - torch.from_numpy(betas_for(schedule, T)), dim=0)
    below = torch.gradient(torch.sqrt(1.0 - abar))[0] < eps
    tau = int(torch.argmax(below.to(torch.int8))) + 1
    require(
        bool(below.any()) and tau < T,
        f"SpeeD's threshold: d sqrt(1 - abar_t) / dt never falls below eps={eps:g} before t = T-1 on the "
        f"{schedule} schedule with T={T}; give a larger eps",
    )
    return tau


def speed_base_pmf(T: int, tau: int, k: float) -> torch.Tensor:
    """SpeeD's asymmetric sampling: P(t) = k / (k tau + T - tau) for t < tau, 1 / (k tau + T - tau) from tau on."""
    p = torch.where(torch.arange(T) < tau, float(k), 1.0).to(torch.float64)
    return p / p.sum()


def speed_dual(T: int, tau: int) -> torch.Tensor:
    """The authors' dual draw of t (their code, not their paper's formulas): tau - t below tau, t - tau from tau on."""
    t = torch.arange(T)
    return torch.where(t < tau, tau - t, t - tau)


def mirrored_pmf(pmf: torch.Tensor, dual: torch.Tensor) -> torch.Tensor:
    """P(dual(t)) for t ~ pmf."""
    return torch.zeros_like(pmf).index_add_(0, dual, pmf)


def speed_weight(lam: torch.Tensor, prediction: str) -> torch.Tensor:
    """SpeeD's weight as its authors' code applies it: P2 (Choi et al. 2022) with k = 1, gamma = 1,
    1 / (1 + SNR_t) on the eps loss, not normalised (it lies in (0, 1], like dstab's p2 preset)."""
    return for_loss(1.0 / (1.0 + torch.exp(lam)), lam, prediction)
