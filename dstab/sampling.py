"""Draw samples from any bundle with an explicit noise source."""

from __future__ import annotations

import torch

from . import models
from .checkpoints import Bundle
from .diffusion import NoiseSource
from .errors import require


def sample_shape(bundle: Bundle) -> tuple[int, ...]:
    """Shape of one sample (C, H, W) or (d,), from the architecture config."""
    arch = bundle.header["arch"] if bundle.kind == "dm" else bundle.header["arch"]["generator"]
    a = models.normalise(arch)
    if a["arch"] in ("unet", "diffusers_unet2d"):
        return (a["in_channels"], a["image_size"], a["image_size"])
    if a["arch"].startswith("dcgan"):
        return (a["channels"], a["image_size"], a["image_size"])
    return (a["data_dim"],)


def clips_x0(shape) -> bool:
    """Whether samplers clip x0 estimates to [-1, 1]: only for images (C, H, W), which live there;
    2-D toy points reach radius ~2 and would be squashed onto a square. The one rule for
    every sampler call (sampling here, the trainer's evaluator in analysis/fid.py)."""
    return len(shape) == 3


@torch.no_grad()
def generate(
    bundle: Bundle, n: int, seed: int, sampler: str = "ddpm", steps: int | None = None, eta: float = 0.0, device="cpu"
) -> torch.Tensor:
    """n samples on the CPU. DMs: x_T and per-step noise from NoiseSource(seed);
    GANs: z from the same source, so models of one group share their noise."""
    require(n >= 1, f"the number of samples must be positive, got {n}")
    shape = sample_shape(bundle)
    noise = NoiseSource(seed, (n, *shape))
    if bundle.kind == "dm":
        model = bundle.model.to(device).eval()
        clip = clips_x0(shape)
        classes = bundle.header["arch"].get("num_classes")
        y = {"y": noise.labels(classes).to(device)} if classes else {}
        return bundle.diffusion.sample(
            model, noise, sampler=sampler, steps=steps, eta=eta, device=device, clip=clip, **y
        ).cpu()
    g = bundle.generator.to(device).eval()
    return g(noise.latent(g.latent_shape).to(device)).cpu()
