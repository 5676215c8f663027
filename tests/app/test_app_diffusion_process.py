"""The diffusion-process page against the library: same schedule, same noising, same sampler."""

import numpy as np
import torch

from dstab import checkpoints, data, zoo
from dstab.diffusion import NoiseSource

PAGE = "pages/diffusion_process.py"


def test_renders_on_zoo_defaults(app):
    at = app(PAGE)
    assert not at.exception, at.exception
    assert not at.error
    # big x_t + forward strip, x0 estimate + its strip; schedule and trajectory charts
    assert len(at.get("image")) == 4
    assert len(at.get("plotly_chart")) == 2


def test_numbers_equal_library(app):
    at = app(PAGE, t="500", example="3", noise="7")
    assert not at.exception, at.exception
    bundle = checkpoints.load(zoo.checkpoint_path("digits/dm-eps-s0"))
    abar = float(bundle.diffusion.alphas_cumprod[500])
    text = " ".join(m.value for m in at.markdown)
    assert f"SNR = {abar / (1 - abar):.4g}" in text
    assert f"sqrt(abar) = {abar**0.5:.4f}" in text


def test_trajectory_matches_sampler(app, dash_env):
    at = app(PAGE, steps="5", n="2", seed="3")
    assert not at.exception, at.exception
    from dstab import cache

    bundle = checkpoints.load(zoo.checkpoint_path("digits/dm-eps-s0"))
    params = {"sampler": "ddim", "steps": 5, "seed": 3, "n": 2, "clip": True}
    stored = cache.lookup("trajectory", params, [bundle.sha256])
    assert stored is not None, "the page must store its trajectory in the analysis cache"
    noise = NoiseSource(3, (2, 1, 8, 8))
    final, frames = bundle.diffusion.sample(bundle.model, noise, sampler="ddim", steps=5, trajectory=True)
    np.testing.assert_allclose(stored.arrays["final"], final.numpy(), atol=1e-6)
    np.testing.assert_array_equal(stored.arrays["t"], [f[0] for f in frames])
    assert at.slider[-1].max == 4  # one position per sampler step
    assert data.load("digits").data.shape[0] == 1797
    assert torch.is_tensor(final)
