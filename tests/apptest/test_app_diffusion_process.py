"""The diffusion-process page against the library: same schedule, same noising, same sampler."""

import numpy as np
import pytest
import torch

from dstab import cache, checkpoints, zoo
from dstab.diffusion import NoiseSource
from dstab.sampling import generate

PAGE = "pages/diffusion_process.py"


def test_renders_on_zoo_defaults(app):
    at = app(PAGE)
    assert not at.exception, at.exception
    assert not at.error
    # big x_t + forward strip, sample 1's x0 strip; schedule, reverse steps (x_t, eps, x0) and trajectory charts
    assert len(at.get("image")) == 3
    assert len(at.get("plotly_chart")) == 3


def test_numbers_equal_library(app):
    at = app(PAGE, t="500", example="3", noise="7")
    assert not at.exception, at.exception
    bundle = checkpoints.load(zoo.checkpoint_path("digits/dm-eps-s0"))
    abar = float(bundle.diffusion.alphas_cumprod[500])
    text = " ".join(m.value for m in at.markdown)
    assert f"SNR = {abar / (1 - abar):.4g}" in text
    assert f"sqrt(abar) = {abar**0.5:.4f}" in text


@pytest.mark.parametrize(("family", "shape"), [("digits", (2, 1, 8, 8)), ("toy2d", (2, 2))])
def test_trajectory_ends_where_the_library_sampler_ends(app, family, shape):
    at = app(PAGE, data=family, steps="5", n="2", seed="3")
    assert not at.exception, at.exception
    bundle = checkpoints.load(zoo.checkpoint_path(f"{family}/dm-eps-s0"))
    clip = len(shape) == 4  # images only: toy points reach radius ~2
    params = {"sampler": "ddim", "steps": 5, "seed": 3, "n": 2, "clip": clip, "frames": ["x_t", "x0_hat", "eps_hat"]}
    stored = cache.lookup("trajectory", params, [bundle.sha256])
    assert stored is not None, "the page must store its trajectory in the analysis cache"
    expected = generate(bundle, 2, 3, "ddim", 5)
    np.testing.assert_allclose(stored.arrays["final"], expected.numpy(), atol=1e-6)
    _, frames = bundle.diffusion.sample(bundle.model, NoiseSource(3, shape), "ddim", 5, trajectory=True, clip=clip)
    np.testing.assert_array_equal(stored.arrays["t"], [f[0] for f in frames])
    np.testing.assert_allclose(stored.arrays["x0_hat"], torch.stack([f[1] for f in frames]).numpy(), atol=1e-6)
    step = at.slider(key="diffusion_process.step")
    assert (step.min, step.max, step.value) == (1, 5, 5)  # one position per sampler step, counted from 1
    captions = " ".join(c.value for c in at.caption)
    assert f"Step 5 of 5: the model sees x_t at t = {frames[4][0]}," in captions
    # x_t: the sampler's own inputs, from x_T of the seed; eps: what the x0 estimate implies
    x_t = stored.arrays["x_t"]
    np.testing.assert_allclose(x_t[0], NoiseSource(3, shape).x_T().numpy(), atol=1e-6)
    abar = bundle.diffusion.alphas_cumprod.numpy()[stored.arrays["t"]].reshape(-1, *[1] * len(shape))
    np.testing.assert_allclose(
        np.sqrt(abar) * stored.arrays["x0_hat"] + np.sqrt(1 - abar) * stored.arrays["eps_hat"], x_t, atol=1e-5
    )
    if not clip:  # an eps-DM's predicted noise is its own output
        t0 = torch.full((2,), int(frames[0][0]), dtype=torch.long)
        with torch.no_grad():
            eps0 = bundle.model(torch.from_numpy(x_t[0]), t0).numpy()
        np.testing.assert_allclose(stored.arrays["eps_hat"][0], eps0, atol=1e-4)


def test_forward_rows_share_one_noise_draw():
    # seen in Chromium: the big x_t at t = 250 and the strip's t = 250 were two different pictures (a noise
    # draw per row); Eq. 4 with one eps makes every row the same data and the same noise, mixed by abar_t
    from dstab.analysis.trajectory import forward_noised

    bundle = checkpoints.load(zoo.checkpoint_path("digits/dm-eps-s0"))
    d = bundle.diffusion
    x0 = torch.linspace(-1, 1, 64).reshape(1, 8, 8)
    rows = forward_noised(d, x0, [0, 250, 999, 250], noise_seed=7)
    assert rows.shape == (4, 1, 8, 8)
    torch.testing.assert_close(rows[1], rows[3], rtol=0, atol=0)
    eps = NoiseSource(7, (1, 1, 8, 8)).x_T()[0]
    for i, t in enumerate([0, 250, 999]):
        abar = float(d.alphas_cumprod[t])
        torch.testing.assert_close(rows[i], abar**0.5 * x0 + (1 - abar) ** 0.5 * eps, rtol=1e-5, atol=1e-6)
