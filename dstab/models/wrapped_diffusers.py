"""diffusers' UNet2DModel behind dstab's model interface.

diffusers is imported only when such a model is built, so dstab works
without it until a diffusers checkpoint is loaded. The wrapper's forward is
`forward(x, t, y=None) -> tensor`, like dstab's UNet, so probes and samplers
need not know where a model came from. Its state dict is the UNet2DModel's
under the prefix `unet.`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..errors import DstabError, require


def diffusers_unet_config(config: dict) -> dict:
    unet2d = config.get("unet2d")
    require(isinstance(unet2d, dict), "a diffusers_unet2d config needs 'unet2d': the UNet2DModel config.json")
    unet2d = {k: v for k, v in unet2d.items() if not k.startswith("_")}  # _class_name, _diffusers_version
    size = unet2d.get("sample_size")
    if isinstance(size, (list, tuple)):
        require(len(set(size)) == 1, f"only square images are supported, sample_size is {size}")
        size = size[0]
    require(isinstance(size, int) and size > 0, "the UNet2DModel config needs an integer sample_size")
    return {
        "arch": "diffusers_unet2d",
        "image_size": size,
        "in_channels": int(unet2d.get("in_channels", 3)),
        "unet2d": unet2d,
    }


def unet2d_class():
    try:
        from diffusers import UNet2DModel
    except ImportError:
        raise DstabError("this checkpoint is a diffusers UNet2DModel: pip install diffusers") from None
    return UNet2DModel


class DiffusersUNet(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = diffusers_unet_config(config)
        try:
            self.unet = unet2d_class().from_config(self.config["unet2d"])
        except (TypeError, ValueError, KeyError) as exc:
            raise DstabError(f"diffusers cannot build a UNet2DModel from this config.json: {exc}") from None

    def forward(self, x, t, y=None):
        if not torch.is_grad_enabled():
            return self.unet(x, t, class_labels=y).sample
        # a Hessian-vector product differentiates the backward pass of attention; only the composite
        # (math) kernel has that derivative, the fused CPU kernel raises ("derivative for
        # _scaled_dot_product_flash_attention_for_cpu_backward is not implemented")
        with sdpa_kernel(SDPBackend.MATH):
            return self.unet(x, t, class_labels=y).sample
