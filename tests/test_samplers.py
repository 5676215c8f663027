import torch

from dstab.diffusion import Diffusion, NoiseSource
from dstab.sampling import generate
from tests.conftest import TINY_UNET, randomise


class Recording(NoiseSource):
    def __init__(self, *a):
        super().__init__(*a)
        self.drawn = []

    def x_T(self):
        x = super().x_T()
        self.drawn.append(("x_T", None, x))
        return x

    def step_noise(self, t):
        x = super().step_noise(t)
        self.drawn.append(("step", t, x))
        return x


def _models():
    from dstab import models

    return randomise(models.build(TINY_UNET), 1), randomise(models.build(TINY_UNET), 2)


def test_noise_source_is_order_independent_and_seeded():
    a, b = NoiseSource(7, (2, 3)), NoiseSource(7, (2, 3))
    late = a.step_noise(5)
    b.x_T(), b.step_noise(9)
    assert torch.equal(late, b.step_noise(5))
    assert torch.equal(a.x_T(), b.x_T())
    assert not torch.equal(a.x_T(), NoiseSource(8, (2, 3)).x_T())
    assert not torch.equal(a.step_noise(1), a.step_noise(2))
    assert torch.equal(a.latent((4,)), b.latent((4,))) and a.latent((4,)).shape == (2, 4)


def test_ddpm_same_seed_is_bit_identical():
    m, _ = _models()
    d = Diffusion("linear", 25)
    x1 = d.ddpm_sample(m, NoiseSource(3, (4, 1, 8, 8)))
    x2 = d.ddpm_sample(m, NoiseSource(3, (4, 1, 8, 8)))
    assert torch.equal(x1, x2)
    assert not torch.equal(x1, d.ddpm_sample(m, NoiseSource(4, (4, 1, 8, 8))))


def test_two_models_receive_exactly_the_same_noise_stream():
    m1, m2 = _models()
    d = Diffusion("cosine", 12)
    s1, s2 = Recording(11, (3, 1, 8, 8)), Recording(11, (3, 1, 8, 8))
    out1, out2 = d.ddpm_sample(m1, s1), d.ddpm_sample(m2, s2)
    assert not torch.equal(out1, out2)  # different models ...
    assert [k[:2] for k in s1.drawn] == [("x_T", None)] + [("step", t) for t in range(11, 0, -1)]
    for (k1, t1, x1), (k2, t2, x2) in zip(s1.drawn, s2.drawn, strict=True):
        assert (k1, t1) == (k2, t2) and torch.equal(x1, x2)  # ... the same noise


def test_ddim_eta0_is_deterministic_and_draws_no_step_noise():
    m, _ = _models()
    d = Diffusion("linear", 50)
    src = Recording(0, (2, 1, 8, 8))
    x1 = d.ddim_sample(m, src, steps=10, eta=0.0)
    assert [k for k, _, _ in src.drawn] == ["x_T"]
    assert torch.equal(x1, d.ddim_sample(m, Recording(0, (2, 1, 8, 8)), steps=10, eta=0.0))


def test_ddim_with_all_steps_and_eta1_equals_ddpm():
    """With sigma_t^2 = the posterior variance, DDIM's update is DDPM's ancestral step."""
    m, _ = _models()
    d = Diffusion("cosine", 30)
    ddpm = d.ddpm_sample(m, NoiseSource(5, (3, 1, 8, 8)))
    ddim = d.ddim_sample(m, NoiseSource(5, (3, 1, 8, 8)), steps=30, eta=1.0)
    assert torch.allclose(ddpm, ddim, atol=1e-4)


def test_trajectory_returns_x0_estimates():
    m, _ = _models()
    d = Diffusion("cosine", 8)
    x, frames = d.ddpm_sample(m, NoiseSource(0, (2, 1, 8, 8)), trajectory=True)
    assert [t for t, _ in frames] == list(range(7, -1, -1))
    assert all(f.shape == (2, 1, 8, 8) and f.abs().max() <= 1 for _, f in frames)


def test_generate_from_checkpoint_uses_the_seed(tiny_dm_checkpoint):
    from dstab import checkpoints

    b = checkpoints.load(tiny_dm_checkpoint)
    a = generate(b, 3, seed=1, sampler="ddim", steps=5)
    assert a.shape == (3, 1, 8, 8)
    assert torch.equal(a, generate(b, 3, seed=1, sampler="ddim", steps=5))
    assert not torch.equal(a, generate(b, 3, seed=2, sampler="ddim", steps=5))
