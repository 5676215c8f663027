"""Timestep samplers: CLTS pmf golden values and frequencies, Min-SNR/P2 weights, loss-second-moment."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from dstab.diffusion import Diffusion
from dstab.errors import DstabError
from dstab.training.timesteps import (
    CLTSSampler,
    LossSecondMomentSampler,
    UniformSampler,
    make_sampler,
    min_snr_weight,
    p2_weight,
)


def clts_formula(t: int, T: int, mu: float, sigma: float, g: float) -> float:
    z = sum(math.exp(-0.5 * ((s - mu) / sigma) ** 2) for s in range(T))
    return (1 - g) / T + g * math.exp(-0.5 * ((t - mu) / sigma) ** 2) / z


@pytest.mark.parametrize("it,g", [(0, 0.0), (250, 0.5), (500, 1.0), (2000, 1.0)])
def test_clts_pmf_matches_eq7_8_at_iterations(it, g):
    s = CLTSSampler(1000, target_iter=500)  # paper defaults mu = 0.3 T, sigma = T
    p = s.pmf(it)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-12)
    for t in (0, 300, 999):
        assert p[t].item() == pytest.approx(clts_formula(t, 1000, 300.0, 1000.0, g), rel=1e-10)


def test_clts_with_paper_sigma_is_nearly_flat():
    """DESIGN.md: with sigma = T the Gaussian's peak at 0.3 T is only ~1.28x its value at T - 1."""
    p = CLTSSampler(1000, target_iter=1).pmf(10)
    assert (p[300] / p[999]).item() == pytest.approx(math.exp(0.5 * (699 / 1000) ** 2), rel=1e-12)
    assert (p[300] / p[999]).item() == pytest.approx(1.2767, abs=1e-4)
    assert p[300].item() == pytest.approx(1.0611e-3, rel=1e-4)  # vs 1e-3 uniform


def test_clts_draws_follow_the_pmf_chi_square():
    s = CLTSSampler(40, target_iter=100, mu=10, sigma=5)
    gen = torch.Generator().manual_seed(0)
    t, w = s.sample(200_000, 50, gen)
    assert torch.equal(w, torch.ones_like(w))  # the curriculum is not undone by weights
    observed = np.bincount(t.numpy(), minlength=40)
    expected = s.pmf(50).numpy() * len(t)
    assert chisquare(observed, expected).pvalue > 1e-3
    # and it is clearly not uniform
    assert chisquare(observed).pvalue < 1e-12


def test_uniform_sampler_keeps_the_foundation_stream():
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    t, w = UniformSampler(1000).sample(16, 0, gen_a)
    assert torch.equal(t, torch.randint(0, 1000, (16,), generator=gen_b))
    assert torch.equal(w, torch.ones(16))


@pytest.mark.parametrize(
    "snr,eps_w,x0_w",
    [(0.5, 1.0, 0.5), (5.0, 1.0, 5.0), (10.0, 0.5, 5.0), (100.0, 0.05, 5.0)],
)
def test_min_snr_gamma_5_weights(snr, eps_w, x0_w):
    s = torch.tensor([snr], dtype=torch.float64)
    assert min_snr_weight(s, 5.0, "eps").item() == pytest.approx(eps_w)
    assert min_snr_weight(s, 5.0, "x0").item() == pytest.approx(x0_w)


@pytest.mark.parametrize("snr,k,gamma,want", [(0.0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 0.5), (3.0, 1.0, 0.5, 0.5)])
def test_p2_weights(snr, k, gamma, want):
    assert p2_weight(torch.tensor([snr]), k, gamma).item() == pytest.approx(want)


def test_weighted_samplers_use_the_schedule_snr():
    d = Diffusion(T=1000)
    s = make_sampler({"name": "min-snr"}, d, 100)
    t = torch.tensor([0, 500, 999])
    snr = d.snr(t).double()
    want = torch.clamp(snr, max=5.0) / snr
    assert torch.allclose(s.weights(t, 0).double(), want, rtol=1e-6)
    p2 = make_sampler({"name": "p2", "k": 1.0, "gamma": 1.0}, d, 100)
    assert torch.allclose(p2.weights(t, 0).double(), 1 / (1 + snr), rtol=1e-6)


def test_loss_second_moment_sampler_is_uniform_until_warm_then_follows_sqrt_second_moment():
    s = LossSecondMomentSampler(4, history=2, uniform_prob=0.0)
    s.observe(torch.tensor([0, 1, 2, 3, 0, 1, 2]), torch.tensor([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0]))
    assert torch.allclose(s.pmf(0), torch.full((4,), 0.25, dtype=torch.float64))
    s.observe(torch.tensor([3, 0]), torch.tensor([4.0, 3.0]))  # t=0 history shifts to [1, 3]
    w = torch.tensor([math.sqrt(5.0), 2.0, 3.0, 4.0], dtype=torch.float64)
    assert torch.allclose(s.pmf(0), w / w.sum())
    t, weights = s.sample(1000, 0, torch.Generator().manual_seed(0))
    # importance weights 1 / (T p(t)) keep the uniform objective: E_p[w] = 1
    assert torch.allclose(weights.double(), 1 / (4 * (w / w.sum())[t]), rtol=1e-6)
    restored = LossSecondMomentSampler(4, history=2, uniform_prob=0.0)
    restored.load_state_dict(s.state_dict())
    assert torch.equal(restored.pmf(0), s.pmf(0))


@pytest.mark.parametrize(
    "opts,match",
    [
        ({"name": "clts", "target_iter": 10, "mu": 1000}, "mu must lie in"),
        ({"name": "clts", "target_iter": 10, "mu": -1}, "mu must lie in"),
        ({"name": "clts", "target_iter": 0}, "target_iter must be > 0"),
        ({"name": "clts"}, "exactly one of target_iter"),
        ({"name": "clts", "target_frac": -0.5}, "target_frac must be > 0"),
        ({"name": "nope"}, "unknown timestep sampler"),
        ({"name": "p2", "k": 0}, "p2 needs k > 0"),
        ({"name": "uniform", "gamma": 1}, "unknown options"),
    ],
)
def test_bad_sampler_configs_are_refused(opts, match):
    with pytest.raises(DstabError, match=match):
        make_sampler(opts, Diffusion(T=1000), 100)


def test_clts_target_frac_scales_with_the_run():
    s = make_sampler({"name": "clts", "target_frac": 0.2}, Diffusion(T=1000), 3000)
    assert s.target_iter == pytest.approx(600.0)
    assert (s.mu, s.sigma) == (300.0, 1000.0)
