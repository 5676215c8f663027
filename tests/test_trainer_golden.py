"""The zoo was trained with commit 00d57d2's trainer: with today's defaults
(uniform timesteps, constant Adam hyper-parameters) the grown trainer must
still produce bit-identical weights. The sha256 values were computed with
00d57d2's trainer before any change, on one CPU thread."""

from __future__ import annotations

import pytest
import torch

from dstab.checkpoints import weights_sha256
from dstab.training.trainer import TrainConfig, Trainer
from tests.conftest import DIGITS_GAN as TINY_GAN
from tests.conftest import TINY_UNET
from tests.training_helpers import one_thread  # noqa: F401 (a fixture)

GOLDEN = {
    "dm": "c7209004641c50e93c5cf98f65218a79a533df01b2e9d167bbf17df75f9a392d",
    "gan": "5131efc921daa55e98102801c1262fc7d2126f421b243d77b36e6e70ccb5e0e4",
}


def tiny_config(kind: str) -> TrainConfig:
    if kind == "dm":
        return TrainConfig(kind="dm", arch=TINY_UNET, steps=5, batch_size=8, lr=1e-3, seed=1, data_seed=2)
    return TrainConfig(
        kind="gan", arch=TINY_GAN, steps=5, batch_size=8, lr=2e-4, beta1=0.5, ema_rate=None, grad_clip=None, seed=1
    )


def trained_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    if trainer.cfg.kind == "dm":
        mods = {"net": trainer.net, "ema": trainer.ema.module}
    else:
        mods = {"G": trainer.G, "D": trainer.D}
    return {f"{role}.{k}": v for role, m in mods.items() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("kind", ["dm", "gan"])
@pytest.mark.usefixtures("one_thread")
def test_default_config_weights_match_foundation_trainer(kind, tmp_path):
    trainer = Trainer(tiny_config(kind), tmp_path)
    trainer.run()
    assert weights_sha256(trained_state(trainer)) == GOLDEN[kind]
