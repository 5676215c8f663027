"""Shared by the training tests (kept out of conftest.py, which other branches also add)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Bit-exact comparisons need one CPU thread: reductions split differently across threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_dm(**over) -> dict:
    """A toy2d MLP denoiser run that takes well under a second."""
    cfg = {
        "kind": "dm",
        "dataset": "toy2d:8gaussians",
        "arch": {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16, "depth": 2, "time_dim": 8},
        "diffusion": {"schedule": "linear", "T": 100, "prediction": "eps"},
        "steps": 8,
        "batch_size": 16,
        "lr": 1e-3,
        "beta1": 0.8,
        "momentum": {"name": "md-lrc"},
        "timesteps": {"name": "loss-second-moment", "history": 1},
        "log_every": 1,
        "checkpoint_every": 2,
    }
    cfg.update(over)
    return cfg
