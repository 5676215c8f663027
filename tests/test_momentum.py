"""MD / LRC schedules: golden values, the floor, and dstab's Adam bias-correction choice."""

from __future__ import annotations

import pytest
import torch

from dstab.errors import DstabError
from dstab.training.momentum import (
    ConstantSchedule,
    MomentumDecaySchedule,
    apply,
    compensated_lr,
    demon_beta,
    make_schedule,
)


@pytest.mark.parametrize("tau,beta", [(0.0, 0.8), (0.5, 2 / 3), (1.0, 0.0), (5 / 6, 0.4)])
def test_demon_beta_golden(tau, beta):
    assert demon_beta(0.8, tau) == pytest.approx(beta, abs=1e-12)


@pytest.mark.parametrize(
    "it,beta1,lr",
    [
        (0, 0.8, 1e-3),  # tau 0
        (500, 2 / 3, 0.6e-3),  # tau 0.5: l0 * 0.2 / (1/3)
        (1000, 0.4, 1e-3 / 3),  # tau 1: floored at 0.4, l0 / 3
        (900, 0.4, 1e-3 / 3),  # past the floor (tau 5/6)
    ],
)
def test_md_lrc_schedule_golden(it, beta1, lr):
    s = MomentumDecaySchedule("md-lrc", lr=1e-3, beta1=0.8)
    h = s.at(it, 1000)
    assert h["betas"][0] == pytest.approx(beta1, abs=1e-12)
    assert h["lr"] == pytest.approx(lr, rel=1e-12)
    assert h["betas"][1] == 0.999


def test_floor_is_reached_at_tau_five_sixths():
    s = MomentumDecaySchedule("md", lr=1e-3, beta1=0.8)
    assert s.at(833, 1000)["betas"][0] > 0.4
    assert s.at(834, 1000)["betas"][0] == 0.4
    assert compensated_lr(1.0, 0.8, 0.4) == pytest.approx(1 / 3)


def test_md_keeps_lr_and_lrc_control_keeps_beta1():
    md = MomentumDecaySchedule("md", lr=1e-3, beta1=0.8).at(500, 1000)
    assert md["lr"] == 1e-3 and md["betas"][0] == pytest.approx(2 / 3)
    lrc = MomentumDecaySchedule("lrc", lr=1e-3, beta1=0.8).at(500, 1000)
    assert lrc["betas"][0] == 0.8 and lrc["lr"] == pytest.approx(0.6e-3)


def test_schedule_is_written_into_every_param_group():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([{"params": [a]}, {"params": [b]}], lr=1.0)
    apply(opt, make_schedule({"name": "md-lrc"}, 1e-3, 0.8, 0.999).at(500, 1000))
    assert [g["betas"][0] for g in opt.param_groups] == pytest.approx([2 / 3, 2 / 3])
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.6e-3, 0.6e-3])


def test_torch_adam_bias_correction_uses_the_current_beta1():
    """The behaviour dstab relies on: after beta1 changes, Adam divides by 1 - beta1_now ** k."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.8, 0.999), eps=0.0)
    grads = [1.0, 2.0]
    m = v = 0.0
    for k, (g, b1) in enumerate(zip(grads, (0.8, 0.5)), start=1):
        apply(opt, {"lr": 0.1, "betas": (b1, 0.999)})
        p.grad = torch.tensor([g], dtype=torch.float64)
        before = p.item()
        opt.step()
        m = b1 * m + (1 - b1) * g
        v = 0.999 * v + 0.001 * g * g
        want = before - 0.1 * (m / (1 - b1**k)) / ((v / (1 - 0.999**k)) ** 0.5)
        assert p.item() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("total", [1000, 5000])
def test_current_beta_bias_correction_matches_exact_product_for_real_runs(total):
    """Documented choice: torch's 1 - beta1_k ** k and the exact 1 - prod beta1_k differ by at most
    ~1.1 / total (relative, in the first ~10 iterations) and by < 1e-9 after 100 iterations."""
    s = MomentumDecaySchedule("md", lr=1.0, beta1=0.8)
    prod, early, late = 1.0, 0.0, 0.0
    for k in range(1, total + 1):
        b = s.at(k - 1, total)["betas"][0]
        prod *= b
        rel = abs((1 - b**k) - (1 - prod)) / (1 - prod)
        if k <= 100:
            early = max(early, rel)
        else:
            late = max(late, rel)
    assert 0.5 / total < early < 1.2 / total
    assert late < 1e-9


@pytest.mark.parametrize(
    "opts,lr,beta1,match",
    [
        ({"name": "md", "floor": 0.8}, 1e-3, 0.8, "floor"),
        ({"name": "md-lrc", "floor": 0.9}, 1e-3, 0.8, "floor"),
        ({"name": "nope"}, 1e-3, 0.8, "unknown momentum schedule"),
        ({"name": "constant", "floor": 0.1}, 1e-3, 0.8, "unknown options"),
    ],
)
def test_bad_schedules_are_refused(opts, lr, beta1, match):
    with pytest.raises(DstabError, match=match):
        make_schedule(opts, lr, beta1, 0.999)


def test_constant_schedule_is_constant():
    c = ConstantSchedule(2e-4, 0.9)
    assert c.at(0, 10) == c.at(9, 10) == {"lr": 2e-4, "betas": (0.9, 0.999)}
