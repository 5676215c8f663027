"""The paper's CIFAR-10 experiment (issue 24): its setup and every departure from the paper, its
size before it starts, FID worthy of the name (a minimum sample count, weights checked before
anything trains), and a tiny two-arm run on a generated CIFAR-10 folder that `compare` reads."""

from __future__ import annotations

import json
import math
import pickle
import sqlite3

import numpy as np
import pytest
import torch

from dstab import data, metricnames
from dstab.analysis import fid
from dstab.cli import main
from dstab.diffusion import Diffusion, NoiseSource
from dstab.errors import DstabError
from dstab.experiments import cifar10, compare, runcost, speedup
from dstab.training import config as train_config
from tests.cifar_helpers import TINY_CIFAR_UNET, tiny_sets, write_cifar

ID_FORWARD_FLOP = 16_773_414_912  # improved-diffusion's CIFAR-10 UNet, one 32 x 32 image (torch's counter)


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DSTAB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("DSTAB_TRAIN_COMMAND", raising=False)
    monkeypatch.delenv("DSTAB_FID_WEIGHTS", raising=False)
    monkeypatch.setenv(metricnames.FID_MIN_ENV, "6")
    return f"cifar10:{write_cifar(tmp_path / 'cifar-10-batches-py', per_batch=2)}"


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """pytorch-fid's Inception with random weights: tests the plumbing, never FID values."""
    path = tmp_path_factory.mktemp("inception") / "random-inception-timing-only.pth"
    torch.save(fid.random_inception_state(), path)
    return path


def _reproduce(dataset, *extra, sets=None):
    argv = ["reproduce", "speedup", "--dataset", dataset, "--seeds", "1", "--device", "cpu"]
    return main([*argv, *(f"--set={s}" for s in (tiny_sets() if sets is None else sets)), *extra])


def test_the_generated_cifar_folder_is_what_the_loader_reads(tmp_path, monkeypatch):
    """The random CIFAR-10 folder of the GPU check and these tests, read back by dstab's own loader."""
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    folder = write_cifar(tmp_path / "c", per_batch=3, seed=5)
    train, test = data.load(f"cifar10:{folder}"), data.load(f"cifar10:{folder}?split=test")
    assert (len(train), len(test), train.sample_shape) == (15, 3, (3, 32, 32))
    with open(folder / "data_batch_2", "rb") as f:
        row = pickle.load(f, encoding="bytes")[b"data"][1]  # image 1 of batch 2: training image 4
    want = torch.from_numpy(row.reshape(3, 32, 32).astype("float32")) / 127.5 - 1
    assert torch.allclose(train.data[torch.tensor([4])][0], want, atol=1e-6)


def test_the_paper_setup_is_the_papers_and_departs_only_where_said(cifar):
    arch, diffusion = cifar10.model()
    _, planned = speedup.plan(cifar, ["baseline", "mdlrc-clts"], [0], use_paper=True)
    base, full = (r.config for r in planned)
    assert (base["arch"], base["diffusion"]) == (arch, diffusion)
    assert (diffusion["schedule"], diffusion["T"], diffusion["learn_sigma"], arch["model_channels"]) == (
        "cosine",
        4000,
        True,
        128,
    )
    assert (base["steps"], base["batch_size"], base["lr"], base["beta1"], base["beta2"]) == (
        500_000,
        128,
        1e-4,
        0.9,
        0.999,
    )
    assert base["ema_rate"] == pytest.approx(0.9999) and base["timesteps"] == {"name": "uniform"}
    assert (full["beta1"], full["momentum"], full["timesteps"]) == (
        0.8,
        {"name": "md-lrc", "floor": 0.4},
        {"name": "clts", "target_frac": 0.1},  # 50,000 of 500,000 iterations; mu 0.3 T and sigma T by default
    )
    evaluation = "evaluation 10,000 samples by 100 DDIM steps (paper FID-50k, DDPM over all 4000 steps)"
    assert cifar10.departures(base) == [evaluation] and cifar10.departures(full) == [evaluation]
    _, exact = speedup.plan(cifar, ["baseline", "mdlrc-clts"], [0], use_paper=True, paper_eval=True)
    cfg = exact[1].config  # the report needs the baseline beside every variant (issue 27)
    assert (cfg["eval_samples"], cfg["eval_sampler"], cfg["eval_sampler_steps"], cfg["eval_every"]) == (
        50_000,
        "ddpm",
        4000,
        100_000,
    )
    assert cifar10.departures(cfg) == []  # nothing left that departs from the paper


def test_the_default_setup_names_every_departure(cifar):
    _, planned = speedup.plan(cifar, speedup.default_variants(cifar), [0])
    base, full = (r.config for r in planned)
    assert (base["steps"], base["eval_every"], base["checkpoint_every"], base["eval_samples"]) == (
        100_000,
        10_000,
        10_000,
        10_000,
    )
    common = [
        "EMA 0.9995 (paper 0.9999 over 500,000 iterations: its 2% horizon over 100,000 iterations)",
        "steps 100,000 = 12,800,000 images (paper 500,000 = 64,000,000)",
    ]
    evaluation = "evaluation 10,000 samples by 100 DDIM steps (paper FID-50k, DDPM over all 4000 steps)"
    assert cifar10.departures(base) == [*common, evaluation]
    assert cifar10.departures(full) == [*common, "CLTS target 10,000 (paper 50,000)", evaluation]
    # a baseline-only study gets no CLTS option (it would apply to no variant)
    _, alone = speedup.plan(cifar, ["baseline"], [0])
    assert alone[0].config["timesteps"] == {"name": "uniform"}


def test_the_default_fits_a_gpu_day_by_its_flop_count(cifar):
    """The numbers speedup's docstring justifies the default with."""
    _, planned = speedup.plan(cifar, speedup.default_variants(cifar), [0, 1, 2])
    assert runcost.forward_flops(planned[0].config) == ID_FORWARD_FLOP
    rows = [runcost.counts(r.config) for r in planned]
    c = rows[0]
    assert (c["iterations"], c["images"], c["evaluations"], c["eval_samples"], c["eval_calls"]) == (
        100_000,
        12_800_000,
        10,
        100_000,
        10_000_000,
    )
    assert c["train_flop"] == 3 * ID_FORWARD_FLOP * 12_800_000 and round(c["train_flop"] / 1e18, 3) == 0.644
    assert c["eval_flop"] == ID_FORWARD_FLOP * 10_000_000 and round(c["eval_flop"] / 1e18, 3) == 0.168
    total = sum(r["train_flop"] + r["eval_flop"] for r in rows)
    assert len(rows) == 6 and round(total / 1e18, 2) == 4.87
    tflops = total / 86_400 / 1e12
    assert round(tflops) == 56 and round(100 * tflops / 989, 1) == 5.7 and round(100 * tflops / 312) == 18
    # disk: 10 kept checkpoints of the EMA weights, the resume state and the one before, the metrics
    params = 52_546_438
    rows_logged = (100_000 // 100 + 1) * runcost.LOGGED_NAMES + 10 * runcost.EVAL_NAMES
    assert c["disk"] == 10 * params * 4 + 2 * 4 * params * 4 + rows_logged * runcost.METRICS_ROW_BYTES


def test_the_paper_dry_run_prints_the_paper_departures_and_cost(cifar, capsys):
    assert _reproduce(cifar, "--paper", "--dry-run", "--no-measure") == 0
    out = capsys.readouterr().out
    assert (
        "paper (App. B, Table 3): improved-diffusion's CIFAR-10 UNet (52,546,438 parameters, learned sigma, "
        "L_hybrid), cosine schedule, T = 4000; Adam lr 0.0001, batch 128, beta2 0.999, beta1 0.9 (baseline) or "
        "0.8 decaying to a 0.4 floor (MD, MDLRC); EMA 0.9999; CLTS mu 1200, sigma 4000, target 50,000; 500,000 "
        "iterations (64,000,000 images); FID-50k by DDPM over all 4000 steps"
    ) in out
    lines = out.splitlines()
    base = next(line for line in lines if line.startswith("speedup-cifar10-baseline-s0  ["))
    full = next(line for line in lines if line.startswith("speedup-cifar10-mdlrc-clts-s0  ["))
    for line in (base, full):
        assert "steps 20 = 2,560 images (paper 500,000 = 64,000,000)" in line  # --paper keeps batch 128
        assert "model: attention_resolutions [16] (paper [16, 8]), channel_mult [1, 2] (paper [1, 2, 2, 2])" in line
        assert "model_channels 8 (paper 128)" in line and "num_res_blocks 1 (paper 3)" in line
        assert "EMA 0.5 (paper 0.9999 over 500,000 iterations: its 2% horizon over 20 iterations)" in line
        assert "evaluation 6 samples by 2 DDIM steps (paper FID-50k, DDPM over all 4000 steps)" in line
        assert "lr " not in line and "batch " not in line
    assert "CLTS target 2 (paper 50,000)" in full and "CLTS" not in base
    assert "  total (2 runs): 40 iterations, 5,120 images training, 12 evaluation samples" in lines
    assert lines[-1] == "2 runs in group speedup-cifar10 (dry run: nothing queued)"


def test_a_measured_dry_run_says_what_it_measured(cifar, capsys):
    assert _reproduce(cifar, "--dry-run", "--variants", "baseline") == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("  speedup-cifar10-baseline-s0: "))
    flop = runcost.forward_flops({"kind": "dm", "arch": TINY_CIFAR_UNET})
    assert f"20 iterations, 80 images, {runcost.flop_text(3 * flop * 80)}; 1 evaluation, 6 samples" in row
    assert "CPU-hours (training " in row and "; disk " in row
    measured = next(line for line in lines if line.startswith("  measured on cpu (no GPU here"))
    assert "3 timed steps at batch 4, scaled to 4" in measured
    assert "(Inception with random weights: no weights here)" in measured
    assert any(line.startswith("note: a launch would stop here: ") for line in lines)


def test_fid_needs_its_minimum_sample_count(cifar, capsys, monkeypatch):
    sets = [s for s in tiny_sets() if not s.startswith("eval_samples=")] + ["eval_samples=5"]
    assert _reproduce(cifar, "--dry-run", "--no-measure", sets=sets) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "FID needs at least 6 samples, got eval_samples=5" in err[0]
    monkeypatch.delenv(metricnames.FID_MIN_ENV)
    cfg = {**train_config.preset("baseline"), "eval_metric": "fid", "eval_samples": 9_999}
    with pytest.raises(DstabError, match="FID needs at least 10000 samples, got eval_samples=9999"):
        train_config.TrainConfig.from_dict(cfg, networks=False)
    train_config.TrainConfig.from_dict({**cfg, "eval_samples": 10_000}, networks=False)
    monkeypatch.setenv(metricnames.FID_MIN_ENV, "many")
    with pytest.raises(DstabError, match="DSTAB_FID_MIN_SAMPLES must be an integer >= 2"):
        metricnames.fid_min_samples()


def test_missing_weights_stop_the_launch_before_anything_is_queued(cifar, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSTAB_FID_WEIGHTS", str(tmp_path / "absent.pth"))
    assert _reproduce(cifar, "--results", str(tmp_path / "R.md")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: FID weights file {tmp_path / 'absent.pth'} does not exist"]
    assert not (tmp_path / "ws" / "runs").exists() or not any((tmp_path / "ws" / "runs").iterdir())


def test_evaluation_every_n_images_seen(cifar):
    _, planned = speedup.plan(cifar, ["baseline"], [0], eval_images=1_280_000)
    assert planned[0].config["eval_every"] == 10_000  # 1.28M images at batch 128
    with pytest.raises(DstabError, match="must be a positive multiple of the batch size 128"):
        speedup.plan(cifar, ["baseline"], [0], eval_images=1000)
    with pytest.raises(DstabError, match="--paper-eval applies to CIFAR-10"):
        speedup.plan("digits", ["baseline"], [0], paper_eval=True)


def test_the_ddpm_evaluation_sampler_is_named_and_checked():
    assert metricnames.metric_name("fid", 50_000, 4000, sampler="ddpm") == "fid@50000x4000ddpm"
    assert metricnames.metric_label("fid@50000x4000ddpm") == "FID, 50000 samples, 4000 DDPM steps"
    assert metricnames.metric_label("fid@10000x100ddim") == "FID, 10000 samples, 100 DDIM steps"
    cfg = {**train_config.preset("baseline"), "eval_sampler": "ddpm", "eval_sampler_steps": 100}
    with pytest.raises(DstabError, match="eval_sampler ddpm runs all T = 1000 steps; set eval_sampler_steps=1000"):
        train_config.TrainConfig.from_dict(cfg, networks=False)


class _Shrink(torch.nn.Module):
    """eps = 0.1 x: DDIM's output is a fixed function of x_T, so batches can be checked one by one."""

    def forward(self, x, t):
        return 0.1 * x


def test_large_evaluations_are_generated_in_batches_of_fixed_seeds(monkeypatch):
    d = Diffusion("linear", 50, "eps")
    shape = (1, 4, 4)
    one = fid.generate({"model": _Shrink()}, d, 3, 7, 4, shape, "cpu")
    assert torch.equal(one, d.ddim_sample(_Shrink(), NoiseSource(7, (3, *shape)), steps=4))  # as before batching
    monkeypatch.setattr(fid, "EVAL_CHUNK", 4)
    seeds = fid.chunk_seeds(7, 10)
    assert [n for _, n in seeds] == [4, 4, 2] and len({s for s, _ in seeds}) == 3 and seeds == fid.chunk_seeds(7, 10)
    x = fid.generate({"model": _Shrink()}, d, 10, 7, 4, shape, "cpu")
    parts = [d.ddim_sample(_Shrink(), NoiseSource(s, (n, *shape)), steps=4) for s, n in seeds]
    assert torch.equal(x, torch.cat(parts))


def _rows(db, like):
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return con.execute("SELECT name, step, value FROM metrics WHERE name LIKE ?", (like,)).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_two_arms_train_with_fid_and_compare_reads_them(cifar, random_inception, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DSTAB_FID_WEIGHTS", str(random_inception))
    results = tmp_path / "RESULTS.md"
    code = _reproduce(cifar, "--seeds", "2", "--wait", "--results", str(results), "--group", "c10")
    out = capsys.readouterr().out
    assert code == 0, out
    root = tmp_path / "ws" / "runs"
    names = [f"c10-{v}-s{s}" for s in (0, 1) for v in ("baseline", "mdlrc-clts")]
    for name in names:
        fids = _rows(root / name / "run" / "metrics.sqlite", "fid@%")
        assert [(n, s) for n, s, _ in fids] == [("fid@6x2ddim", 20)] and math.isfinite(fids[0][2])
        kid = _rows(root / name / "run" / "metrics.sqlite", "kid@%")
        assert [n for n, _, _ in kid] == ["kid@6x2ddim"]
        config = json.loads((root / name / "run" / "config.json").read_text())
        written = sum(f.stat().st_size for f in (root / name / "run").rglob("*") if f.is_file())
        assert 0.5 < written / runcost.disk_bytes(config) < 2.0  # the dry run's disk estimate, for this run
    # the reference statistics of the 10 training images were computed once, by the first run
    cached = list((tmp_path / "cache" / "fd-stats").glob("*.npz"))
    assert sum("mu" in np.load(p).files for p in cached) == 1  # beside it: the report's floor of the metric
    result = compare.compare("c10", root=root)
    assert result["metric"] == "fid@6x2ddim" and set(result["variants"]) == {"baseline", "mdlrc-clts"}
    section = results.read_text()
    assert "FID, 6 samples, 2 DDIM steps" in section and "steps 20 = 80 images (paper 500,000" in section
    assert (tmp_path / "results" / "speedup-cifar10-curves.png").is_file()
