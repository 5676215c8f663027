"""compare: crossings, speed-ups with bootstrap intervals and a paired test, the verdict, labels
from config.json, and refusals (missing seeds, mixed datasets or metrics, deleted runs)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dstab.cli import main
from dstab.errors import DstabError
from dstab.experiments import compare, stats, verdict
from tests.compare_helpers import fake_group, fake_run


def linear(rate):  # FD falling linearly: the interpolated crossings are exact
    return lambda step, seed: 20.0 + seed - rate * step / 1000.0


def test_crossing_interpolates_between_evaluations():
    assert stats.crossing([100, 200, 300], [10.0, 6.0, 2.0], 4.0) == pytest.approx(250.0)
    assert stats.crossing([100, 200], [3.0, 1.0], 5.0) == 100.0  # already below at the first evaluation
    assert stats.crossing([100, 200], [9.0, 8.0], 5.0) is None


def test_sign_flip_p_is_exact():
    assert stats.sign_flip_p([1.0, 1.0, 1.0]) == pytest.approx(0.25)  # 2 of 8 flips are as extreme
    assert stats.sign_flip_p([0.0, 0.0, 0.0]) == 1.0
    assert stats.sign_flip_p([1.0, -1.0, 0.5, 2.0]) == pytest.approx(
        np.mean(
            [
                abs(np.dot(s, [1.0, -1.0, 0.5, 2.0])) / 4 >= 0.625 - 1e-12
                for s in np.array(np.meshgrid(*[[1, -1]] * 4)).T.reshape(-1, 4)
            ]
        )
    )


def test_bootstrap_interval_of_a_mean_covers_it():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 1.0, size=400)
    lo, hi = stats.bootstrap_mean_interval(x)
    half = 1.645 / np.sqrt(400) * x.std()  # the normal 90% interval
    assert lo == pytest.approx(x.mean() - half, abs=0.02) and hi == pytest.approx(x.mean() + half, abs=0.02)


def test_a_known_2x_shift_gives_2(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(4.0)}, steps=4000)
    result = compare.compare("g", root=tmp_path)
    plateau = next(r for r in result["speedups"] if r["target_name"] == "plateau")
    s = plateau["iterations"]
    assert s["estimate"] == pytest.approx(2.0, rel=1e-9) and s["low"] <= 2.0 <= s["high"]
    assert s["p"] == pytest.approx(0.25) and s["never_reached"] == []
    # wall-clock: 0.1 s a step in both, so the same 2x; images seen: same batch, same 2x
    assert plateau["wall"]["estimate"] == pytest.approx(2.0, rel=1e-6)
    assert plateau["images"]["estimate"] == pytest.approx(2.0, rel=1e-9)
    # the plateau is the mean over seeds of the last 5 evaluations (3600..4000) of the baseline
    assert result["plateau"] == pytest.approx(
        np.mean([20 + s - 2 * st / 1000 for s in (0, 1, 2) for st in range(3600, 4001, 100)])
    )
    assert [r["target_name"] for r in result["speedups"]] == ["plateau", "easier 10%", "easier 25%", "easier 50%"]
    assert all(r["iterations"]["estimate"] == pytest.approx(2.0, rel=1e-9) for r in result["speedups"])
    text = verdict.sentences(result)[0]
    assert text.startswith("mdlrc-clts reaches baseline's plateau") and "2.00x sooner than baseline" in text
    assert "p = 0.25 (the smallest p that many seeds allow) over 3 seeds" in text
    assert "faster than baseline" not in text or s["low"] > 1


def test_identical_curves_give_1_and_a_large_p(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "lr-matched": linear(2.0)}, steps=3000)
    result = compare.compare("g", root=tmp_path)
    for row in result["speedups"]:
        s = row["iterations"]
        assert s["low"] <= 1.0 <= s["high"] and s["p"] == 1.0
    assert "not distinguishable from baseline" in verdict.sentences(result)[0]


def test_never_reached_is_stated(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "md": lambda step, seed: 30.0}, steps=2000)
    result = compare.compare("g", root=tmp_path)
    s = result["speedups"][0]["iterations"]
    assert s["never_reached"] == [0, 1, 2] and s["estimate"] is None
    assert "md never reached baseline's plateau" in verdict.sentences(result)[0]
    assert verdict.claim(s) == "does not hold"  # not reaching the baseline's final quality at all


def test_labels_come_from_config_json(tmp_path):
    fake_group(
        tmp_path,
        "g",
        {"baseline": linear(2.0), "mdlrc-clts": linear(3.0)},
        steps=2000,
        batch_size=48,
        lr=3e-3,
        ema_rate=0.97,
    )
    result = compare.compare("g", root=tmp_path)
    md = verdict.markdown(result)
    assert "batch 48" in md and "lr 0.003" in md and "EMA 0.97" in md and "2000 iterations" in md
    assert "unet 24 base channels" in md and "beta1 0.8 md-lrc (floor 0.4), lr 0.003, t ~ clts" in md
    assert result["variants"]["baseline"]["images"][0] == 100 * 48


def test_fewer_than_two_complete_seeds_is_refused(tmp_path, capsys):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(3.0)}, seeds=(0,), steps=1000)
    fake_run(tmp_path, "g-baseline-s1", "g", "baseline", 1, lambda s: 10.0, steps=1000, state="running")
    with pytest.raises(DstabError, match="needs >= 2 complete seeds"):
        compare.compare("g", root=tmp_path)
    assert main(["compare", "g", "--root", str(tmp_path)]) == 2
    assert "needs >= 2 complete seeds of 'baseline'" in capsys.readouterr().err


def test_mixed_datasets_and_metrics_are_refused(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0)}, steps=1000)
    fake_run(
        tmp_path,
        "g-x",
        "g",
        "md",
        0,
        lambda s: 1.0,
        steps=1000,
        dataset="toy2d:8gaussians",
        arch={"arch": "mlp_denoiser", "hidden": 16},
    )
    with pytest.raises(DstabError, match="mixes datasets"):
        compare.compare("g", root=tmp_path)
    fake_group(tmp_path, "h", {"baseline": linear(2.0)}, steps=1000)
    fake_run(tmp_path, "h-x", "h", "md", 0, lambda s: 1.0, steps=1000, metric="fd_local@500x50ddim")
    with pytest.raises(DstabError, match="not evaluated with one metric"):
        compare.compare("h", root=tmp_path)
    with pytest.raises(DstabError, match="no runs in group 'nope'"):
        compare.compare("nope", root=tmp_path)


def test_a_deleted_run_marks_the_result_partial(tmp_path):
    paths = fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(4.0)}, steps=2000)
    shutil.rmtree(paths[-1])  # mdlrc-clts seed 2 deleted mid-sweep
    fake_run(tmp_path, "g-md-s0", "g", "md", 0, lambda s: 5.0, steps=2000, state="running")
    result = compare.compare("g", root=tmp_path)
    assert result["partial"] and result["variants"]["mdlrc-clts"]["seeds"] == [0, 1]
    assert result["speedups"][0]["iterations"]["estimate"] == pytest.approx(2.0)
    assert verdict.sentences(result)[-1].startswith("Partial result: not counted: g-md-s0 (")


def test_higher_is_better_metrics_cross_upwards(tmp_path):
    rise = {"baseline": lambda st, s: 0.1 + st / 10000, "mdlrc-clts": lambda st, s: 0.1 + 2 * st / 10000}
    fake_group(tmp_path, "g", rise, steps=3000, metric="mode_precision@500x50ddim")
    result = compare.compare("g", root=tmp_path)
    assert result["higher_is_better"] and result["plateau"] == pytest.approx(0.1 + 0.28)
    assert result["speedups"][0]["iterations"]["estimate"] == pytest.approx(2.0)


def test_cli_writes_markdown_json_and_figures(tmp_path, capsys):
    fake_group(
        tmp_path / "runs",
        "g",
        {"baseline": linear(2.0), "mdlrc-clts": linear(4.0), "lr-matched": linear(4.0)},
        steps=2000,
    )
    out = tmp_path / "report"
    assert main(["compare", "g", "--root", str(tmp_path / "runs"), "--out", str(out)]) == 0
    saved = json.loads((out / "compare.json").read_text())
    assert {r["reference"] for r in saved["speedups"]} == {"baseline", "lr-matched"}
    md = (out / "compare.md").read_text()
    assert "mdlrc-clts reaches baseline's plateau (17.4) 1.00x sooner than lr-matched" in md  # same target
    assert "| plateau" in md and "![vs iterations](curves-iterations.png)" in md
    for axis in ("iterations", "images", "wall"):
        assert (out / f"curves-{axis}.png").stat().st_size > 1000 and (out / f"curves-{axis}.html").exists()
    assert "The paper's claim" in capsys.readouterr().out
