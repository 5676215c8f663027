import pytest
import torch

from dstab import checkpoints, models
from dstab.diffusion import Diffusion

# The suite runs on shared 2-core machines: one intra-op thread keeps it predictable.
torch.set_num_threads(1)

TINY_UNET = {
    "arch": "unet",
    "image_size": 8,
    "in_channels": 1,
    "model_channels": 8,
    "norm_groups": 4,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [4],
}


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every parameter with noise (the UNet zero-initialises its output layers,
    which would make different models look identical)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return module.eval()


@pytest.fixture
def tiny_unet():
    return randomise(models.build(TINY_UNET))


@pytest.fixture
def tiny_dm_checkpoint(tmp_path, tiny_unet):
    diffusion = Diffusion("linear", 25, "eps")
    header = checkpoints.make_header("dm", models.normalise(TINY_UNET), "digits", 7, 3, diffusion=diffusion.to_config())
    path = tmp_path / "tiny.safetensors"
    checkpoints.save(path, header, {"model": tiny_unet})
    return path
