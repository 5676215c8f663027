"""CLI hessian/consistency and `dstab report` on random-weight checkpoints in a miniature zoo."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dstab import checkpoints, cli, probes, report, zooresults
from dstab.analysis import consistency as cons
from dstab.analysis import hessian, results
from tests.conftest import write_zoo

torch.set_num_threads(1)
TINY = ["--top-k", "1", "--trace-samples", "3", "--slq-runs", "1", "--slq-steps", "6"]


def test_cli_hessian_writes_json_npz_png_matching_the_api(ckpts, caches, capsys):
    out = caches / "h"
    args = ["hessian", str(ckpts["toy_dm"]), "-o", str(out), "--timesteps", "10,500", "--batch-size", "8", *TINY]
    assert cli.main([*args, "--device", "cpu"]) == 0
    meta = json.loads((out / "hessian_toy_dm_t10-500.json").read_text())
    arrays = np.load(out / "hessian_toy_dm_t10-500.npz")
    assert (out / "hessian_toy_dm_t10-500.png").stat().st_size > 0 and meta["source"] == "computed"
    probe = probes.dm_probe(checkpoints.load(ckpts["toy_dm"]), [10, 500], batch_size=8)
    direct = hessian.spectrum(probe, top_k=1, trace_samples=3, slq_runs=1, slq_steps=6).summary()
    assert meta["lambda_1"] == pytest.approx(direct["lambda_1"], rel=1e-6)
    assert meta["trace"] == pytest.approx(direct["trace"], rel=1e-6)
    np.testing.assert_allclose(arrays["top_eigenvalues"], [direct["lambda_1"]], rtol=1e-6)
    assert "lambda_1" in capsys.readouterr().out
    # the second run is served by the user cache with the same numbers
    assert cli.main([*args, "--device", "cpu"]) == 0
    again = json.loads((out / "hessian_toy_dm_t10-500.json").read_text())
    assert again["source"] == "user" and again["lambda_1"] == meta["lambda_1"]


def test_cli_hessian_lambda_min_converged_or_marked(ckpts, caches, capsys):
    base = ["hessian", str(ckpts["toy_gan"]), "--role", "d", "--batch-size", "8", *TINY, "--device", "cpu"]
    assert cli.main([*base, "-o", str(caches / "a")]) == 0
    meta = json.loads((caches / "a" / "hessian_toy_gan_d.json").read_text())
    assert meta["lambda_min_converged"] is False and meta["lambda_min_error_bound"] is None
    assert "(unconverged)" in capsys.readouterr().out
    assert cli.main([*base, "-o", str(caches / "b"), "--lambda-min", "--block", "1"]) == 0
    meta = json.loads((caches / "b" / "hessian_toy_gan_d.json").read_text())
    assert meta["lambda_min_converged"] is True and meta["settings"]["block"] == 1
    assert meta["lambda_min_steps"] > 0 and meta["lambda_min_error_bound"] >= 0
    assert f"lambda_min {meta['lambda_min']:.4g} +- " in capsys.readouterr().out


def test_cli_hessian_pyhessian_engine_on_a_gan(ckpts, caches):
    out = caches / "g"
    assert (
        cli.main(
            [
                "hessian",
                str(ckpts["toy_gan"]),
                "-o",
                str(out),
                "--role",
                "d",
                "--engine",
                "pyhessian",
                "--batch-size",
                "8",
                *TINY,
            ]
        )
        == 0
    )
    meta = json.loads((out / "hessian_toy_gan_d.json").read_text())
    assert meta["settings"]["engine"] == "pyhessian" and meta["lambda_min"] is None
    probe = probes.gan_probe(checkpoints.load(ckpts["toy_gan"]), "d", batch_size=8)
    ours = hessian.spectrum(probe, top_k=1, trace_samples=3, slq_runs=1, slq_steps=6)
    assert meta["trace"] == pytest.approx(ours.trace, rel=1e-5)  # same Rademacher vectors


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--timesteps", "a,b"], "integers separated by commas"),
        (["--timesteps", "5000"], "outside 0..999"),
        (["--role", "g"], "applies to GANs only"),
        (["--top-k", "1000"], "exceeds the number of analysed parameters"),  # the toy DM has 482
        (["--top-k", "100000"], "above the DSTAB_MAX_TOP_K limit"),  # refused before the checkpoint is read
    ],
)
def test_cli_hessian_bad_input_exits_2(ckpts, caches, capsys, argv, message):
    assert cli.main(["hessian", str(ckpts["toy_dm"]), "-o", str(caches / "x"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_consistency(ckpts, caches, capsys):
    out = caches / "c"
    argv = [
        "consistency",
        str(ckpts["toy_dm"]),
        str(ckpts["toy_dm"]),
        str(ckpts["toy_dm_b"]),
        "-o",
        str(out),
        "-n",
        "5",
        "--sampler",
        "ddim",
        "--steps",
        "3",
        "--eta",
        "1",
    ]
    assert cli.main(argv) == 0
    meta = json.loads((out / "consistency_toy_dm_toy_dm_toy_dm_b.json").read_text())
    assert meta["psnr_vs_first_db"][0] == 100.0 and meta["psnr_vs_first_db"][1] < 100.0
    assert meta["C_db"] == pytest.approx(np.mean(meta["psnr_vs_first_db"]))
    assert np.load(out / "consistency_toy_dm_toy_dm_toy_dm_b.npz")["samples"].shape == (3, 5, 2)
    assert (out / "consistency_toy_dm_toy_dm_toy_dm_b.png").exists() and "C(q) =" in capsys.readouterr().out
    assert cli.main(["consistency", str(ckpts["toy_dm"]), "-o", str(out), "--steps", "3"]) == 2


def _mini_zoo(root, ckpts) -> None:
    """A zoo over the random-weight toy checkpoints, final stages only."""
    write_zoo(
        root,
        {
            "toy2d/dm-eps-s0": ("dm", ["dm-init", "dm-structure"], {"final": ckpts["toy_dm"]}),
            "toy2d/dm-eps-s1": ("dm", ["dm-init"], {"final": ckpts["toy_dm_b"]}),
            "toy2d/dm-x0-s0": ("dm", ["dm-x0"], {"final": ckpts["toy_dm_x0"]}),
            "toy2d/gan-s0": ("gan", ["gan-init", "gan-structure"], {"final": ckpts["toy_gan"]}),
        },
    )


def _x0_group(root, ckpts) -> list[str]:
    """Add x0-prediction DMs of three inits (group x0-init) to the mini zoo; returns their ids."""
    manifest = json.loads((root / "manifest.json").read_text())
    ids = []
    for s, key in enumerate(("toy_dm_x0", "toy_dm_x0_b", "toy_dm_x0_c")):
        eid = f"toy2d/dm-x0-s{s}"
        dst = root / eid / "final.safetensors"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(ckpts[key].read_bytes())
        file = {"path": f"{eid}/final.safetensors", "step": 0, "sha256": checkpoints.file_sha256(dst)}
        groups = ["dm-x0", "x0-init"] if s == 0 else ["x0-init"]
        manifest["entries"][eid] = {"id": eid, "kind": "dm", "groups": groups, "checkpoints": {"final": file}}
        ids.append(eid)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return ids


def test_report_runs_the_papers_x0_test_on_three_x0_models(ckpts, caches):
    """With x0-init holding three models, the x0 row is C of those three (not a pair); the pair stays."""
    root = caches / "zoo"
    _mini_zoo(root, ckpts)
    ids = _x0_group(root, ckpts)
    text = report.build(caches / "RESULTS.md", root, quick=True, log=lambda m: None).read_text()
    bundles = [checkpoints.load(root / i / "final.safetensors") for i in ids]
    direct = cons.consistency(bundles, num=4, seed=0, sampler="ddim", steps=5).score
    eps = [checkpoints.load(root / f"toy2d/dm-eps-s{s}/final.safetensors") for s in (0, 1)]
    eps_c = cons.consistency(eps, num=4, seed=0, sampler="ddim", steps=5).score
    pair = cons.consistency([eps[0], bundles[0]], num=4, seed=0, sampler="ddim", steps=5).score
    assert f"| toy2d | ddim | {eps_c:.2f} | {direct:.2f} | – | {pair:.2f} |" in text
    line = next(x for x in text.splitlines() if "x0 group toy2d/dm-x0-s0, toy2d/dm-x0-s1, toy2d/dm-x0-s2" in x)
    assert ("holds" in line) == (direct < eps_c) and "n = 2" in line  # models 2..3 vs model 1
    assert "eps vs x0 pair toy2d/dm-eps-s0, toy2d/dm-x0-s0" in text and "stand-in" in text


def test_report_on_a_mini_zoo(ckpts, caches):
    root = caches / "zoo"
    _mini_zoo(root, ckpts)
    logs = []
    path = report.build(caches / "RESULTS.md", root, quick=True, log=logs.append)
    text = path.read_text()
    assert "<!-- BEGIN dstab report -->" in text and "## The paper's comparisons on the zoo" in text
    assert "Do not edit" in text
    # the DM-inits cell equals Eq. 1 computed directly on the same group
    bundles = [checkpoints.load(root / f"toy2d/dm-eps-s{s}/final.safetensors") for s in (0, 1)]
    direct = cons.consistency(bundles, num=4, seed=0, sampler="ddim", steps=5).score
    assert f"| toy2d | ddim | {direct:.2f} | – | – | – |" in text
    assert "x0 group" not in text and "weaker test than the paper's" in text  # one x0 model: the pair, labelled
    assert "| toy2d/dm-eps-s0 | dm |" in text and "| toy2d/gan-s0 | gan-g |" in text
    assert "DM lambda_1 below GAN's (gan-g)" in text
    assert "No cached surface or interpolation results" in text
    assert any("(computed)" in m for m in logs)
    # a second report reads everything from the cache and writes the same tables
    logs.clear()
    again = report.build(caches / "RESULTS2.md", root, quick=True, log=logs.append).read_text()
    assert all("(user)" in m for m in logs)
    assert again.split("\n", 3)[3] == text.split("\n", 3)[3]


def test_precompute_tasks_fill_the_shipped_cache(ckpts, caches):
    precompute = zooresults
    root = caches / "zoo"
    _mini_zoo(root, ckpts)
    assert list(precompute.TASKS) == ["surface", "interpolate", "hessian", "consistency"]
    helped = subprocess.run(
        [sys.executable, "-m", "dstab", "precompute", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    assert "default all: surface, interpolate, hessian, consistency" in " ".join(helped.split())
    assert precompute.run(["hessian"], "toy2d/gan-s0", log=lambda m: None) == 2  # roles g and d
    assert len(list((root / "results" / "hessian").glob("*.json"))) == 2
    # the report's default request for the same probe is served from the shipped cache
    bundle = checkpoints.load(root / "toy2d/gan-s0/final.safetensors")
    spec = replace(zooresults.HESSIAN, probe=replace(zooresults.HESSIAN.probe, role="d"))
    found = results.get(spec, [bundle])
    result, source = spec.read(found), found.source
    assert source == "shipped" and result.summary()["settings"]["slq_steps"] == zooresults.HESSIAN.slq_steps


def _rough(eid, t=(), role=None, settings=True, prediction=None, **metrics):
    kind = "gan" if "/gan" in eid else "dm"
    return {
        "analysis": "surface" if "curvature_roughness" in metrics else "interpolate",
        "id": eid,
        "checkpoints": [f"{eid}@final"],
        "probe": kind,
        "kind": kind,
        "t": t,
        "role": role,
        "prediction": prediction,
        "report_settings": settings,
        "metrics": metrics,
    }


def test_roughness_verdicts_compare_dm_timesteps_with_each_gan_loss():
    rows = [
        _rough("toy2d/dm-eps-s0", (50,), roughness=0.1),
        _rough("toy2d/dm-eps-s1", (50,), roughness=0.3),  # t = 50: DM mean 0.2
        _rough("toy2d/dm-eps-s0", (500,), roughness=0.5),
        _rough("toy2d/dm-eps-s1", (500,), roughness=0.7),  # t = 500: DM mean 0.6
        _rough("toy2d/dm-x0-s0", (50,), prediction="x0", roughness=9.0),  # the x0 counterexample: left out
        _rough("toy2d/gan-s1", role="g", roughness=1.0),
        _rough("toy2d/gan-s2", role="g", roughness=2.0),  # G: 1.5, rougher than the DM at both t
        _rough("toy2d/gan-s0", role="g", roughness=0.01),  # collapsed: excluded
        _rough("toy2d/gan-s1", role="d", roughness=0.4),  # D: 0.4, between the two DM means
        _rough("toy2d/gan-s1", role="d", settings=False, roughness=100.0),  # another radius: not compared
    ]
    lines = report._roughness_verdicts(rows, {"toy2d/gan-s0"})
    assert lines[0] == report.ROUGHNESS_BASIS
    g = next(x for x in lines if "interpolate" in x and "G loss" in x)
    assert g == (
        "- toy2d: DM interpolate smoother than GAN's G loss by roughness (lower is smoother): holds "
        "(GAN 1.5, n = 2; DM at t = 50: 0.2, 500: 0.6, n = 2); excluded as collapsed: toy2d/gan-s0"
    )
    d = next(x for x in lines if "interpolate" in x and "D loss" in x)
    assert "**holds at 1 of 2 DM timesteps**, not at t = 500 (GAN 0.4, n = 1;" in d
    assert any("curvature_roughness" in x and x.endswith("n/a") for x in lines)  # no surface rows


def test_roughness_verdict_does_not_hold_when_no_timestep_agrees():
    rows = [_rough("digits/dm-eps-s0", (t,), curvature_roughness=0.9, convex_fraction=0.5) for t in (1, 10)]
    rows += [_rough("digits/gan-s0", role="d", curvature_roughness=0.3, convex_fraction=0.9)]
    lines = report._roughness_verdicts(rows)
    rough = next(x for x in lines if "D loss by curvature_roughness" in x)
    assert "**does not hold on the zoo** (GAN 0.3, n = 1; DM at t = 1: 0.9, 10: 0.9, n = 1)" in rough
    assert any("G loss by convex_fraction" in x and x.endswith("n/a") for x in lines)  # no G-loss surface
