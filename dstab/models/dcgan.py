"""DCGAN (Radford et al. 2016) generator and discriminator sized by resolution.

For an image of side R = 4 * 2**k the generator starts from a 4x4 map and
doubles k times; channel widths halve on the way up (ngf * 2**(k-1) ... ngf),
the discriminator mirrors it. At R = 64 this is exactly the network of
pytorch/examples' dcgan/main.py, with the same `main.N` module indices, so
its netG/netD state dicts load as they are. The discriminator returns logits;
the sigmoid (parameter-free in pytorch/examples) is applied by the loss.
"""

from __future__ import annotations

from torch import nn

from ..errors import DstabError, require

DCGAN_DEFAULTS = {
    "arch": None,
    "image_size": 8,
    "channels": 1,
    "nz": 32,
    "ngf": 64,
    "ndf": 64,
    # 3x3 conv + BN + activation blocks at the last hidden resolution, as in
    # the WGAN reference DCGAN; 0 reproduces pytorch/examples exactly
    "extra_layers": 0,
}


def dcgan_config(config: dict) -> dict:
    full = {**DCGAN_DEFAULTS, **config}
    unknown = set(full) - set(DCGAN_DEFAULTS)
    require(not unknown, f"unknown DCGAN options {sorted(unknown)}")
    _doublings(int(full["image_size"]))
    for key in ("channels", "nz", "ngf", "ndf"):
        require(int(full[key]) >= 1, f"DCGAN option {key} must be a positive integer")
    require(0 <= int(full["extra_layers"]) <= 64, "extra_layers must lie in 0..64")
    return full


def _doublings(size: int) -> int:
    k, s = 0, size
    while s > 4 and s % 2 == 0:
        s, k = s // 2, k + 1
    if s != 4 or k < 1:
        raise DstabError(f"DCGAN image_size must be 4 * 2**k with k >= 1 (8, 16, 32, 64, ...), got {size}")
    return k


class DCGANGenerator(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = c = dcgan_config(config)
        k = _doublings(c["image_size"])
        self.latent_shape = (c["nz"], 1, 1)
        width = c["ngf"] * 2 ** (k - 1)
        layers = [nn.ConvTranspose2d(c["nz"], width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(k - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        for _ in range(c["extra_layers"]):
            layers += [nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(width, c["channels"], 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = c = dcgan_config(config)
        k = _doublings(c["image_size"])
        width = c["ndf"]
        layers = [nn.Conv2d(c["channels"], width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for _ in range(c["extra_layers"]):
            layers += [nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True)]
        for _ in range(k - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x).reshape(-1)
