"""dstab's UNet against improved-/guided-diffusion's UNetModel.

Golden numbers were produced once by running OpenAI's own `UNetModel`
(improved-diffusion 1e0aa1c / guided-diffusion 22e0df8) with every tensor of the
state dict filled by `fill_deterministic` (tests/conftest.py), which depends only on key
names and shapes; dstab's UNet has the same names, so it must give the same
outputs to float32 rounding.
"""

import hashlib

import pytest
import torch

from dstab import models
from tests.conftest import fill_deterministic


def layout_digest(module) -> str:
    return hashlib.sha256(
        "\n".join(f"{k}:{tuple(v.shape)}" for k, v in module.state_dict().items()).encode()
    ).hexdigest()


def outputs(config, y=None, channels=1):
    model = fill_deterministic(models.build(config))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, channels, 8, 8, generator=gen)
    with torch.no_grad():
        return model, model(x, torch.tensor([3, 700]), y)


def test_default_layout_and_outputs_unchanged():
    # the zoo's checkpoints were written with this layout: names, shapes and outputs must not drift
    model, out = outputs({"arch": "unet"})
    assert len(model.state_dict()) == 128
    assert layout_digest(model) == "6d89dc008ccdfbdca5390f8498c8b9998218c8cf57c4147213fa07e982f09860"
    # tolerances cover float32 summation order, which depends on the thread count
    assert out.sum().item() == pytest.approx(0.5115974545478821, abs=2e-5)
    assert out.abs().sum().item() == pytest.approx(62.546485900878906, rel=1e-6)
    assert out[0, 0, 0, :3].tolist() == pytest.approx(
        [0.08824412524700165, -0.05219877511262894, 0.4024966359138489], abs=1e-6
    )


def test_default_matches_improved_diffusion_network():
    # improved-diffusion UNetModel(in 1, mc 32, out 1, res 1, attention ds {2}, mult (1, 2), heads 1, scale-shift)
    _, out = outputs({"arch": "unet"})
    assert out.sum().item() == pytest.approx(0.5115882754325867, abs=1e-4)
    assert out.abs().sum().item() == pytest.approx(62.546478271484375, abs=1e-4)
    assert out[0, 0, 0, :3].tolist() == pytest.approx(
        [0.08824443817138672, -0.0521988645195961, 0.4024962484836578], abs=1e-5
    )


def test_guided_options_match_guided_diffusion_network():
    # guided-diffusion UNetModel(image 8, in 3, mc 32, out 6, res 1, attention ds {1, 2}, mult (1, 2),
    # 10 classes, num_head_channels 16, new attention order, resblock_updown, scale-shift)
    config = {
        "arch": "unet",
        "image_size": 8,
        "in_channels": 3,
        "model_channels": 32,
        "num_res_blocks": 1,
        "attention_resolutions": [8, 4],
        "channel_mult": [1, 2],
        "num_classes": 10,
        "num_head_channels": 16,
        "use_new_attention_order": True,
        "resblock_updown": True,
        "learn_sigma": True,
    }
    model, out = outputs(config, y=torch.tensor([3, 7]), channels=3)
    assert len(model.state_dict()) == 163
    assert out.shape == (2, 6, 8, 8)
    assert out.sum().item() == pytest.approx(-7.45151948928833, abs=1e-4)
    assert out.abs().sum().item() == pytest.approx(356.8378601074219, abs=1e-3)
    assert out[0, 0, 0, :3].tolist() == pytest.approx(
        [0.16767820715904236, 0.9402703046798706, 0.11184899508953094], abs=1e-5
    )


def test_wide_stem_and_decoder_heads_match_guided_diffusion_network():
    # guided-diffusion UNetModel(image 8, in 3, mc 32, out 3, res 2, attention ds {2}, mult (2, 2),
    # heads 2, heads_upsample 4, no scale-shift, resblock_updown): the stem has mult[0] * mc channels
    config = {
        "arch": "unet",
        "image_size": 8,
        "in_channels": 3,
        "model_channels": 32,
        "num_res_blocks": 2,
        "attention_resolutions": [4],
        "channel_mult": [2, 2],
        "num_heads": 2,
        "num_heads_upsample": 4,
        "use_scale_shift_norm": False,
        "resblock_updown": True,
    }
    model, out = outputs(config, channels=3)
    assert len(model.state_dict()) == 198
    assert model.input_blocks[0][0].weight.shape == (64, 3, 3, 3)
    assert out.sum().item() == pytest.approx(15.768197059631348, abs=1e-4)
    assert out.abs().sum().item() == pytest.approx(167.50094604492188, abs=1e-3)


@pytest.mark.parametrize(
    "preset, params, entries",
    [("improved-diffusion-cifar10", 52_546_438, 446), ("guided-diffusion-imagenet128", 421_529_606, 493)],
)
def test_published_sizes(preset, params, entries):
    # counted on the meta device: no memory for 421M parameters
    from dstab.importers.openai import PRESETS, arch_from_flags

    with torch.device("meta"):
        model = models.build(arch_from_flags(PRESETS[preset]))
    assert models.count_parameters(model) == params
    assert len(model.state_dict()) == entries


def test_heads_that_do_not_divide_are_refused():
    with pytest.raises(ValueError, match="num_head_channels=24"):
        models.build({"arch": "unet", "num_head_channels": 24})
