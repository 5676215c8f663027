"""Draw samples from any bundle with an explicit noise source."""

from __future__ import annotations

import torch
from torch.func import functional_call

from . import budgets, models, sizing
from .checkpoints import Bundle
from .diffusion import NoiseSource
from .errors import DstabError, require


def sample_shape(bundle: Bundle) -> tuple[int, ...]:
    """Shape of one sample (C, H, W) or (d,), from the architecture config."""
    return arch_sample_shape(bundle.header["arch"] if bundle.kind == "dm" else bundle.header["arch"]["generator"])


def arch_sample_shape(arch: dict) -> tuple[int, ...]:
    """Shape of one sample (C, H, W) or (d,) of the network `arch` describes: a DM's model or a GAN's
    generator (what the trainer checks its dataset against, and samplers draw)."""
    a = models.normalise(arch)
    if "sample_shape" in a:  # a registered architecture of one's own says it
        return tuple(int(s) for s in a["sample_shape"])
    if a["arch"] in ("unet", "diffusers_unet2d"):
        return (a["in_channels"], a["image_size"], a["image_size"])
    if a["arch"].startswith("dcgan"):
        return (a["channels"], a["image_size"], a["image_size"])
    return (a["data_dim"],)


BATCHNORM_MODES = ("eval", "batch")


@torch.no_grad()
def generate(
    bundle: Bundle,
    n: int,
    seed: int,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
    device="cpu",
    batchnorm: str = "eval",
    progress=None,
) -> torch.Tensor:
    """n samples on the CPU. DMs: x_T and per-step noise from NoiseSource(seed), the variance and
    x0 clipping of the bundle's Diffusion (as its source samples it); GANs: z from the same source,
    so models of one group share their noise. `batchnorm` (GANs): "eval" normalises with the running
    statistics; "batch" with the statistics of the n samples drawn together, as pytorch/examples'
    dcgan/main.py draws its PNGs (it never calls netG.eval()); the running statistics stay unchanged.
    `progress("sample", done, total)` after each sampler step (a GAN: once)."""
    require(n >= 1, f"the number of samples must be positive, got {n}")
    require(batchnorm in BATCHNORM_MODES, f"batchnorm must be one of {list(BATCHNORM_MODES)}, got {batchnorm!r}")
    n = budgets.check_count(n, "DSTAB_MAX_SAMPLES", "the number of samples")
    shape = sample_shape(bundle)
    arch = bundle.header["arch"] if bundle.kind == "dm" else bundle.header["arch"]["generator"]
    if bundle.kind == "dm":
        inputs = [(shape, "float32"), ((), "int64")]
    else:
        inputs = [(tuple(bundle.generator.latent_shape), "float32")]
    # no graph is kept while sampling: a forward holds a fraction of what autograd would keep
    sizing.check_forward(arch, inputs, n, f"sampling {n} images from {bundle.name}", copies=0.5)
    noise = NoiseSource(seed, (n, *shape))
    if bundle.kind == "dm":
        model = bundle.model.to(device).eval()
        classes = bundle.header["arch"].get("num_classes")
        y = {"y": noise.labels(classes).to(device)} if classes else {}
        kw = {"progress": progress, **y}
        x = bundle.diffusion.sample(model, noise, sampler=sampler, steps=steps, eta=eta, device=device, **kw)
        return finite_samples(x.cpu(), bundle.name)
    g = bundle.generator.to(device).eval()
    z = noise.latent(g.latent_shape).to(device)
    if batchnorm == "eval":
        x = g(z)
    else:  # train-mode BatchNorm on copies of the buffers: batch statistics, running statistics untouched
        state = {k: v.clone() for k, v in g.named_buffers()}
        g.train()
        try:
            x = functional_call(g, {**dict(g.named_parameters()), **state}, (z,))
        finally:
            g.eval()
    if progress:
        progress("sample", 1, 1)
    return finite_samples(x.cpu(), bundle.name)


def finite_samples(x: torch.Tensor, name: str) -> torch.Tensor:
    """Samples holding NaN or inf mean NaN/inf weights or a diverged model: refused, not drawn black."""
    if not bool(torch.isfinite(x).all()):
        raise DstabError(f"{name}: its samples hold NaN or inf values; the checkpoint is damaged or diverged")
    return x
