"""sweep: the product of variants x seeds x axes, aliases that follow the variant, refusals before
anything is written, and a real tiny sweep that lands in one group which `compare` reads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dstab import runs
from dstab.cli import main
from dstab.errors import DstabError
from dstab.experiments import compare, sweep

FAKE = Path(__file__).with_name("fake_trainer.py")
TOY = ["dataset=toy2d:8gaussians", 'arch={"arch": "mlp_denoiser", "hidden": 16, "depth": 2, "time_dim": 8}']


def _axes(*texts):
    return [sweep.parse_axis(t) for t in texts]


def test_dry_run_lists_the_product_and_writes_nothing(tmp_path, capsys):
    argv = [
        "sweep",
        "--root",
        str(tmp_path),
        "--variants",
        "baseline,lr-matched",
        "--seeds",
        "2",
        "--set",
        "lr=1e-3,2e-3",
        "--set",
        "steps=100",
        "--group",
        "g",
        "--dry-run",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    cost = next(i for i, line in enumerate(out) if line.startswith("what the runs will cost"))
    names = [line.split()[0] for line in out[:cost]]
    assert names == [
        f"g-{v}-lr{lr}-s{s}" for s in (0, 1) for lr in ("0.001", "0.002") for v in ("baseline", "lr-matched")
    ]
    # sizes without PyTorch: 100 iterations at the preset's batch 64, its evaluations every 500 steps: one
    first = "  g-baseline-lr0.001-s0: 100 iterations, 6,400 images; 1 evaluation, 500 samples, 25,000 network calls"
    assert out[cost + 1] == first  # 500 samples x 50 DDIM steps
    assert out[-2] == "  total (8 runs): 800 iterations, 51,200 images training, 4,000 evaluation samples"
    assert out[-1] == "8 runs in group g (dry run: nothing queued)"
    assert "vs paper: lr 0.001 (paper 0.0001); batch 64 (paper 128)" in out[0]
    assert not any(tmp_path.iterdir())


def test_axes_set_the_config_and_aliases_follow_the_variant():
    _, planned = sweep.plan(
        ["baseline", "md-lrc", "lr-matched"], [3], _axes("beta0=0.7,0.85", "floor=0.3,0.5"), group="g"
    )
    by = {(r.variant, r.values.get("beta0"), r.values.get("floor")): r.config for r in planned}
    assert len(planned) == 1 + 4 + 4  # beta0 / floor do not apply to the baseline: one run, not four
    md = by[("md-lrc", 0.7, 0.3)]
    assert (md["beta1"], md["momentum"]["floor"], md["seed"], md["data_seed"]) == (0.7, 0.3, 3, 3)
    matched = by[("lr-matched", 0.85, 0.5)]
    assert matched["beta1"] == 0.9 and matched["lr_schedule"] == {"name": "mdlrc", "beta0": 0.85, "floor": 0.5}
    assert by[("baseline", None, None)]["beta1"] == 0.9


def test_width_dataset_and_paper_settings():
    fixed = _axes(*TOY[:1])
    _, planned = sweep.plan(["mdlrc-clts"], [0], _axes("width=32,64"), fixed, group="g", use_paper=True)
    cfgs = [r.config for r in planned]
    assert [c["arch"]["hidden"] for c in cfgs] == [32, 64] and cfgs[0]["arch"]["arch"] == "mlp_denoiser"
    assert (cfgs[0]["lr"], cfgs[0]["batch_size"], cfgs[0]["beta1"]) == (1e-4, 128, 0.8)
    assert cfgs[0]["ema_rate"] == pytest.approx(1 - 1 / 60)  # 3000 iterations, the paper's 2% horizon
    _, unet = sweep.plan(["baseline"], [0], _axes("width=16,32"), group="g")
    assert [r.config["arch"]["model_channels"] for r in unet] == [16, 32]
    assert [r.name for r in unet] == ["g-baseline-width16-s0", "g-baseline-width32-s0"]


@pytest.mark.parametrize(
    ("variants", "axes", "match"),
    [
        (["baseline"], ["lerning_rate=1,2"], "unknown sweep key 'lerning_rate'"),
        (["baseline"], ["beta0.x=1,2"], "unknown sweep key 'beta0.x'"),
        (["baseline"], ["steps=10,abc"], "steps must be a positive integer, got 'abc'"),
        (["baseline"], ["lr=0.1,-1"], "lr must be > 0"),
        (["baseline"], ["arch=[1],[2]"], "wrong type|arch"),
        (["baseline"], ["lr=1e-3,"], "empty value"),
        (["baseline"], ["timesteps.mu=100,200"], "applies to none of the variants"),
        (["baseline"], ["seed=1,2"], "sweep seeds with --seeds"),
        (["nope"], [], "unknown preset 'nope'"),
        ([], [], "at least one variant"),
    ],
)
def test_bad_sweeps_are_refused(variants, axes, match):
    with pytest.raises(DstabError, match=match):
        sweep.plan(variants, [0, 1], _axes(*axes), group="g")


def test_bad_seeds_and_empty_seed_lists(tmp_path, capsys):
    assert main(["sweep", "--root", str(tmp_path), "--seeds", "0,x", "--dry-run"]) == 2
    assert "--seeds takes a count" in capsys.readouterr().err
    with pytest.raises(DstabError, match="at least one seed"):
        sweep.plan(["baseline"], [], group="g")


def test_launch_queues_every_run_of_one_group_without_retraining_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_TRAIN_COMMAND", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    monkeypatch.setenv("DSTAB_MAX_RUNS_PER_DEVICE", "1")
    built = []
    monkeypatch.setattr(runs, "check_buildable", lambda cfg: built.append((cfg["lr"], cfg["beta1"], cfg["seed"])))
    group, planned = sweep.plan(["baseline", "md"], [0, 1, 2], _axes("lr=1e-3,2e-3"), _axes(*TOY, "steps=5"), group="q")
    statuses = sweep.launch(group, planned, device="cpu", root=tmp_path)
    assert len(statuses) == 12 and {s.group for s in runs.list_runs(tmp_path)} == {"q"}
    # the trainer built once per distinct config (2 variants x 2 lr), not once per seed
    assert sorted(b[:2] for b in built) == [(1e-3, 0.8), (1e-3, 0.9), (2e-3, 0.8), (2e-3, 0.9)]
    launch = json.loads((tmp_path / "q-md-lr0.002-s2" / "launch.json").read_text())
    assert (launch["variant"], launch["seed"], launch["sweep"], launch["label"]) == (
        "md",
        2,
        {"lr": 0.002},
        "md lr=0.002",
    )
    with pytest.raises(DstabError, match="already exist"):
        sweep.launch(group, planned, device="cpu", root=tmp_path)
    for st in runs.list_runs(tmp_path):  # leave no queue behind
        if st.active:
            runs.stop(st.name, tmp_path)


def test_a_real_2x2_sweep_lands_in_one_group_and_compare_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_MAX_RUNS_PER_DEVICE", "2")
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    fixed = [
        *TOY,
        "steps=40",
        "eval_every=10",
        "eval_samples=64",
        "eval_sampler_steps=5",
        "batch_size=32",
        "checkpoint_every=40",
        "log_every=10",
        'diffusion={"schedule": "linear", "T": 100, "prediction": "eps"}',
    ]
    assert (
        main(
            [
                "sweep",
                "--root",
                str(tmp_path / "runs"),
                "--variants",
                "baseline,mdlrc-clts",
                "--seeds",
                "2",
                "--group",
                "tiny",
                *sum((["--set", f] for f in fixed), []),
            ]
        )
        == 0
    )
    names = [f"tiny-{v}-s{s}" for s in (0, 1) for v in ("baseline", "mdlrc-clts")]
    for n in names:
        assert runs.wait(n, timeout=1800, root=tmp_path / "runs").state == "finished"  # a hang guard only
    result = compare.compare("tiny", root=tmp_path / "runs")
    assert result["metric"] == "mmd2@64x5ddim" and set(result["variants"]) == {"baseline", "mdlrc-clts"}
    assert result["variants"]["baseline"]["steps"] == [10, 20, 30, 40] and not result["partial"]
    assert result["setup"]["steps"] == "40" and result["setup"]["batch"] == "32"


BAD_OPTIONS = [
    (["sweep", "--set", "width=-5"], "arch: UNet option model_channels must be a positive integer, got -5"),
    # 1e9 is read as the integer a user means; such a UNet has a conv weight of 4e9 x 1e9 x 3 x 3 floats,
    # past what a tensor can hold: said as the parameter limit it is far above (it was "must be a positive
    # integer, got 1000000000.0")
    (["sweep", "--set", "width=1e9"], "one of its tensors would be too large to exist (Storage size"),
    (["sweep", "--set", "width=2.5"], "UNet option model_channels must be a positive integer, got 2.5"),
    (
        ["reproduce", "speedup", "--dataset", "toy2d", "--seeds", "1", "--set", "width=1000000"],
        # the MLP denoiser, h = 1e6 hidden, depth 3, 2-D data, time_dim 32: (34 h + h) + 2 (h^2 + h) + (2 h + 2)
        "parameter count is 2,000,039,000,002, above the DSTAB_MAX_PARAMS limit",
    ),
    (["sweep", "--threads", "0"], "--threads must be >= 1, got 0"),
    (["sweep", "--device", "tpu"], "unknown device 'tpu'; use auto, cpu, cuda or cuda:N"),
    (["reproduce", "speedup", "--dataset", "nope", "--seeds", "1"], "unknown dataset 'nope'; choose one of"),
    (["reproduce", "speedup", "--variants", "mdlrc-clts"], "has no baseline: the report measures each variant's"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_dry_run_fails_on_what_the_runs_would_fail_on(tmp_path, capsys, monkeypatch, argv, message):
    """Issue 27: each of these listed its runs under --dry-run (and queued runs that could only fail). Now
    --dry-run and the launch refuse them with the same line, before anything is written; the network
    checks are the trainer's own, built as the run builds it (runs.check_buildable)."""
    built = []
    real = runs.check_buildable
    monkeypatch.setattr(runs, "check_buildable", lambda cfg: built.append(cfg) or real(cfg))
    lines = []
    for dry in (["--dry-run"], []):
        assert main([*argv, "--root", str(tmp_path), *dry]) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("error: ") and err.count("\n") == 1, err
        lines.append(err)
    assert lines[0] == lines[1]  # one rule for the dry run and the launch
    assert not [p for p in tmp_path.iterdir() if p.name != ".lock"]  # nothing queued
    if "arch" in message or "dataset" in message or "DSTAB_MAX_PARAMS" in message:
        assert built  # refused by building the trainer, not by a rule of its own


def test_runs_start_refuses_the_same_options(tmp_path, capsys):
    root = ["runs", "--root", str(tmp_path), "start"]
    for extra, message in (
        (["--set", "arch.model_channels=-5"], "UNet option model_channels must be a positive integer, got -5"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--set", "dataset=nope"], "unknown dataset 'nope'"),
    ):
        assert main([*root, "r", "--preset", "baseline", *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_dry_run_downloads_nothing_and_says_what_it_left_to_the_runs(tmp_path, capsys, monkeypatch):
    """A sweep on CIFAR-10 with nothing downloaded: --dry-run built the trainer, which fetched 170 MB
    (or failed offline with 'could not download'). Now the dry run checks every other option (the
    trainer loads its data last) and notes the download; the launch itself still downloads first."""
    import torchvision.datasets.utils as tv_utils

    fetched = []

    def offline(url, *args, **kwargs):
        fetched.append(url)
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "cache"))
    argv = ["sweep", "--root", str(tmp_path / "ws"), "--variants", "baseline,mdlrc-clts", "--seeds", "2"]
    assert main([*argv, "--set", "dataset=cifar10", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("note: CIFAR-10 is not downloaded yet") == 1 and "4 runs in group" in out, out
    assert fetched == [] and not list((tmp_path / "ws").glob("sweep-*"))
    # the options the trainer checks before its data are still checked, by the same line as the launch's
    assert main([*argv, "--set", "dataset=cifar10", "--set", "diffusion.T=1000000", "--dry-run"]) == 2
    assert "diffusion steps T is 1,000,000, above the DSTAB_MAX_TIMESTEPS limit" in capsys.readouterr().err
    assert fetched == []
    # the launch downloads before anything is queued: offline, it is refused with the reason
    assert main([*argv, "--set", "dataset=cifar10"]) == 2
    err = capsys.readouterr().err
    assert "could not download CIFAR-10 (OSError: network is unreachable)" in err and len(fetched) == 1
    assert not list((tmp_path / "ws").glob("sweep-*"))  # nothing queued
