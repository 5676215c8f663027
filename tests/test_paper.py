"""The paper's values in one module (dstab/paper.py): the presets, the Training page's form and the
schedules read them, and a run's stored config spells each option one way whatever launched it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from dstab import paper, runs
from dstab.diffusion import Diffusion
from dstab.runs import runboard
from dstab.training import config as train_config
from dstab.training import lr, momentum, timesteps

REPO = Path(__file__).resolve().parents[1]


def test_launch_defaults_are_the_papers_values():
    base = train_config.resolve("mdlrc-clts")
    start = paper.launch_defaults(base, steps=5000)
    T = base["diffusion"]["T"]
    assert start["mu"] == pytest.approx(0.3 * T) and start["sigma"] == pytest.approx(float(T))  # Sec. 4.2
    assert start["target_iter"] == 1000 and start["floor"] == 0.4  # 20% of the run; Sec. 4.3
    assert start["eval_every"] == (base["eval_every"] or 500)


def test_the_schedules_and_presets_read_the_same_values():
    clts = timesteps.CLTSSampler(1000, target_iter=10)
    assert clts.mu == pytest.approx(300.0) and clts.sigma == pytest.approx(1000.0)
    assert momentum.make_schedule({"name": "md"}, 1e-3, 0.8, 0.999).floor == paper.FLOOR == 0.4
    assert lr.LRSchedule("mdlrc").beta0 == paper.BETA0 == 0.8
    for name in ("md", "md-lrc", "mdlrc-clts", "lrc-only"):
        assert train_config.preset(name)["beta1"] == paper.BETA0
    matched = train_config.preset("lr-matched")["lr_schedule"]
    assert (matched["beta0"], matched["floor"]) == (paper.BETA0, paper.FLOOR)
    assert train_config.preset("mdlrc-clts")["timesteps"]["target_frac"] == paper.CLTS_TARGET_FRACTION


def test_no_other_module_types_the_papers_training_values():
    """beta0, the floor, the EMA rate and CLTS's fractions are written in dstab/paper.py only."""
    values = {paper.BETA0, paper.FLOOR, paper.EMA, paper.CLTS_MU_FRACTION, paper.CLTS_TARGET_FRACTION}
    found = []
    for folder in ("dstab/training", "dstab/experiments", "dstab/commands", "pages", "dashboard"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and type(node.value) is float and node.value in values:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value}")
    assert found == []


def _queued(tmp_path, name, config) -> dict:
    runs.queue(name, config, {"preset": "mdlrc-clts"}, device="cpu", root=tmp_path)
    return json.loads((tmp_path / name / "request.json").read_text())


def test_a_runs_stored_config_spells_each_option_one_way_whatever_launched_it(tmp_path):
    """The CLI's preset asks for CLTS by target_frac and leaves mu and sigma to the sampler; the page's form
    gives target_iter, mu and sigma (the paper's values): both store the same config."""
    cli = train_config.resolve("mdlrc-clts", networks=False)
    base = train_config.resolve("mdlrc-clts")
    start = paper.launch_defaults(base, base["steps"])
    hyper = {
        "timesteps": {"name": "clts", "mu": start["mu"], "sigma": start["sigma"], "target_iter": start["target_iter"]}
    }
    page = train_config.resolve("mdlrc-clts", None, runboard.request_overrides("digits", "base", hyper), networks=False)
    assert cli["timesteps"] != page["timesteps"]  # asked for two ways...
    a, b = _queued(tmp_path, "cli", cli), _queued(tmp_path, "page", page)
    assert a == b  # ...stored one way
    assert a["timesteps"] == {"name": "clts", "mu": 300.0, "sigma": 1000.0, "target_iter": 600}
    assert train_config.stored(a) == a  # idempotent
    runs.delete("cli", "cli", tmp_path)


@pytest.mark.parametrize("preset", sorted(train_config.PRESETS))
def test_a_stored_config_trains_as_the_one_it_came_from(preset):
    """Spelled out, a sampler draws from the same P(t) with the same loss weights at every iteration (an
    odd run length, where 20% of it is not whole, included)."""
    cfg = train_config.resolve(preset, None, ["steps=3333"], networks=False)
    kept = train_config.stored(cfg)
    assert train_config.stored(kept) == kept
    d, t = Diffusion(T=cfg["diffusion"]["T"]), torch.arange(cfg["diffusion"]["T"])
    a, b = timesteps.make_sampler(cfg["timesteps"], d, 3333), timesteps.make_sampler(kept["timesteps"], d, 3333)
    for it in (0, 100, 666, 667, 3332):
        assert torch.equal(a.pmf(it), b.pmf(it)) and torch.equal(a.weights(t, it), b.weights(t, it)), it
