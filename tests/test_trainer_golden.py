"""The zoo was trained with commit 00d57d2's trainer: with today's defaults (uniform timesteps,
constant Adam hyper-parameters) the grown trainer must still train exactly as it did.

Pinned as numbers that hold on any CPU, not as a hash of float weights (which differs between
x86 CPUs whose kernels round differently): the loss of every step, and per network the norm of
its initial weights, the norm of how far training moved them and the sum of the trained weights.
The values come from 00d57d2's trainer (whose weights' sha256 today's trainer reproduced
bit-for-bit on this machine before the hash was retired). RTOL is far above float32 rounding
over five steps and below what a changed recipe does: a learning rate 0.1% off moves the
displacement norms by about 0.1%, which the last test checks fails the comparison.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dstab.training.trainer import TrainConfig, Trainer
from tests.conftest import DIGITS_GAN as TINY_GAN
from tests.conftest import TINY_UNET
from tests.training_helpers import one_thread  # noqa: F401 (a fixture)

RTOL = 1e-4

# per network's parameters: (norm of the initial ones, norm of trained - initial, sum of the trained ones)
GOLDEN_WEIGHTS = {
    "dm": {
        "net": (23.493244179568936, 0.38436870650582555, 337.4789859561788),
        "ema": (23.493244179568936, 0.3380365488524187, 337.0118068085905),
    },
    "gan": {
        "G": (4.87479678666908, 0.023622012293208657, 17.397087916855526),
        "D": (3.646686812466362, 0.022570165100969142, 7.985179501774837),
    },
}
# per step: the DM's (loss, gradient norm); the GAN's (G loss, D loss)
GOLDEN_STEPS = {
    "dm": [
        (0.9310181140899658, 2.12453556060791),
        (1.0142902135849, 2.2104904651641846),
        (0.9789251089096069, 1.8280476331710815),
        (0.9961423873901367, 2.1763288974761963),
        (0.9175878763198853, 2.3422763347625732),
    ],
    "gan": [
        (0.7593023180961609, 1.5090972185134888),
        (0.8132613301277161, 1.4554765224456787),
        (0.8134302496910095, 1.521330714225769),
        (0.7801707983016968, 1.488814115524292),
        (0.7495297789573669, 1.4235789775848389),
    ],
}


def tiny_config(kind: str) -> TrainConfig:
    if kind == "dm":
        return TrainConfig(kind="dm", arch=TINY_UNET, steps=5, batch_size=8, lr=1e-3, seed=1, data_seed=2)
    return TrainConfig(
        kind="gan", arch=TINY_GAN, steps=5, batch_size=8, lr=2e-4, beta1=0.5, ema_rate=None, grad_clip=None, seed=1
    )


def networks(trainer: Trainer) -> dict[str, torch.nn.Module]:
    if trainer.cfg.kind == "dm":
        return {"net": trainer.net, "ema": trainer.ema.module}
    return {"G": trainer.G, "D": trainer.D}


def _floats(module: torch.nn.Module) -> torch.Tensor:
    """The parameters, not the buffers: BatchNorm's running statistics move whatever the learning rate."""
    return torch.cat([p.detach().flatten().double() for p in module.parameters()])


def train_and_measure(config: TrainConfig, out_dir) -> tuple[dict, list]:
    """(per network: init norm, displacement norm, trained sum; per step: the two logged numbers)."""
    trainer = Trainer(config, out_dir)
    before = {role: _floats(m) for role, m in networks(trainer).items()}
    name = "dm_step" if config.kind == "dm" else "gan_step"
    step, rows = getattr(trainer, name), []
    setattr(trainer, name, lambda batch, i: rows.append(step(batch, i)) or rows[-1])
    trainer.run()
    weights = {}
    for role, module in networks(trainer).items():
        after = _floats(module)
        weights[role] = (float(before[role].norm()), float((after - before[role]).norm()), float(after.sum()))
    second = "grad_norm" if config.kind == "dm" else "d_loss"
    return weights, [(r["loss"], r[second]) for r in rows]


def matches(kind: str, weights: dict, steps: list) -> bool:
    same_weights = all(np.allclose(weights[r], GOLDEN_WEIGHTS[kind][r], rtol=RTOL, atol=0) for r in weights)
    return same_weights and np.allclose(steps, GOLDEN_STEPS[kind], rtol=RTOL, atol=0)


@pytest.mark.parametrize("kind", ["dm", "gan"])
@pytest.mark.usefixtures("one_thread")
def test_default_config_trains_as_the_foundation_trainer(kind, tmp_path):
    weights, steps = train_and_measure(tiny_config(kind), tmp_path)
    assert set(weights) == set(GOLDEN_WEIGHTS[kind])
    for role, golden in GOLDEN_WEIGHTS[kind].items():
        np.testing.assert_allclose(weights[role], golden, rtol=RTOL, atol=0, err_msg=role)
    np.testing.assert_allclose(steps, GOLDEN_STEPS[kind], rtol=RTOL, atol=0)


@pytest.mark.parametrize("kind", ["dm", "gan"])
@pytest.mark.usefixtures("one_thread")
def test_a_learning_rate_a_tenth_of_a_percent_off_fails_the_comparison(kind, tmp_path):
    config = tiny_config(kind)
    weights, steps = train_and_measure(dataclasses.replace(config, lr=config.lr * 1.001), tmp_path)
    assert not matches(kind, weights, steps)
    first = 0 if kind == "dm" else 1  # the DM's first loss and the GAN's first D loss precede any update
    assert steps[0][first] == pytest.approx(GOLDEN_STEPS[kind][0][first], rel=RTOL)
