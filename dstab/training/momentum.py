"""Optimiser schedules as pure functions of the iteration (nanoGPT style).

Each schedule maps (step, total_steps) to the Adam hyper-parameters for that
step; the trainer writes them into every param_group before `optimizer.step()`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConstantSchedule:
    lr: float
    beta1: float
    beta2: float = 0.999

    def at(self, step: int, total: int) -> dict:
        return {"lr": self.lr, "betas": (self.beta1, self.beta2)}


def apply(optimizer, hyper: dict) -> None:
    for group in optimizer.param_groups:
        group.update(hyper)
