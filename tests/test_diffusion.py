import math

import numpy as np
import pytest
import torch

from dstab.diffusion import Diffusion, betas_for
from dstab.errors import DstabError


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("T", [50, 1000, 4000])
def test_alpha_bar_decreases_from_near_one_to_near_zero(schedule, T):
    abar = Diffusion(schedule, T).alphas_cumprod.double().numpy()
    assert np.all(np.diff(abar) < 0)
    assert 0.99 < abar[0] < 1.0
    assert abar[-1] < 5e-3


def test_linear_endpoints_match_ho_et_al():
    betas = betas_for("linear", 1000)
    assert betas[0] == pytest.approx(1e-4, abs=1e-12)
    assert betas[-1] == pytest.approx(0.02, abs=1e-12)
    # improved-diffusion scales the range by 1000/T
    assert betas_for("linear", 4000)[-1] == pytest.approx(0.005, abs=1e-12)
    abar = Diffusion("linear", 1000).alphas_cumprod.double().numpy()
    assert abar[-1] == pytest.approx(4.0358e-5, rel=1e-3)


@pytest.mark.parametrize("t", [0, 1, 100, 500, 900, 990])
def test_cosine_matches_its_formula(t):
    T = 1000
    f = lambda s: math.cos((s / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    abar = Diffusion("cosine", T).alphas_cumprod[t].item()
    assert abar == pytest.approx(f(t + 1) / f(0), abs=1e-6)


def test_cosine_betas_are_clipped():
    assert betas_for("cosine", 1000).max() == pytest.approx(0.999)


@pytest.mark.parametrize("T", [0, -3, 2.5])
def test_impossible_T_is_refused(T):
    with pytest.raises(DstabError, match="T must be an integer >= 1"):
        Diffusion("linear", T)


def test_linear_schedule_refuses_too_few_steps():
    with pytest.raises(DstabError, match="linear schedule needs T >= 21"):
        Diffusion("linear", 20)
    assert Diffusion("cosine", 5).betas.shape == (5,)


def test_unknown_schedule_and_prediction():
    with pytest.raises(DstabError, match="unknown noise schedule 'quadratic'"):
        Diffusion("quadratic", 10)
    with pytest.raises(DstabError, match="unknown prediction 'v'"):
        Diffusion("linear", 10, "v")


def test_q_sample_statistics():
    d = Diffusion("linear", 1000)
    n, t = 200_000, 300
    x0 = torch.full((n, 1), 0.5)
    gen = torch.Generator().manual_seed(0)
    xt = d.q_sample(x0, torch.full((n,), t), torch.randn(n, 1, generator=gen))
    abar = d.alphas_cumprod[t].item()
    assert xt.mean().item() == pytest.approx(math.sqrt(abar) * 0.5, abs=5e-3)
    assert xt.var().item() == pytest.approx(1 - abar, rel=1e-2)


class Oracle(torch.nn.Module):
    """Knows x0, so it predicts eps (or x0) exactly."""

    def __init__(self, d, x0, prediction):
        super().__init__()
        self.d, self.x0, self.prediction = d, x0, prediction

    def forward(self, xt, t):
        if self.prediction == "x0":
            return self.x0
        sa = self.d.sqrt_abar[t].reshape(-1, 1)
        s1 = self.d.sqrt_one_minus_abar[t].reshape(-1, 1)
        return (xt - sa * self.x0) / s1


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_loss_terms_are_per_example_and_zero_for_an_oracle(prediction):
    d = Diffusion("linear", 100, prediction)
    x0 = torch.rand(5, 3) - 0.5
    t = torch.tensor([0, 10, 50, 90, 99])
    noise = torch.randn(5, 3)
    assert torch.allclose(d.loss_terms(Oracle(d, x0, prediction), x0, t, noise), torch.zeros(5), atol=1e-8)
    zero = lambda xt, t: torch.zeros_like(xt)  # noqa: E731
    target = noise if prediction == "eps" else x0
    assert torch.allclose(d.loss_terms(zero, x0, t, noise), (target**2).mean(dim=1))


def test_snr():
    d = Diffusion("linear", 1000)
    t = torch.tensor([0, 999])
    abar = d.alphas_cumprod[t]
    assert torch.allclose(d.snr(t), abar / (1 - abar))
