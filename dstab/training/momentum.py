"""Optimiser schedules as pure functions of the iteration (nanoGPT style).

Each schedule maps (it, total) to the Adam hyper-parameters for iteration
`it` (0-based); the trainer writes them into every param_group before
`optimizer.step()`.

MD (paper Sec. 4.3, Eq. 9, after Demon, Chen et al. 2022) decays Adam's beta1
    beta_t = beta0 (1 - tau) / ((1 - beta0) + beta0 (1 - tau)),  tau = it / total,
floored at `floor` (paper: 0.4). LRC (Eq. 10) compensates the learning rate
    l_t = l0 (1 - beta0) / (1 - beta_t),
so the current gradient keeps the weight it had at beta0. Note that LRC
*lowers* l_t as beta1 decays (to l0/3 at the 0.4 floor from beta0 = 0.8):
the `lrc` control applies that same l_t with beta1 held at beta0, separating
MDLRC's momentum effect from plain learning-rate decay.

Adam's bias correction. torch.optim.Adam divides m_t by 1 - beta1^k with the
*current* beta1, while the exact correction for a varying beta1 is
1 - prod_k beta1_k. dstab keeps torch's Adam (fused/foreach kernels, DDP):
the two differ only while beta1^k is not negligible, i.e. in the first ~10
iterations, when tau ~ 0 and beta1 ~ beta0; the relative difference is at
most ~1.1 / total there and below 1e-9 after 100 iterations
(tests/test_momentum.py checks both claims).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import paper
from ..errors import DstabError, require

SCHEDULES = ("constant", "md", "md-lrc", "lrc")


BETA1_FLOOR = paper.FLOOR  # MD never lets beta1 fall below this (paper Sec. 4.3)


def demon_beta(beta0: float, tau: float) -> float:
    """Demon's decayed beta1 at training progress tau in [0, 1] (paper Eq. 9)."""
    rest = beta0 * (1.0 - tau)
    return rest / ((1.0 - beta0) + rest)


def compensated_lr(lr0: float, beta0: float, beta_t: float) -> float:
    """LRC (paper Eq. 10): l_t = l0 (1 - beta0) / (1 - beta_t)."""
    return lr0 * (1.0 - beta0) / (1.0 - beta_t)


@dataclass(frozen=True)
class ConstantSchedule:
    lr: float
    beta1: float
    beta2: float = 0.999

    def at(self, it: int, total: int) -> dict:
        return {"lr": self.lr, "betas": (self.beta1, self.beta2)}


@dataclass(frozen=True)
class MomentumDecaySchedule:
    """md: decayed beta1, constant lr; md-lrc: decayed beta1, compensated lr;
    lrc: beta1 held at beta0, the compensated lr of md-lrc (control)."""

    name: str
    lr: float
    beta1: float
    beta2: float = 0.999
    floor: float = BETA1_FLOOR

    def __post_init__(self):
        require(self.name in ("md", "md-lrc", "lrc"), f"unknown momentum schedule {self.name!r}")
        require(0 <= self.floor < self.beta1, f"beta1 floor {self.floor} must lie in [0, beta1={self.beta1})")

    def decayed_beta1(self, it: int, total: int) -> float:
        tau = min(1.0, max(0.0, it / total))
        return max(self.floor, demon_beta(self.beta1, tau))

    def at(self, it: int, total: int) -> dict:
        beta_t = self.decayed_beta1(it, total)
        lr = self.lr if self.name == "md" else compensated_lr(self.lr, self.beta1, beta_t)
        beta1 = self.beta1 if self.name == "lrc" else beta_t
        return {"lr": lr, "betas": (beta1, self.beta2)}


def make_schedule(options: dict, lr: float, beta1: float, beta2: float):
    opts = dict(options)
    name = opts.pop("name", "constant")
    if name not in SCHEDULES:
        raise DstabError(f"unknown momentum schedule {name!r}; choose one of {list(SCHEDULES)}")
    unknown = set(opts) - ({"floor"} if name != "constant" else set())
    require(not unknown, f"unknown options {sorted(unknown)} for momentum schedule {name!r}")
    if name == "constant":
        return ConstantSchedule(lr, beta1, beta2)
    return MomentumDecaySchedule(name, lr, beta1, beta2, float(opts.get("floor", BETA1_FLOOR)))


def apply(optimizer, hyper: dict) -> None:
    for group in optimizer.param_groups:
        group.update(hyper)
