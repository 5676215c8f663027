"""The surface / interpolate / precompute commands, and the torchrun split of a surface."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dstab import cache, checkpoints, cli, zoo, zooresults
from dstab.analysis import cost, landscape, results
from dstab.analysis.specs import ProbeSpec
from dstab.probes import dm_probe
from tests.conftest import TOY_GAN, save_gan, write_zoo

ROOT = Path(__file__).resolve().parent.parent


def test_surface_command_writes_json_npz_and_figures_then_hits_the_cache(ckpts, caches, capsys):
    args = ["surface", str(ckpts["toy_dm"]), "--grid", "5", "--radius", "0.5", "--timestep", "50"]
    assert cli.main([*args, "--batch-size", "16", "--out", str(caches / "out"), "--device", "cpu"]) == 0
    stem = caches / "out" / "surface_toy_dm_t50"
    record = json.loads(stem.with_suffix(".json").read_text())
    arrays = np.load(stem.with_suffix(".npz"))
    probe = dm_probe(checkpoints.load(ckpts["toy_dm"]), 50, 16)
    direct = landscape.surface(probe, grid=5, radius=0.5)
    np.testing.assert_array_equal(arrays["loss"], direct.loss)
    assert record["arrays"]["loss"][2][2] == direct.centre_loss and record["source"] == "computed"
    assert record["metrics"] == pytest.approx(direct.meta["metrics"])
    assert stem.with_suffix(".png").stat().st_size > 0 and stem.with_suffix(".html").stat().st_size > 0
    assert cli.main([*args, "--batch-size", "16", "--out", str(caches / "out"), "--device", "cpu"]) == 0
    assert json.loads(stem.with_suffix(".json").read_text())["source"] == "user"
    assert "centre loss" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(ckpts, caches, capsys):
    cases = [
        (["surface", str(ckpts["toy_dm"]), "--grid", "2", "--timestep", "5"], ">= 3"),
        (["surface", str(ckpts["toy_dm"]), "--grid", "5", "--role", "g"], "GANs only"),
        (["surface", str(ckpts["toy_gan"]), "--grid", "5", "--timestep", "5"], "DMs only"),
        (["surface", "digits/no-such", "--grid", "5"], "neither a checkpoint file nor a zoo id"),
        (["interpolate", str(ckpts["toy_dm"]), str(ckpts["digits_dm"]), "--timestep", "5"], "different arch"),
        (["interpolate", str(ckpts["toy_dm"]), str(ckpts["toy_gan"])], "cannot interpolate a dm"),
    ]
    for argv, match in cases:
        assert cli.main([*argv, "--out", str(caches / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error:") and match in err


def _mini_zoo(root: Path, ckpts) -> None:
    """A zoo over the test checkpoints: one DM run and one GAN run, early and final."""
    early_gan = save_gan(root / "gan_early.safetensors", TOY_GAN, "toy2d:8gaussians", seed=1)
    write_zoo(
        root,
        {
            "toy2d/dm-eps-s0": ("dm", [], {"final": ckpts["toy_dm"], "early": ckpts["toy_dm_b"]}),
            "toy2d/gan-s0": ("gan", [], {"final": ckpts["toy_gan"], "early": early_gan}),
        },
    )


def landscape_spec(role: str):
    return replace(zooresults.SURFACE, grid=5, probe=ProbeSpec(role=role, batch_size=8))


def test_precompute_fills_the_shipped_cache_and_pages_find_it(ckpts, caches, monkeypatch):
    _mini_zoo(caches / "zoo", ckpts)
    monkeypatch.setattr(zooresults, "DM_TIMESTEPS", (50,))
    monkeypatch.setattr(zooresults, "SURFACE_TIMESTEPS", (50, 500))
    monkeypatch.setattr(zooresults, "SURFACE", replace(zooresults.SURFACE, grid=5, probe=ProbeSpec(batch_size=8)))
    monkeypatch.setattr(zooresults, "CURVE", replace(zooresults.CURVE, steps=4))
    assert cli.main(["precompute", "--only", "surface,interpolate", "--device", "cpu"]) == 0
    shipped = list((caches / "zoo" / "results").rglob("*.json"))
    # surfaces: the DM at every page timestep, the GAN for two roles; interpolations: the DM at one timestep
    assert len(list((caches / "zoo" / "results" / "surface").glob("*.json"))) == 2 + 2
    assert len(shipped) == (2 + 2) + (1 + 2)
    found = results.get(landscape_spec("d"), [zoo.load_checkpoint("toy2d/gan-s0")])
    s, source = found.arrays, found.source
    assert source == "shipped" and s["loss"].shape == (5, 5)
    a, b = zoo.load_checkpoint("toy2d/dm-eps-s0"), zoo.load_checkpoint("toy2d/dm-eps-s0", "early")
    curve_spec = replace(zooresults.CURVE, probe=ProbeSpec(timesteps=(50,), batch_size=8), steps=4)
    found = results.get(curve_spec, [a, b])
    c, source = curve_spec.read(found), found.source
    assert source == "shipped" and c.meta["loss_a"] == pytest.approx(c.loss[c.alphas == 1][0])
    # no result went to the user cache (it may hold the memory guard's table, sizing/)
    assert not [f for f in (caches / "cache").rglob("*.json") if f.parent.name != "sizing"]
    assert cli.main(["precompute", "--only", "fourier"]) == 2


def test_torchrun_split_gives_the_single_process_grid(ckpts, caches):
    """torchrun --standalone: its agent binds the rendezvous store to a port the OS picks and every rank is
    its client (no port found free and bound later); the timeout guards a hang, it is no speed limit."""
    out = caches / "tr"
    # the CLI twice in one process (the group is joined once and kept), then whether the rank left its
    # process group to the interpreter's teardown (a gloo group left open aborted a rank now and then,
    # after its work: "terminate called without an active exception"); this check runs last at exit
    rank = caches / "rank.py"
    rank.write_text(
        "import atexit, sys\nimport torch.distributed as dist\nfrom dstab.cli import main\n"
        "atexit.register(lambda: print('process group open at exit:', dist.is_initialized(), flush=True))\n"
        "other = [a if a != '300' else '500' for a in sys.argv[1:]]\n"
        "other[other.index('--out') + 1] += '-t500'\n"
        "sys.exit(main(sys.argv[1:]) or main(other))\n"
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(rank)]
    cmd += ["surface", str(ckpts["toy_dm"]), "--grid", "5", "--radius", "0.5", "--timestep", "300"]
    cmd += ["--batch-size", "16", "--out", str(out), "--device", "cpu"]
    run_env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("process group open at exit: False") == 2, done.stdout[-2000:]
    record = json.loads((out / "surface_toy_dm_t300.json").read_text())
    assert record["world_size"] == 2 and record["rows"] == [0, 1, 2, 3, 4]
    probe = dm_probe(checkpoints.load(ckpts["toy_dm"]), 300, 16)
    single = landscape.surface(probe, grid=5, radius=0.5)
    np.testing.assert_allclose(np.load(out / "surface_toy_dm_t300.npz")["loss"], single.loss, rtol=1e-6)
    second = json.loads((caches / "tr-t500" / "surface_toy_dm_t500.json").read_text())
    assert second["world_size"] == 2 and second["rows"] == [0, 1, 2, 3, 4]  # the group kept, used again
    single = landscape.surface(dm_probe(checkpoints.load(ckpts["toy_dm"]), 500, 16), grid=5, radius=0.5)
    np.testing.assert_allclose(np.load(caches / "tr-t500" / "surface_toy_dm_t500.npz")["loss"], single.loss, rtol=1e-6)
    # rank 0 alone wrote each result, one per surface (the user cache also holds the memory guard's table)
    assert len(list((cache.user_dir() / "surface").glob("*.json"))) == 2


def test_costly_work_is_announced_on_one_line_before_it_starts(ckpts, caches, capsys, monkeypatch):
    monkeypatch.setattr(cost, "WARN_SECONDS", 0.0)
    argv = ["surface", str(ckpts["toy_dm"]), "--grid", "3", "--timestep", "9", "--batch-size", "4"]
    assert cli.main([*argv, "--out", str(caches / "out"), "--device", "cpu"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "warning:" in ln]
    assert len(lines) == 1 and "9 loss evaluations" in lines[0] and " min;" in lines[0]


def test_engine_flag_selects_loss_landscapes_with_the_same_numbers(ckpts, caches):
    base = ["surface", str(ckpts["toy_gan"]), "--grid", "3", "--radius", "0.3", "--role", "d", "--batch-size", "8"]
    for engine in ("dstab", "loss-landscapes"):
        assert cli.main([*base, "--engine", engine, "--out", str(caches / engine), "--device", "cpu"]) == 0
    ours, ref = (np.load(caches / e / "surface_toy_gan_d.npz")["loss"] for e in ("dstab", "loss-landscapes"))
    np.testing.assert_allclose(ref, ours, rtol=1e-5)
    record = json.loads((caches / "loss-landscapes" / "surface_toy_gan_d.json").read_text())
    assert record["engine"] == "loss-landscapes" and "planar_interpolation" in record["strategy"]


def test_dataset_option_picks_the_probe_data_and_enters_the_cache_key(ckpts, caches):
    """--dataset: the header's own dataset named again hits the same result; another dataset is another
    result (computed, other numbers), never the cached one."""
    base = ["surface", str(ckpts["toy_dm"]), "--grid", "3", "--radius", "0.5", "--timestep", "50"]
    base += ["--batch-size", "16", "--device", "cpu"]

    def run(name: str, *extra: str) -> dict:
        assert cli.main([*base, *extra, "--out", str(caches / name)]) == 0
        return json.loads((caches / name / "surface_toy_dm_t50.json").read_text())

    own = run("own")
    same = run("same", "--dataset", "toy2d:8gaussians")
    other = run("other", "--dataset", "toy2d:checkerboard")
    assert own["source"] == "computed" and same["source"] == "user" and same["arrays"] == own["arrays"]
    assert other["source"] == "computed" and other["arrays"]["loss"] != own["arrays"]["loss"]
    bundle = checkpoints.load(ckpts["toy_dm"])
    direct = dm_probe(bundle, 50, 16, dataset="toy2d:checkerboard")
    assert other["arrays"]["loss"][1][1] == pytest.approx(float(direct.loss()), rel=1e-6)  # the centre: the picked data
    assert run("other", "--dataset", "toy2d:checkerboard")["source"] == "user"


def test_dataset_option_changes_every_specs_key(ckpts):
    from dstab.analysis.specs import ConsistencySpec, HessianSpec, SurfaceSpec

    b = checkpoints.load(ckpts["toy_dm"])
    own, named = ProbeSpec(timesteps=(50,)), ProbeSpec(timesteps=(50,), dataset="toy2d:8gaussians")
    other = ProbeSpec(timesteps=(50,), dataset="toy2d:swissroll")
    assert own.params(b) == named.params(b) and own.params(b)["dataset"] == "toy2d:8gaussians"  # the header's
    assert other.params(b) == {**own.params(b), "dataset": "toy2d:swissroll"}
    assert other.unit_key(b, "cpu") != own.unit_key(b, "cpu")
    h = HessianSpec()
    picked = replace(h, probe=replace(h.probe, timesteps=(50,), dataset="toy2d:swissroll"))
    keys = [s.params([b]) for s in (replace(picked, probe=own), picked)]
    assert keys[0]["probe"]["dataset"] == "toy2d:8gaussians" and keys[1]["probe"]["dataset"] == "toy2d:swissroll"
    assert keys[0]["probe"] == SurfaceSpec(probe=own).params([b])["probe"]  # one probe, one key part
    c = ConsistencySpec()
    assert c.params([b])["dataset"] is None and replace(c, dataset="toy2d:swissroll").params([b])["dataset"]


def test_dataset_option_is_refused_outside_the_one_rule_before_any_checkpoint_loads(caches, capsys, tmp_path):
    missing = str(tmp_path / "no-such.safetensors")  # the dataset is refused first
    cases = [
        (["surface", missing, "--dataset", "folder:/etc?size=8"], "outside the folders"),
        (["interpolate", missing, "--dataset", "cifar10:/"], "outside the folders"),
        (["surface", missing, "--dataset", "imagenet"], "is not one dstab knows"),
        (["surface", missing, "--dataset", "/etc/passwd"], "is not one dstab knows"),
        (["surface", missing, "--dataset", " "], "--dataset is empty"),
        (["hessian", missing, "-o", str(tmp_path / "h"), "--dataset", "folder:"], "names no folder"),
        (["consistency", missing, missing, "-o", str(tmp_path / "c"), "--dataset", "x"], "not one dstab knows"),
    ]
    for argv, match in cases:
        assert cli.main([*argv, "--out", str(tmp_path / "o")] if argv[0] in ("surface", "interpolate") else argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --dataset") and match in err[0], (argv, err)


def test_a_folder_inside_the_allowed_roots_is_accepted(tmp_path, monkeypatch):
    from dstab import confine
    from dstab.errors import DstabError

    monkeypatch.setenv("DSTAB_ALLOWED_ROOTS", str(tmp_path / "data"))
    (tmp_path / "data" / "faces").mkdir(parents=True)
    spec = f"folder:{tmp_path / 'data' / 'faces'}?size=16"
    assert confine.chosen_dataset(spec) == spec and confine.chosen_dataset("toy2d:swissroll") == "toy2d:swissroll"
    with pytest.raises(DstabError, match="outside the folders"):
        confine.chosen_dataset(f"folder:{tmp_path / 'elsewhere'}")
