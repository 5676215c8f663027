"""improved-diffusion's L_hybrid (learned sigma): the KL and decoder terms against scipy, the
variance term's analytic values, and the stop-gradient that keeps it off the mean."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dstab.diffusion import (
    Diffusion,
    approx_standard_normal_cdf,
    discretized_gaussian_log_likelihood,
    normal_kl,
)


@pytest.mark.parametrize("m1,v1,m2,v2", [(0.0, 1.0, 1.0, 2.0), (0.3, 0.01, -0.2, 0.05), (2.0, 4.0, 2.0, 4.0)])
def test_normal_kl_equals_the_integral(m1, v1, m2, v2):
    p, q = stats.norm(m1, math.sqrt(v1)), stats.norm(m2, math.sqrt(v2))
    lo, hi = m1 - 12 * math.sqrt(v1), m1 + 12 * math.sqrt(v1)
    want = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), lo, hi, limit=200)[0]
    got = normal_kl(*(torch.tensor(v, dtype=torch.float64) for v in (m1, math.log(v1), m2, math.log(v2))))
    assert float(got) == pytest.approx(want, abs=1e-9)


def test_approx_cdf_is_within_2e_4_of_the_exact_cdf():
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    assert float((approx_standard_normal_cdf(x) - torch.from_numpy(stats.norm.cdf(x.numpy()))).abs().max()) < 2e-4


def test_discretised_likelihood_is_the_bin_probability():
    levels = torch.tensor([0, 1, 100, 140, 254, 255], dtype=torch.float64)
    x = levels / 127.5 - 1.0
    mean, log_scale = torch.full_like(x, 0.1), torch.full_like(x, math.log(0.5))
    got = discretized_gaussian_log_likelihood(x, mean, log_scale).numpy()
    cdf = lambda v: stats.norm.cdf((v - 0.1) / 0.5)  # noqa: E731
    xs = x.numpy()
    want = np.log(cdf(xs + 1 / 255) - cdf(xs - 1 / 255))
    want[0] = np.log(cdf(xs[0] + 1 / 255))  # the lowest bin takes the lower tail
    want[-1] = np.log(1 - cdf(xs[-1] - 1 / 255))  # the highest the upper one
    # the tanh CDF's error (< 2e-4 absolute) matters most for the narrow interior bins
    assert np.allclose(got, want, rtol=2.5e-3)  # measured: at most 2.0e-3 (the lowest bin)


def _model(out):
    return lambda xt, t: out


def test_vb_is_zero_for_the_true_posterior_and_analytic_for_beta_t():
    d = Diffusion("cosine", 40, "eps", learn_sigma=True)
    gen = torch.Generator().manual_seed(0)
    x0 = (torch.randint(0, 256, (3, 3, 4, 4), generator=gen) / 127.5 - 1.0).float()
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.tensor([5, 17, 39])
    xt = d.q_sample(x0, t, noise)
    # the true noise gives the true posterior mean; var_out = -1 picks the posterior variance
    small = d.vb_bits(noise, -torch.ones_like(x0), x0, xt, t)
    assert torch.allclose(small, torch.zeros(3), atol=1e-5)
    # var_out = +1 picks beta_t: KL between equal means is 0.5 (r - 1 - log r) per dim, r = post / beta
    large = d.vb_bits(noise, torch.ones_like(x0), x0, xt, t)
    r = d.posterior_variance[t].double() / d.betas[t].double()
    want = 0.5 * (r - 1 - torch.log(r)) / math.log(2.0)
    assert torch.allclose(large.double(), want, rtol=1e-4, atol=1e-7)


def test_vb_at_t0_is_the_decoder_nll():
    d = Diffusion("cosine", 40, "eps", learn_sigma=True)
    x0 = torch.full((1, 1, 2, 2), 0.0)
    noise = torch.zeros_like(x0)
    t = torch.tensor([0])
    xt = d.q_sample(x0, t, noise)
    got = d.vb_bits(noise, -torch.ones_like(x0), x0, xt, t)
    std = math.exp(0.5 * float(d.posterior_log_variance[0]))
    mean = float(d.posterior_coef_x0[0] * 0.0 + d.posterior_coef_xt[0] * xt.flatten()[0])
    p = stats.norm.cdf((1 / 255 - mean) / std) - stats.norm.cdf((-1 / 255 - mean) / std)
    assert float(got) == pytest.approx(-math.log2(p), rel=1e-3)


def test_training_terms_without_learned_sigma_are_the_mse():
    d = Diffusion("linear", 50, "eps")
    gen = torch.Generator().manual_seed(1)
    x0, noise, pred = (torch.randn(4, 2, 3, 3, generator=gen) for _ in range(3))
    t = torch.tensor([0, 10, 20, 49])
    assert torch.equal(d.training_terms(_model(pred), x0, t, noise), d.loss_terms(_model(pred), x0, t, noise))


def test_the_variance_term_does_not_train_the_mean():
    d = Diffusion("cosine", 40, "eps", learn_sigma=True)
    gen = torch.Generator().manual_seed(2)
    x0 = torch.rand(2, 3, 4, 4, generator=gen) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen)
    out = torch.randn(2, 6, 4, 4, generator=gen).requires_grad_(True)
    t = torch.tensor([3, 30])
    hybrid = d.training_terms(_model(out), x0, t, noise).sum()
    (g_hybrid,) = torch.autograd.grad(hybrid, out)
    (g_mse,) = torch.autograd.grad(d.loss_terms(_model(out), x0, t, noise).sum(), out)
    assert torch.equal(g_hybrid[:, :3], g_mse[:, :3])  # the mean channels see the MSE only
    assert g_hybrid[:, 3:].abs().sum() > 0 and g_mse[:, 3:].abs().sum() == 0  # the variance channels learn
    # the variance term's size: T / 1000 times the bound's L_t
    vb = d.vb_bits(out[:, :3].detach(), out[:, 3:].detach(), x0, d.q_sample(x0, t, noise), t)
    extra = d.training_terms(_model(out), x0, t, noise) - d.loss_terms(_model(out), x0, t, noise)
    assert torch.allclose(extra.detach(), 0.04 * vb, rtol=1e-5)
