"""The Training page's launch values and sweeps (dstab.training.sweeps), without Streamlit."""

from __future__ import annotations

import pytest

from dstab.training import config as train_config
from dstab.training import sweeps


def test_launch_defaults_are_the_papers_values():
    base = train_config.resolve("mdlrc-clts")
    start = sweeps.launch_defaults(base, steps=5000)
    T = base["diffusion"]["T"]
    assert start["mu"] == pytest.approx(0.3 * T) and start["sigma"] == pytest.approx(float(T))  # Sec. 4.2
    assert start["target_iter"] == 1000 and start["floor"] == 0.4  # 20% of the run; Sec. 4.3
    assert start["eval_every"] == (base["eval_every"] or 500)


def test_a_preset_sweep_drops_the_presets_own_options_and_an_option_sweep_adds_one():
    over = ["dataset=digits", "timesteps={}", "momentum={}", "beta1=0.8", "lr=0.001"]
    runs = sweeps.sweep_requests("abl", "mdlrc-clts", over, "preset", list(sweeps.ABLATION))
    assert [r[0] for r in runs] == ["abl-baseline", "abl-md", "abl-md-lrc", "abl-mdlrc-clts"]
    assert all(r[2] == ["dataset=digits", "lr=0.001"] for r in runs) and runs[1][1] == "md"
    mus = sweeps.sweep_requests("mu", "mdlrc-clts", ["lr=0.001"], "timesteps.mu", ["300", "1200.5"])
    assert mus == [
        ("mu-300", "mdlrc-clts", ["lr=0.001", "timesteps.mu=300"]),
        ("mu-1200p5", "mdlrc-clts", ["lr=0.001", "timesteps.mu=1200.5"]),
    ]
    assert sweeps.sweep_default("preset") == "baseline, md, md-lrc, mdlrc-clts" and sweeps.sweep_default("x") == ""
