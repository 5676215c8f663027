"""Learning-rate schedules as pure functions of the iteration (nanoGPT style).

A schedule is a factor f(it, total) that multiplies the lr the momentum
schedule (momentum.py) gives at iteration `it` (0-based), so any of them
composes with constant Adam, MD, MD+LRC or the lrc control. Shapes follow
nanoGPT's `get_lr`: an optional linear warm-up over the first `warmup`
iterations, f = (it + 1) / warmup, then a decay over the remaining
progress tau = (it - warmup) / (total - warmup) in [0, 1]:

- constant:     f = 1
- linear:       f = 1 - (1 - final) tau
- cosine:       f = final + (1 - final) (1 + cos(pi tau)) / 2   (Loshchilov & Hutter 2017)
- inverse-sqrt: f = sqrt(scale / max(scale, it - warmup))       (Vaswani et al. 2017)
- mdlrc:        f = (1 - beta0) / (1 - max(floor, beta_tau)), beta_tau = Demon's decayed beta1
                (paper Eq. 9-10): exactly the lr curve MDLRC applies for the same run length,
                beta0 and floor; with beta1 held constant this is the `lr-matched` control.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import paper
from ..errors import DstabError, require
from ..errors import is_int as _is_int
from ..errors import is_number as _is_num
from .momentum import BETA1_FLOOR, compensated_lr, demon_beta, make_schedule

SHAPES = ("constant", "linear", "cosine", "inverse-sqrt", "mdlrc")
OPTIONS = {
    "constant": {"warmup"},
    "linear": {"warmup", "final"},
    "cosine": {"warmup", "final"},
    "inverse-sqrt": {"warmup", "scale"},
    "mdlrc": {"warmup", "beta0", "floor"},
}


@dataclass(frozen=True)
class LRSchedule:
    name: str = "constant"
    warmup: int = 0
    final: float = 0.0  # linear / cosine: the factor reached at the end of the run
    scale: float = 100.0  # inverse-sqrt: iterations after warm-up before the decay starts
    beta0: float = paper.BETA0  # mdlrc: MDLRC's initial beta1 (paper Sec. 4.3)
    floor: float = BETA1_FLOOR  # mdlrc: MDLRC's beta1 floor (paper Sec. 4.3)

    def __post_init__(self):
        require(self.name in SHAPES, f"unknown lr schedule {self.name!r}; choose one of {list(SHAPES)}")
        require(_is_int(self.warmup) and self.warmup >= 0, f"lr warmup must be an integer >= 0, got {self.warmup!r}")
        require(_is_num(self.final) and 0 <= self.final <= 1, f"lr final factor must lie in [0, 1], got {self.final!r}")
        require(_is_num(self.scale) and self.scale > 0, f"inverse-sqrt scale must be > 0, got {self.scale!r}")
        require(_is_num(self.beta0) and 0 < self.beta0 < 1, f"mdlrc beta0 must lie in (0, 1), got {self.beta0!r}")
        require(
            _is_num(self.floor) and 0 <= self.floor < self.beta0,
            f"mdlrc floor must lie in [0, beta0), got {self.floor!r}",
        )

    def factor(self, it: int, total: int) -> float:
        if it < self.warmup:
            return (it + 1) / self.warmup
        tau = min(1.0, max(0.0, (it - self.warmup) / max(1, total - self.warmup)))
        if self.name == "constant":
            return 1.0
        if self.name == "linear":
            return 1.0 - (1.0 - self.final) * tau
        if self.name == "cosine":
            return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * tau))
        if self.name == "inverse-sqrt":
            return math.sqrt(self.scale / max(self.scale, it - self.warmup))
        return compensated_lr(1.0, self.beta0, max(self.floor, demon_beta(self.beta0, tau)))


def make_lr_schedule(options: dict | None) -> LRSchedule:
    require(options is None or isinstance(options, dict), f"lr_schedule must be a mapping, got {options!r}")
    opts = dict(options or {})
    name = opts.pop("name", "constant")
    if name not in SHAPES:
        raise DstabError(f"unknown lr schedule {name!r}; choose one of {list(SHAPES)}")
    unknown = set(opts) - OPTIONS[name]
    require(not unknown, f"unknown options {sorted(unknown)} for lr schedule {name!r}; known: {sorted(OPTIONS[name])}")
    return LRSchedule(name, **opts)


@dataclass(frozen=True)
class WithLR:
    """A momentum schedule whose lr is multiplied by an lr schedule's factor."""

    inner: object
    lr: LRSchedule

    def at(self, it: int, total: int) -> dict:
        hyper = self.inner.at(it, total)
        return {**hyper, "lr": hyper["lr"] * self.lr.factor(it, total)}


def optimizer_schedule(momentum: dict, lr: float, beta1: float, beta2: float, lr_schedule: dict | None = None):
    """The trainer's Adam schedule: the momentum schedule, its lr times the lr schedule's factor."""
    inner = make_schedule(momentum, lr, beta1, beta2)
    shape = make_lr_schedule(lr_schedule)
    return inner if shape == LRSchedule() else WithLR(inner, shape)
