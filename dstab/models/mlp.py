"""Small MLPs for 2-D toy data: a timestep-conditioned denoiser and a GAN pair."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import is_int, require
from .unet import timestep_embedding

MLP_DEFAULTS = {
    "arch": None,
    "data_dim": 2,
    "hidden": 128,
    "depth": 3,
    "time_dim": 32,  # denoiser only
    "latent_dim": 2,  # generator only
}


MAX_DEPTH = 1024  # a config is built before its size is known: a depth of 1e9 must fail at once


def mlp_config(config: dict) -> dict:
    full = {**MLP_DEFAULTS, **config}
    unknown = set(full) - set(MLP_DEFAULTS)
    require(not unknown, f"unknown MLP options {sorted(unknown)}")
    for key in ("data_dim", "hidden", "depth", "time_dim", "latent_dim"):
        require(is_int(full[key]) and full[key] >= 1, f"MLP option {key} must be a positive integer, got {full[key]!r}")
    require(int(full["depth"]) <= MAX_DEPTH, f"MLP depth {full['depth']} is above {MAX_DEPTH} layers")
    return full


def _mlp(d_in: int, hidden: int, depth: int, d_out: int, act) -> nn.Sequential:
    layers, width = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), act()]
        width = hidden
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


class MLPDenoiser(nn.Module):
    """eps(x_t, t) (or x0) for points in R^d; t enters through a sinusoidal embedding."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = mlp_config(config)
        c = self.config
        self.net = _mlp(c["data_dim"] + c["time_dim"], c["hidden"], c["depth"], c["data_dim"], nn.SiLU)

    def forward(self, x, t, y=None):
        emb = timestep_embedding(t, self.config["time_dim"]).to(x.dtype)
        return self.net(torch.cat([x, emb], dim=1))


class MLPGenerator(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.config = mlp_config(config)
        c = self.config
        self.latent_shape = (c["latent_dim"],)
        self.net = _mlp(c["latent_dim"], c["hidden"], c["depth"], c["data_dim"], nn.ReLU)

    def forward(self, z):
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """Outputs logits (the sigmoid lives in the loss, for numerical stability)."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = mlp_config(config)
        c = self.config
        self.net = _mlp(c["data_dim"], c["hidden"], c["depth"], 1, lambda: nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.net(x).squeeze(1)
