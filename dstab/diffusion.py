"""Gaussian diffusion: schedules, forward noising, losses, DDPM and DDIM samplers.

Samplers never draw random numbers themselves: every x_T and every per-step
noise comes from a `NoiseSource`, a pure function of (seed, index). Feeding
N models the same source gives them exactly the same noise, which is what the
paper's consistency measure (Eq. 1) requires.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import DstabError, require
from .modelconfig import DDIM_STEPS, PREDICTIONS, SCHEDULES, betas_for, check_fields, check_keys  # noqa: F401 (re-exported)
from .modelconfig import DIFFUSION_DEFAULTS as _D


class NoiseSource:
    """Seeded, order-independent noise: x_T, per-step noise and GAN latents.

    Each draw is a pure function of (seed, stream, index), generated on the CPU
    in float32 and then moved, so the same seed gives bit-identical noise on
    every device and whichever order the draws are made in.
    """

    def __init__(self, seed: int, shape: tuple[int, ...]):
        self.seed = int(seed)
        self.shape = tuple(int(s) for s in shape)

    def _draw(self, stream: str, index: int, shape=None) -> torch.Tensor:
        digest = hashlib.sha256(f"{self.seed}/{stream}/{index}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
        return torch.randn(shape or self.shape, generator=gen)

    def x_T(self) -> torch.Tensor:
        return self._draw("x_T", 0)

    def step_noise(self, t: int) -> torch.Tensor:
        """Noise added when stepping from t to t-1 (indexed by the model timestep t)."""
        return self._draw("step", int(t))

    def latent(self, latent_shape: tuple[int, ...]) -> torch.Tensor:
        """GAN latents z for the same batch size (first dimension of `shape`)."""
        return self._draw("z", 0, (self.shape[0], *latent_shape))

    def labels(self, num_classes: int) -> torch.Tensor:
        """Class labels for class-conditional models (guided-diffusion's ImageNet models
        sample with uniformly drawn classes), the same for every model of a group."""
        digest = hashlib.sha256(f"{self.seed}/labels/0".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
        return torch.randint(int(num_classes), (self.shape[0],), generator=gen)


def _gather(a: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    return a.to(t.device)[t].reshape(-1, *([1] * (ndim - 1)))


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of the standard normal CDF that improved-diffusion's decoder uses
    (Page 1977; within 2e-4 of the exact CDF)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x, means, log_scales) -> torch.Tensor:
    """log P(x) elementwise for data x in [-1, 1] on 256 levels (bins of width 2/255) under
    N(means, exp(log_scales)^2); the edge bins take the tails (Ho et al. 2020, Sec. 3.3)."""
    centred, inv_std = x - means, torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centred + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_std * (centred - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


@dataclass
class Diffusion:
    """Schedule plus prediction type; the model is passed to each method."""

    schedule: str = _D["schedule"]
    T: int = _D["T"]
    prediction: str = _D["prediction"]
    learn_sigma: bool = _D["learn_sigma"]  # model output carries a variance channel block
    # DDPM variance without learned sigma: "small" = posterior variance (improved-diffusion's
    # sigma_small=True, diffusers' "fixed_small"); "large" = beta_t, Ho et al. 2020's choice for
    # CIFAR-10 (improved-diffusion's default sigma_small=False, guided-diffusion always, "fixed_large")
    fixed_variance: str = _D["fixed_variance"]
    # clipping of the x0 estimate while sampling: None = dstab's own rule (images only: 2-D toy
    # points reach radius ~2); True/False = the source's clip_denoised / clip_sample, honoured as given
    clip_denoised: bool | None = _D["clip_denoised"]
    clip_range: float = _D["clip_range"]  # diffusers' clip_sample_range; improved/guided-diffusion clip to [-1, 1]

    def __post_init__(self):
        check_fields(self.prediction, self.fixed_variance, self.clip_denoised, self.clip_range)
        betas = betas_for(self.schedule, self.T)
        abar = np.cumprod(1.0 - betas)
        abar_prev = np.append(1.0, abar[:-1])
        f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        self.betas = f32(betas)
        self.alphas_cumprod = f32(abar)
        self.alphas_cumprod_prev = f32(abar_prev)
        self.sqrt_abar = f32(np.sqrt(abar))
        self.sqrt_one_minus_abar = f32(np.sqrt(1.0 - abar))
        # posterior q(x_{t-1} | x_t, x_0) (Ho et al. Eq. 6-7)
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        self.posterior_variance = f32(post_var)
        # log-variances as improved-diffusion tabulates them: t = 0 borrows t = 1's value (the
        # posterior variance is 0 there; no noise is added at t = 0 anyway)
        self.posterior_log_variance = f32(np.log(np.append(post_var[1], post_var[1:])))
        self.large_log_variance = f32(np.log(np.append(post_var[1], betas[1:])))
        self.posterior_coef_x0 = f32(betas * np.sqrt(abar_prev) / (1.0 - abar))
        self.posterior_coef_xt = f32((1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar))
        self.log_betas = f32(np.log(betas))

    def to_config(self) -> dict:
        cfg = {"schedule": self.schedule, "T": self.T, "prediction": self.prediction, "learn_sigma": self.learn_sigma}
        # options at their defaults are left out, so headers written before they existed stay byte-identical
        for name, default in (("fixed_variance", "small"), ("clip_denoised", None), ("clip_range", 1.0)):
            if getattr(self, name) != default:
                cfg[name] = getattr(self, name)
        return cfg

    def clip_for(self, ndim: int) -> float | None:
        """The range x0 estimates are clipped to for samples of `ndim` dims (batch included), or None."""
        clips = ndim == 4 if self.clip_denoised is None else self.clip_denoised
        return float(self.clip_range) if clips else None

    def sampling_summary(self, ndim: int) -> dict:
        """What DDPM sampling uses, in words, for `dstab info`."""
        if self.learn_sigma:
            variance = "learned: exp(v log beta_t + (1 - v) log posterior variance), v = (out + 1) / 2"
        elif self.fixed_variance == "large":
            variance = "fixed large: beta_t"
        else:
            variance = "fixed small: posterior variance beta_t (1 - abar_{t-1}) / (1 - abar_t)"
        r = self.clip_for(ndim)
        return {"variance": variance, "clip_x0": f"[-{r:g}, {r:g}]" if r is not None else "none"}

    @classmethod
    def from_config(cls, cfg: dict) -> Diffusion:
        check_keys(cfg)
        return cls(**cfg)

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        abar = self.alphas_cumprod.to(t.device)[t]
        return abar / (1.0 - abar)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps."""
        return _gather(self.sqrt_abar, t, x0.ndim) * x0 + _gather(self.sqrt_one_minus_abar, t, x0.ndim) * noise

    def _split(self, out: torch.Tensor, x: torch.Tensor):
        if self.learn_sigma:
            return out[:, : x.shape[1]], out[:, x.shape[1] :]
        return out, None

    def _forward(self, model, x0, t, noise, y=None):
        xt = self.q_sample(x0, t, noise)
        pred, var_out = self._split(model(xt, t) if y is None else model(xt, t, y), x0)
        return xt, pred, var_out

    def _mse(self, pred, x0, noise) -> torch.Tensor:
        target = noise if self.prediction == "eps" else x0
        return ((pred - target) ** 2).reshape(x0.shape[0], -1).mean(dim=1)

    def loss_terms(self, model, x0, t, noise, y=None) -> torch.Tensor:
        """Per-example mean squared error of the model's prediction (eps or x0).

        The square is written out rather than using F.mse_loss, whose backward
        breaks forward-over-reverse Hessian-vector products (pytorch#123996).
        """
        _, pred, _ = self._forward(model, x0, t, noise, y)
        return self._mse(pred, x0, noise)

    def training_terms(self, model, x0, t, noise, y=None) -> torch.Tensor:
        """Per-example training loss: `loss_terms`' MSE and, for a model with learned sigma,
        improved-diffusion's L_hybrid variance term: the variational bound's L_t in bits per
        dimension (`vb_bits`) with the mean held fixed (stop-gradient, so only the variance
        channels learn from it), times T / 1000 (lambda = 0.001 on the T-term sum, Nichol &
        Dhariwal 2021 Sec. 3.1). Without learned sigma it equals `loss_terms`."""
        if not self.learn_sigma:
            return self.loss_terms(model, x0, t, noise, y)
        xt, pred, var_out = self._forward(model, x0, t, noise, y)
        return self._mse(pred, x0, noise) + (self.T / 1000.0) * self.vb_bits(pred.detach(), var_out, x0, xt, t)

    def vb_bits(self, pred, var_out, x0, xt, t) -> torch.Tensor:
        """Per example, in bits per dimension: KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)) for t > 0
        and the discretised Gaussian decoder's negative log-likelihood of x0 at t = 0, with p's
        mean from the unclipped x0 estimate and its learned variance (`ddpm_log_variance`)."""
        nd = x0.ndim
        sa, s1a = _gather(self.sqrt_abar, t, nd), _gather(self.sqrt_one_minus_abar, t, nd)
        x0_hat = (xt - s1a * pred) / sa if self.prediction == "eps" else pred
        c0, ct = _gather(self.posterior_coef_x0, t, nd), _gather(self.posterior_coef_xt, t, nd)
        mean, log_var = c0 * x0_hat + ct * xt, self.ddpm_log_variance(var_out, t, nd)
        true_mean, true_log_var = c0 * x0 + ct * xt, _gather(self.posterior_log_variance, t, nd)
        per_dim = lambda v: v.reshape(x0.shape[0], -1).mean(dim=1) / math.log(2.0)  # noqa: E731
        kl = per_dim(normal_kl(true_mean, true_log_var, mean, log_var))
        nll = per_dim(-discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var))
        return torch.where(t == 0, nll, kl)

    def predict_eps_x0(self, model, xt, t, y=None, clip: bool | float | None = None):
        """(eps_hat, x0_hat, variance model output or None) from one model call. x0_hat is clipped
        to [-r, r]: r = `clip` if a number, `clip_range` if True, `clip_for(xt.ndim)` if None."""
        out = model(xt, t) if y is None else model(xt, t, y)
        pred, var_out = self._split(out, xt)
        sa, s1a = _gather(self.sqrt_abar, t, xt.ndim), _gather(self.sqrt_one_minus_abar, t, xt.ndim)
        if self.prediction == "eps":
            eps, x0 = pred, (xt - s1a * pred) / sa
        else:
            x0, eps = pred, (xt - sa * pred) / s1a
        r = self._clip_bound(clip, xt.ndim)
        if r is not None:
            x0 = x0.clamp(-r, r)
            eps = (xt - sa * x0) / s1a
        return eps, x0, var_out

    def _clip_bound(self, clip, ndim: int) -> float | None:
        if clip is None:
            return self.clip_for(ndim)
        if clip is True:
            return float(self.clip_range)
        return float(clip) if clip else None

    def ddpm_log_variance(self, var_out, t, ndim):
        """log of the variance of x_{t-1} | x_t: fixed small or large (improved-diffusion's
        FIXED_SMALL / FIXED_LARGE tables), or LEARNED_RANGE's interpolation of the log-variances."""
        log_small = _gather(self.posterior_log_variance, t, ndim)
        if var_out is None:
            return _gather(self.large_log_variance, t, ndim) if self.fixed_variance == "large" else log_small
        frac = (var_out + 1.0) / 2.0
        return frac * _gather(self.log_betas, t, ndim) + (1.0 - frac) * log_small

    def timesteps(self, steps: int | None) -> list[int]:
        """Descending model timesteps for a sampler using `steps` of the T steps."""
        steps = self.T if steps is None else int(steps)
        require(1 <= steps <= self.T, f"sampler steps must lie in [1, T={self.T}], got {steps}")
        return sorted({int(round(x)) for x in np.linspace(0, self.T - 1, steps)}, reverse=True)

    @torch.no_grad()
    def ddpm_sample(self, model, noise: NoiseSource, device="cpu", y=None, clip=None, trajectory=False, progress=None):
        """Ancestral sampling over all T steps (Ho et al. Alg. 2), noise from `noise`;
        `progress("sample", done, total)` after each step."""
        x = noise.x_T().to(device)
        frames = []
        for t_int in range(self.T - 1, -1, -1):
            t = torch.full((x.shape[0],), t_int, device=device, dtype=torch.long)
            _, x0, var_out = self.predict_eps_x0(model, x, t, y, clip)
            mean = _gather(self.posterior_coef_x0, t, x.ndim) * x0 + _gather(self.posterior_coef_xt, t, x.ndim) * x
            if t_int > 0:
                log_var = self.ddpm_log_variance(var_out, t, x.ndim)
                x = mean + torch.exp(0.5 * log_var) * noise.step_noise(t_int).to(device)
            else:
                x = mean
            if trajectory:
                frames.append((t_int, x0.cpu()))
            if progress:
                progress("sample", self.T - t_int, self.T)
        return (x, frames) if trajectory else x

    @torch.no_grad()
    def ddim_sample(
        self,
        model,
        noise: NoiseSource,
        steps=DDIM_STEPS,
        eta=0.0,
        device="cpu",
        y=None,
        clip=None,
        trajectory=False,
        progress=None,
    ):
        """DDIM (Song et al. 2021, Eq. 12) over a subsequence of timesteps; eta=0 is deterministic."""
        require(eta >= 0.0, f"DDIM eta must be >= 0, got {eta}")
        x = noise.x_T().to(device)
        seq = self.timesteps(steps)
        frames = []
        for i, t_int in enumerate(seq):
            t = torch.full((x.shape[0],), t_int, device=device, dtype=torch.long)
            eps, x0, _ = self.predict_eps_x0(model, x, t, y, clip)
            abar = self.alphas_cumprod[t_int].item()
            abar_prev = self.alphas_cumprod[seq[i + 1]].item() if i + 1 < len(seq) else 1.0
            sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
            x = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * noise.step_noise(t_int).to(device)
            if trajectory:
                frames.append((t_int, x0.cpu()))
            if progress:
                progress("sample", i + 1, len(seq))
        return (x, frames) if trajectory else x

    def sample(self, model, noise: NoiseSource, sampler="ddpm", steps=None, eta=0.0, device="cpu", **kw):
        if sampler == "ddpm":
            require(steps in (None, self.T), "the DDPM sampler runs all T steps; use sampler='ddim' for fewer")
            return self.ddpm_sample(model, noise, device=device, **kw)
        if sampler == "ddim":
            return self.ddim_sample(
                model, noise, steps=DDIM_STEPS if steps is None else steps, eta=eta, device=device, **kw
            )
        raise DstabError(f"unknown sampler {sampler!r}; choose 'ddpm' or 'ddim'")
