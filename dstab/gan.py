"""GAN losses on discriminator logits, per example.

bce: the discriminator's binary cross-entropy, -log D(x) - log(1 - D(G(z))).
non-saturating: the generator's -log D(G(z)) (Goodfellow et al. 2014, Sec. 3),
written with softplus so that saturated logits stay finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .modelconfig import GENERATOR_LOSSES, check_generator_loss


def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_logits) + F.softplus(fake_logits)


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits)


def g_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """log(1 - D(G(z))), minimised: the original minimax generator loss."""
    return -F.softplus(fake_logits)


G_LOSSES = dict(zip(GENERATOR_LOSSES, (g_loss_nonsaturating, g_loss_saturating)))  # the names: modelconfig


def generator_loss(name: str):
    check_generator_loss(name)
    return G_LOSSES[name]
