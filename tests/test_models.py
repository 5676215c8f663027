import pytest
import torch

from dstab import models
from dstab.errors import DstabError
from tests.conftest import TINY_UNET, randomise

# improved-diffusion's published CIFAR-10 model (cifar10_uncond_50M_500K): flags from its README
ID_CIFAR10 = {
    "arch": "unet",
    "image_size": 32,
    "in_channels": 3,
    "model_channels": 128,
    "num_res_blocks": 3,
    "attention_resolutions": [16, 8],
    "channel_mult": [1, 2, 2, 2],
    "dropout": 0.3,
    "num_heads": 4,
    "learn_sigma": True,
}


def test_unet_matches_improved_diffusion_cifar10_layout():
    m = models.build(ID_CIFAR10)
    sd = m.state_dict()
    assert models.count_parameters(m) == 52_546_438
    assert len(sd) == 446
    assert sd["input_blocks.0.0.weight"].shape == (128, 3, 3, 3)
    assert sd["out.2.weight"].shape == (6, 128, 3, 3)  # learned sigma doubles the output
    assert sd["middle_block.1.qkv.weight"].shape == (768, 256, 1)
    assert "input_blocks.1.0.emb_layers.1.weight" in sd and "output_blocks.11.0.skip_connection.weight" in sd


@pytest.mark.parametrize(
    "size,nc,nz,ngf,ndf,g_params,d_params",
    [
        (64, 3, 100, 64, 64, 3_576_704, 2_765_568),  # pytorch/examples dcgan defaults
        (32, 3, 100, 64, 64, None, None),
        (8, 1, 32, 16, 16, None, None),
    ],
)
def test_dcgan_sizes(size, nc, nz, ngf, ndf, g_params, d_params):
    g = models.build({"arch": "dcgan_g", "image_size": size, "channels": nc, "nz": nz, "ngf": ngf})
    d = models.build({"arch": "dcgan_d", "image_size": size, "channels": nc, "ndf": ndf})
    x = g(torch.randn(2, nz))
    assert x.shape == (2, nc, size, size) and x.abs().max() <= 1
    assert d(x).shape == (2,)
    if g_params:
        assert models.count_parameters(g) == g_params and models.count_parameters(d) == d_params
        assert [k for k in g.state_dict() if k.endswith("weight")][:2] == ["main.0.weight", "main.1.weight"]
        assert "main.11.weight" in d.state_dict() and "main.12.weight" not in d.state_dict()


def test_unet_output_shape_and_eps_x0_forward(tiny_unet):
    x = torch.randn(3, 1, 8, 8)
    assert tiny_unet(x, torch.tensor([0, 5, 999])).shape == x.shape


def test_mlp_models():
    den = randomise(models.build({"arch": "mlp_denoiser"}))
    assert den(torch.randn(5, 2), torch.arange(5)).shape == (5, 2)
    g, d = models.build({"arch": "mlp_g", "latent_dim": 3}), models.build({"arch": "mlp_d"})
    assert g.latent_shape == (3,) and g(torch.randn(4, 3)).shape == (4, 2) and d(torch.randn(4, 2)).shape == (4,)


def test_build_is_deterministic_under_a_seed():
    torch.manual_seed(5)
    a = models.build(TINY_UNET)
    torch.manual_seed(5)
    b = models.build(TINY_UNET)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    "config,message",
    [
        ({"arch": "transformer"}, "unknown architecture 'transformer'"),
        ({**TINY_UNET, "image_size": 6, "channel_mult": [1, 2, 2]}, "cannot be halved 2 times"),
        ({**TINY_UNET, "norm_groups": 3}, "not divisible by norm_groups=3"),
        ({**TINY_UNET, "channels": 3}, r"unknown UNet options \['channels'\]"),
        ({"arch": "dcgan_g", "image_size": 12}, "4 \\* 2\\*\\*k"),
        ({"arch": "mlp_g", "hidden": 0}, "hidden must be a positive integer"),
    ],
)
def test_impossible_configs_are_refused(config, message):
    with pytest.raises(DstabError, match=message):
        models.build(config)
