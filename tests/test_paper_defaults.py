"""The Training page's launch values (dstab.training.paper_defaults), without Streamlit."""

from __future__ import annotations

import pytest

from dstab.training import config as train_config
from dstab.training import momentum, paper_defaults, timesteps


def test_launch_defaults_are_the_papers_values():
    base = train_config.resolve("mdlrc-clts")
    start = paper_defaults.launch_defaults(base, steps=5000)
    T = base["diffusion"]["T"]
    assert start["mu"] == pytest.approx(0.3 * T) and start["sigma"] == pytest.approx(float(T))  # Sec. 4.2
    assert start["target_iter"] == 1000 and start["floor"] == 0.4  # 20% of the run; Sec. 4.3
    assert start["eval_every"] == (base["eval_every"] or 500)


def test_the_schedules_use_the_same_constants():
    clts = timesteps.CLTSSampler(1000, target_iter=10)
    assert clts.mu == pytest.approx(300.0) and clts.sigma == pytest.approx(1000.0)
    assert momentum.make_schedule({"name": "md"}, 1e-3, 0.8, 0.999).floor == 0.4
