"""Architectures, each built from a JSON-serialisable config dict.

`build(config)` dispatches on `config["arch"]`; every builder validates its
config and raises `DstabError` for impossible ones, so a bad config fails
before any weights are allocated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from torch import nn

from ..errors import DstabError
from .dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_config
from .mlp import MLPDenoiser, MLPDiscriminator, MLPGenerator, mlp_config
from .unet import UNet, unet_config
from .wrapped_diffusers import DiffusersUNet, diffusers_unet_config

# arch name -> (config normaliser, module class)
ARCHITECTURES = {
    "unet": (unet_config, UNet),
    "mlp_denoiser": (mlp_config, MLPDenoiser),
    "dcgan_g": (dcgan_config, DCGANGenerator),
    "dcgan_d": (dcgan_config, DCGANDiscriminator),
    "mlp_g": (mlp_config, MLPGenerator),
    "mlp_d": (mlp_config, MLPDiscriminator),
    "diffusers_unet2d": (diffusers_unet_config, DiffusersUNet),
}
# a checkpoint naming one of these means dstab's own class: no registration may replace it (results are
# cached by the file's sha256, so another class under the same name would be served another's numbers)
BUILTIN = frozenset(ARCHITECTURES)


def normalise(config: dict) -> dict:
    """The complete config (defaults filled in), validated."""
    arch = config.get("arch")
    if arch not in ARCHITECTURES:
        from ..plugins import load_plugins  # custom architectures (entry points, DSTAB_PLUGINS)

        load_plugins(register_architecture)
    if arch not in ARCHITECTURES:
        raise DstabError(
            f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)} or register yours "
            "(dstab.register_architecture, README 'Your own architecture')"
        )
    fill, _ = ARCHITECTURES[arch]
    return fill(copy.deepcopy(config))


def _keep_config(config: dict) -> dict:
    return config


def register_architecture(name: str, cls: type[nn.Module], config: Callable[[dict], dict] | None = None) -> None:
    """Make `{"arch": name, ...}` configs build `cls(config)` (see dstab.plugins); `config(dict) -> dict`
    may fill in defaults and validate (raising DstabError). Re-registering a name of yours replaces it;
    a built-in name (`BUILTIN`) is refused."""
    if not isinstance(name, str) or not name:
        raise DstabError(f"an architecture name must be a non-empty string, got {name!r}")
    if name in BUILTIN:
        raise DstabError(f"architecture name {name!r} is one of dstab's own; register yours under another name")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise DstabError(f"architecture {name!r}: {cls!r} is not a torch.nn.Module subclass")
    ARCHITECTURES[name] = (config or _keep_config, cls)


def build(config: dict) -> nn.Module:
    full = normalise(config)
    _, cls = ARCHITECTURES[full["arch"]]
    return cls(full)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
