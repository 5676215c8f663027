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


@pytest.mark.parametrize(("family", "shape"), [("digits", (2, 1, 8, 8)), ("toy2d", (2, 2))])
def test_trajectory_ends_where_the_library_sampler_ends(app, family, shape):
    at = app(PAGE, data=family, steps="5", n="2", seed="3")
    assert not at.exception, at.exception
    bundle = checkpoints.load(zoo.checkpoint_path(f"{family}/dm-eps-s0"))
    clip = len(shape) == 4  # images only: toy points reach radius ~2
    params = {"sampler": "ddim", "steps": 5, "seed": 3, "n": 2, "clip": clip}
    stored = cache.lookup("trajectory", params, [bundle.sha256])
    assert stored is not None, "the page must store its trajectory in the analysis cache"
    expected = generate(bundle, 2, 3, "ddim", 5)
    np.testing.assert_allclose(stored.arrays["final"], expected.numpy(), atol=1e-6)
    _, frames = bundle.diffusion.sample(bundle.model, NoiseSource(3, shape), "ddim", 5, trajectory=True, clip=clip)
    np.testing.assert_array_equal(stored.arrays["t"], [f[0] for f in frames])
    np.testing.assert_allclose(stored.arrays["x0_hat"], torch.stack([f[1] for f in frames]).numpy(), atol=1e-6)
    assert at.slider(key="diffusion_process.step").max == 4  # one position per sampler step
