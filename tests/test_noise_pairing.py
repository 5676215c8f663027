"""Immiscible diffusion's noise assignment, and exact resume of runs that use the field's rules (issue 23)."""

from __future__ import annotations

import itertools

import pytest
import torch

from dstab.training.config import TrainConfig
from dstab.training.noise_pairing import immiscible, immiscible_order, squared_distances
from dstab.training.trainer import Trainer
from tests.training_helpers import one_thread, tiny_dm  # noqa: F401 (one_thread is a fixture)


def total_cost(x0, noise, perm) -> float:
    return float(((x0.double() - noise[perm].double()) ** 2).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_assignment_is_a_permutation_no_costlier_than_the_identity_and_optimal(seed):
    gen = torch.Generator().manual_seed(seed)
    x0, noise = torch.rand(6, 1, 2, 2, generator=gen) * 2 - 1, torch.randn(6, 1, 2, 2, generator=gen)
    perm = immiscible_order(x0, noise)
    assert sorted(perm.tolist()) == list(range(6))
    identity = total_cost(x0, noise, torch.arange(6))
    best = min(total_cost(x0, noise, torch.tensor(p)) for p in itertools.permutations(range(6)))
    assert total_cost(x0, noise, perm) <= identity
    assert total_cost(x0, noise, perm) == pytest.approx(best, rel=1e-12)  # the brute-force optimum of 720
    cost = squared_distances(x0, noise)
    assert cost[2, 4].item() == pytest.approx(float(((x0[2].double() - noise[4].double()) ** 2).sum()), rel=1e-12)


def test_assigned_noise_is_the_same_set_of_draws_reordered():
    gen = torch.Generator().manual_seed(3)
    x0, noise = torch.randn(32, 1, 8, 8, generator=gen), torch.randn(32, 1, 8, 8, generator=gen)
    paired = immiscible(x0, noise)
    key = lambda n: sorted(n.flatten(1).sum(dim=1).tolist())  # noqa: E731
    assert key(paired) == key(noise)
    assert total_cost(x0, paired, torch.arange(32)) < total_cost(x0, noise, torch.arange(32))


@pytest.mark.usefixtures("one_thread")
def test_the_trainer_forms_x_t_with_the_assigned_noise(tmp_path, monkeypatch):
    trainer = Trainer(TrainConfig.from_dict(tiny_dm(noise_pairing="immiscible", steps=1)), tmp_path)
    drawn, used = [], []
    real_randn, real_terms = trainer._randn, trainer.diffusion.loss_terms
    monkeypatch.setattr(trainer, "_randn", lambda shape: drawn.append(real_randn(shape)) or drawn[-1])

    def terms(model, x0, t, noise, y=None):
        used.append((x0, noise))
        return real_terms(model, x0, t, noise, y)

    monkeypatch.setattr(trainer.diffusion, "loss_terms", terms)
    trainer.run()
    x0, noise = used[0]
    assert torch.equal(noise, immiscible(x0, drawn[0]))
    assert not torch.equal(noise, drawn[0])


def _params(trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.net.state_dict().items()}


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(
    "over",
    [
        {"timesteps": {"name": "speed"}},
        {"timesteps": {"name": "lognormal", "edm_weight": True}},
        {"timesteps": {"name": "mode"}},
        {"timesteps": {"name": "debias"}},
        {"noise_pairing": "immiscible"},
    ],
)
def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path, over):
    cfg = TrainConfig.from_dict(tiny_dm(steps=6, **over))
    whole = Trainer(cfg, tmp_path / "whole")
    whole.run()
    first = Trainer(cfg, tmp_path / "split")
    result = first.run(should_stop=lambda: first.step >= 3)
    assert result["stopped"] and result["step"] == 3
    second = Trainer(cfg, tmp_path / "split")
    second.load_state_dict(first.state_dict())
    second.run()
    a, b = _params(whole), _params(second)
    assert all(torch.equal(a[k], b[k]) for k in a)
    moved = Trainer(TrainConfig.from_dict(tiny_dm(steps=6)), tmp_path / "plain")
    moved.run()
    assert not all(torch.equal(a[k], v) for k, v in _params(moved).items())  # the rule changed the run
