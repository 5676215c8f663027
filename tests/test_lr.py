"""Learning-rate schedules: golden values, composition with the beta1 schedules, the lr-matched
control, and the paper's values."""

from __future__ import annotations

import math

import pytest

from dstab import paper
from dstab.errors import DstabError
from dstab.training import config as train_config
from dstab.training.lr import LRSchedule, make_lr_schedule, optimizer_schedule
from dstab.training.momentum import make_schedule


@pytest.mark.parametrize(
    ("options", "it", "want"),
    [
        ({"name": "constant"}, 700, 1.0),
        ({"name": "linear"}, 250, 0.75),
        ({"name": "linear", "final": 0.1}, 1000, 0.1),
        ({"name": "cosine"}, 0, 1.0),
        ({"name": "cosine"}, 500, 0.5),
        ({"name": "cosine", "final": 0.2}, 500, 0.6),
        ({"name": "cosine"}, 1000, 0.0),
        ({"name": "cosine", "warmup": 100}, 0, 0.01),
        ({"name": "cosine", "warmup": 100}, 99, 1.0),
        ({"name": "cosine", "warmup": 100}, 550, 0.5),  # half-way through the 900 decay iterations
        ({"name": "constant", "warmup": 10}, 4, 0.5),
        ({"name": "inverse-sqrt", "scale": 100}, 50, 1.0),
        ({"name": "inverse-sqrt", "scale": 100}, 400, 0.5),
        ({"name": "inverse-sqrt", "scale": 100, "warmup": 20}, 420, 0.5),
        # MDLRC at tau = 0.5 from beta0 0.8: beta = 0.4 / 0.6 = 2/3, factor 0.2 / (1/3) = 0.6
        ({"name": "mdlrc"}, 500, 0.6),
        ({"name": "mdlrc"}, 900, 1 / 3),  # past tau = 5/6 the 0.4 floor holds: 0.2 / 0.6
    ],
)
def test_lr_factor_golden_values(options, it, want):
    assert make_lr_schedule(options).factor(it, 1000) == pytest.approx(want, abs=1e-12)


def test_lr_matched_reproduces_mdlrc_lr_with_constant_beta1():
    cfg, ref = train_config.resolve("lr-matched"), train_config.resolve("mdlrc-clts")
    total = 3000
    matched = optimizer_schedule(cfg["momentum"], cfg["lr"], cfg["beta1"], cfg["beta2"], cfg["lr_schedule"])
    mdlrc = make_schedule(ref["momentum"], ref["lr"], ref["beta1"], ref["beta2"])
    for it in range(total):
        a, b = matched.at(it, total), mdlrc.at(it, total)
        assert abs(a["lr"] - b["lr"]) <= 1e-12 * b["lr"]
        assert a["betas"] == (0.9, 0.999)
    assert cfg["lr"] == ref["lr"] and mdlrc.at(total - 1, total)["betas"][0] == pytest.approx(0.4)


def test_lr_schedule_multiplies_any_momentum_schedule():
    sched = optimizer_schedule({"name": "md-lrc"}, 1e-3, 0.8, 0.999, {"name": "cosine"})
    plain = make_schedule({"name": "md-lrc"}, 1e-3, 0.8, 0.999)
    for it in (0, 123, 500, 999):
        want = plain.at(it, 1000)["lr"] * 0.5 * (1 + math.cos(math.pi * it / 1000))
        assert sched.at(it, 1000)["lr"] == pytest.approx(want, rel=1e-12)
        assert sched.at(it, 1000)["betas"] == plain.at(it, 1000)["betas"]
    assert optimizer_schedule({"name": "md-lrc"}, 1e-3, 0.8, 0.999, {"name": "constant"}) == plain


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"name": "step"}, "unknown lr schedule 'step'"),
        ({"name": "cosine", "gamma": 2}, r"unknown options \['gamma'\]"),
        ({"name": "cosine", "final": 2}, "final factor must lie in"),
        ({"name": "linear", "warmup": -1}, "warmup must be an integer"),
        ({"name": "linear", "warmup": 1.5}, "warmup must be an integer"),
        ({"name": "mdlrc", "floor": 0.9}, "floor must lie in"),
        ("cosine", "must be a mapping"),
    ],
)
def test_bad_lr_schedules_are_refused(options, match):
    with pytest.raises(DstabError, match=match):
        make_lr_schedule(options)


def test_config_validates_its_lr_schedule():
    cfg = {**train_config.preset("cosine"), "lr_schedule": {"name": "cosine", "final": -1}}
    with pytest.raises(DstabError, match="final factor"):
        train_config.TrainConfig.from_dict(cfg)
    assert train_config.TrainConfig.from_dict(train_config.preset("cosine")).lr_schedule == {"name": "cosine"}
    assert LRSchedule() == make_lr_schedule(None)


def test_paper_values_and_differences():
    cfg = train_config.resolve("mdlrc-clts", overrides=["steps=3000", "timesteps.mu=100"])
    diffs = paper.differences(cfg)
    assert "lr 0.001 (paper 0.0001)" in diffs and "batch 64 (paper 128)" in diffs
    assert any(d.startswith("EMA 0.999 (paper 0.9999") for d in diffs) and "CLTS mu 100 (paper 300)" in diffs
    p = paper.to_paper(cfg)
    assert (p["lr"], p["batch_size"], p["beta1"], p["momentum"]["floor"]) == (1e-4, 128, 0.8, 0.4)
    assert p["ema_rate"] == pytest.approx(1 - 1 / 60)  # the 2% horizon of 3000 iterations
    assert "mu" not in p["timesteps"] and paper.differences(p) == []
    assert paper.paper_ema(500_000) == pytest.approx(0.9999)
    matched = paper.to_paper(train_config.resolve("lr-matched", overrides=["lr_schedule.floor=0.3"]))
    assert matched["beta1"] == 0.9 and matched["lr_schedule"]["floor"] == 0.4  # beta1 stays Adam's 0.9


def test_train_paper_flag_sets_the_papers_values_before_set(tmp_path, monkeypatch):
    import json

    from dstab.cli import main

    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    toy = ["dataset=toy2d:8gaussians", 'arch={"arch": "mlp_denoiser", "hidden": 8, "depth": 2, "time_dim": 8}']
    sets = sum((["--set", s] for s in [*toy, "steps=2", "eval_every=null", "batch_size=16"]), [])
    assert main(["train", "--out", str(tmp_path / "r"), "--preset", "md-lrc", "--paper", "--quiet", *sets]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["lr"], cfg["batch_size"], cfg["beta1"], cfg["momentum"]) == (
        1e-4,
        16,
        0.8,
        {"name": "md-lrc", "floor": 0.4},
    )
    assert cfg["ema_rate"] == pytest.approx(0.5)  # the 2% horizon of a 2-iteration run, at least one iteration
