"""compare: the four readouts of a group's runs paired by seed, their intervals and tests, the one
verdict (faster only when every readout agrees; 'depends on the readout' naming the disagreement;
no verdict under 3 seeds; Holm), time from CPU seconds and wall-clock only for runs side by side,
the metric's floor and noise, runs from summary files, labels from config.json, and refusals."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from dstab.cli import main
from dstab.errors import DstabError
from dstab.experiments import compare, speedup, verdict
from dstab.experiments.protocol import Protocol
from tests.compare_helpers import fake_group, fake_run


def linear(rate):  # FD falling linearly: the interpolated crossings are exact
    return lambda step, seed: 20.0 + seed - rate * step / 1000.0


def noisy_decay(level, tau, seeds_shift=0.02):
    """level x (1 + 9 exp(-step / tau)), with +-3% alternating evaluation noise: plateaus, on a known side."""

    def f(step, seed):
        t = tau * (1 + seeds_shift * seed)
        alt = 1.0 if (step // 100 + seed) % 2 == 0 else -1.0
        return level * (1 + 9 * np.exp(-step / t)) * np.exp(0.03 * alt)

    return f


def one(result, variant, reference="baseline"):
    return next(c for c in result["comparisons"] if c["variant"] == variant and c["reference"] == reference)


def test_a_known_2x_shift_gives_2_on_the_ladder_and_exact_levels(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(4.0)}, steps=4000)
    result = compare.compare("g", root=tmp_path, floor=False)
    c = one(result, "mdlrc-clts")
    lad, fin = c["readouts"]["ladder"], c["readouts"]["final"]
    assert lad["ratio"] == pytest.approx(2.0, rel=1e-9) and lad["n"] == 3 and lad["method"] == "Student-t"
    assert lad["low"] == pytest.approx(2.0) and lad["p"] == pytest.approx(0.0, abs=1e-12)  # no spread
    assert lad["p_sign"] == pytest.approx(0.25) == lad["p_floor"]  # the sign-flip check, at its floor
    # final level: the mean of the last 10 evaluations (3100..4000, mean step 3550) of each seed
    want = np.mean([np.log((20 + s - 2 * 3.55) / (20 + s - 4 * 3.55)) for s in (0, 1, 2)])
    assert np.log(fin["ratio"]) == pytest.approx(want)
    # straight lines never stop falling: no own plateau, said so; the verdict names it
    assert c["readouts"]["plateau"]["not_reached"] == {"reference": [0, 1, 2], "variant": [0, 1, 2]}
    assert c["verdict"]["word"] == verdict.DEPENDS and "own plateau: could not be read" in c["verdict"]["reason"]
    # wall-clock: 0.1 s a step in both, the runs side by side, so the same 2x with an interval
    wall = c["time"]["wall"]["ladder"]
    assert wall["ratio"] == pytest.approx(2.0, rel=1e-6) and wall["low"] is not None
    assert "baseline is still improving at 4000 iterations on seeds [0, 1, 2]" in verdict.length_sentence(result)


def test_identical_curves_give_1_and_no_difference(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "lr-matched": linear(2.0)}, steps=3000)
    c = one(compare.compare("g", root=tmp_path, floor=False), "lr-matched")
    for k in ("ladder", "area", "final"):
        assert c["readouts"][k]["ratio"] == pytest.approx(1.0) and c["readouts"][k]["p"] == 1.0
    assert c["verdict"]["word"] == verdict.DEPENDS
    assert "ladder crossings and area under the log curve and final level: show no difference" in c["verdict"]["reason"]


def test_crossing_sooner_but_ending_higher_depends_on_the_readout(tmp_path):
    curves = {
        "baseline": lambda step, s: 10 + 0.1 * s + 90 * np.exp(-step / 1000),
        "clts": lambda step, s: 14 + 0.1 * s + 86 * np.exp(-step / 400),  # falls faster, ends higher
    }
    fake_group(tmp_path, "g", curves, steps=4000)
    c = one(compare.compare("g", root=tmp_path, floor=False), "clts")
    classes = c["verdict"]["classes"]
    assert classes["ladder"] == "better" and classes["final"] == "worse"
    assert c["verdict"]["word"] == verdict.DEPENDS
    assert "ladder crossings" in c["verdict"]["reason"] and "final level" in c["verdict"]["reason"]
    assert "depends on the readout (" in verdict.sentence(c)


def test_every_readout_agreeing_past_holm_is_faster(tmp_path):
    curves = {"baseline": noisy_decay(10.0, 500), "mdlrc-clts": noisy_decay(9.0, 250)}
    fake_group(tmp_path, "g", curves, seeds=range(10), steps=6000)
    c = one(compare.compare("g", root=tmp_path, floor=False), "mdlrc-clts")
    assert set(c["verdict"]["classes"].values()) == {"better"}
    assert c["readouts"]["plateau"]["method"] == "BCa" and c["readouts"]["plateau"]["ratio"] > 1.3
    assert max(r["p_holm"] for r in c["readouts"].values()) < 0.01 and c["verdict"]["word"] == verdict.FASTER
    fake_group(tmp_path, "h", curves, seeds=range(5), steps=6000)
    c5 = one(compare.compare("h", root=tmp_path, floor=False), "mdlrc-clts")
    assert c5["verdict"]["word"] == verdict.FASTER and c5["readouts"]["plateau"]["method"] == "Student-t"
    # the sign-flip check sits at its 5-seed floor, which Holm over 4 tests could never have passed
    assert {r["p_sign"] for r in c5["readouts"].values()} == {0.0625} == {r["p_floor"] for r in c5["readouts"].values()}


def readout(ratio, low, high, p_holm, n=5, **more):
    return {"ratio": ratio, "low": low, "high": high, "p": p_holm, "p_holm": p_holm, "n": n, **more}


def test_agreeing_readouts_that_do_not_pass_holm_depend_on_the_readout():
    agree = {k: readout(1.2, 1.05, 1.4, 0.04) for k in ("ladder", "area", "final", "plateau")}
    c = {"seeds": [0, 1, 2, 3, 4], "readouts": agree}
    assert verdict.decide(c, Protocol())["word"] == verdict.FASTER
    c["readouts"] = {**agree, "final": readout(1.1, 1.01, 1.2, 0.2), "plateau": readout(0.8, 0.7, 0.9, 0.01)}
    v = verdict.decide(c, Protocol())
    assert v["word"] == verdict.DEPENDS and v["classes"]["final"] == "better, not significant"
    assert (
        "final level: point to the variant but do not reach significance after Holm (Holm p 0.2 > 0.1)" in v["reason"]
    )
    assert "own plateau: say it is worse" in v["reason"]
    c["seeds"] = [0, 1]
    assert verdict.decide(c, Protocol())["word"] == verdict.NO_VERDICT


def test_fewer_than_three_seeds_give_numbers_but_no_verdict(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(4.0)}, seeds=(0, 1), steps=3000)
    c = one(compare.compare("g", root=tmp_path, floor=False), "mdlrc-clts")
    assert c["readouts"]["ladder"]["ratio"] == pytest.approx(2.0) and c["verdict"]["word"] == verdict.NO_VERDICT
    assert "2 complete seeds, fewer than 3" in verdict.sentence(c)


def test_runs_started_under_different_loads_get_no_wall_clock_interval(tmp_path):
    day = 86_400.0
    for s in (0, 1, 2):  # the baseline on a loaded machine; the variant a day later, twice the throughput
        fake_run(tmp_path, f"g-baseline-s{s}", "g", "baseline", s, lambda st, s=s: linear(2.0)(st, s),
                 steps=3000, start=time.time() - 2 * day, wall_per_step=0.2, cpu_per_step=0.05)  # fmt: skip
        fake_run(tmp_path, f"g-clts-s{s}", "g", "clts", s, lambda st, s=s: linear(4.0)(st, s),
                 steps=3000, start=time.time() - day, wall_per_step=0.1, cpu_per_step=0.05)  # fmt: skip
    result = compare.compare("g", root=tmp_path, floor=False)
    c = one(result, "clts")
    wall, cpu, its = c["time"]["wall"]["ladder"], c["time"]["cpu"]["ladder"], c["readouts"]["ladder"]
    for s in ("0", "1", "2"):  # per seed: wall-clock adds the machines' 2x, CPU seconds (same cost a step) do not
        assert wall["per_seed"][s] == pytest.approx(its["per_seed"][s] + np.log(2.0))
        assert cpu["per_seed"][s] == pytest.approx(its["per_seed"][s])
    assert wall["low"] is None and wall["p"] is None and cpu["low"] == pytest.approx(its["low"])
    assert c["time"]["load"]["shared_period"] == [0.0, 0.0, 0.0]
    row = verdict.time_rows(result)[0]
    assert row["wall-clock, ladder"] == f"{wall['ratio']:.2f}x" and row["side by side"] == "no: no wall-clock interval"
    text = " ".join(verdict.time_sentences(result))
    assert "samples/s: reference 320-320, variant 640-640" in text and "the machine's load could explain" in text


def test_a_group_read_from_run_summaries_equals_the_workspace(tmp_path):
    fake_group(tmp_path / "runs", "g", {"baseline": linear(2.0), "mdlrc-clts": linear(3.0)}, steps=2000)
    live = compare.compare("g", root=tmp_path / "runs", floor=False)
    assert speedup.save_run_summaries("g", tmp_path / "kept", tmp_path / "runs") == 6
    for p in sorted((tmp_path / "runs").glob("g-*-s[12]")):
        shutil.rmtree(p)  # those run folders are gone; their summaries remain
    kept = compare.compare("g", root=tmp_path / "runs", summaries=tmp_path / "kept", floor=False)
    assert kept["comparisons"][0]["readouts"] == live["comparisons"][0]["readouts"]
    assert kept["variants"]["baseline"]["sources"] == ["summary", "workspace"]


def test_labels_come_from_config_json(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(3.0)}, steps=2000,
               batch_size=48, lr=3e-3, ema_rate=0.97)  # fmt: skip
    result = compare.compare("g", root=tmp_path, floor=False)
    md = verdict.markdown(result)
    assert "batch 48" in md and "lr 0.003" in md and "EMA 0.97" in md and "2000 iterations" in md
    assert "unet 24 base channels" in md and "beta1 0.8 md-lrc (floor 0.4), lr 0.003, t ~ clts" in md
    assert result["variants"]["baseline"]["images"][0] == 100 * 48
    assert "- final: log(mean of the reference's last 10 evaluations)" in md  # the definitions, in words


def test_a_protocol_change_is_used_and_said(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(3.0)}, steps=2000)
    result = compare.compare("g", Protocol(final_k=3), root=tmp_path, floor=False)
    assert result["definitions"]["final"].startswith("log(mean of the reference's last 3 evaluations)")
    assert result["protocol_source"].endswith("changed for this report: final_k 3")


def test_one_complete_seed_gives_its_numbers_and_no_seed_shared_is_refused(tmp_path, capsys):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(4.0)}, seeds=(0,), steps=4000)
    fake_run(tmp_path, "g-baseline-s1", "g", "baseline", 1, lambda s: 10.0, steps=4000, state="running")
    result = compare.compare("g", root=tmp_path, floor=False)
    c = one(result, "mdlrc-clts")
    assert c["readouts"]["ladder"]["ratio"] == pytest.approx(2.0) and c["readouts"]["ladder"]["low"] is None
    assert c["verdict"] == {"word": verdict.NO_VERDICT, "reason": "1 complete seed, fewer than 3",
                            "classes": dict.fromkeys(("ladder", "area", "final", "plateau"), "unreadable")}  # fmt: skip
    assert result["partial"] and "g-baseline-s1" in verdict.partial_note(result)
    fake_group(tmp_path, "h", {"baseline": linear(2.0)}, seeds=(0,), steps=1000)
    fake_group(tmp_path, "h", {"mdlrc-clts": linear(3.0)}, seeds=(1,), steps=1000)
    with pytest.raises(DstabError, match="needs a complete seed of 'baseline' and of another variant"):
        compare.compare("h", root=tmp_path, floor=False)
    assert main(["compare", "h", "--root", str(tmp_path)]) == 2
    assert "complete seeds: baseline [0], mdlrc-clts [1]" in capsys.readouterr().err


def test_mixed_datasets_and_metrics_are_refused(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0)}, steps=1000)
    fake_run(tmp_path, "g-x", "g", "md", 0, lambda s: 1.0, steps=1000, dataset="toy2d:8gaussians",
             arch={"arch": "mlp_denoiser", "hidden": 16})  # fmt: skip
    with pytest.raises(DstabError, match="mixes datasets"):
        compare.compare("g", root=tmp_path)
    fake_group(tmp_path, "h", {"baseline": linear(2.0)}, steps=1000)
    fake_run(tmp_path, "h-x", "h", "md", 0, lambda s: 1.0, steps=1000, metric="fd_local@500x50ddim")
    with pytest.raises(DstabError, match="not evaluated with one metric"):
        compare.compare("h", root=tmp_path)
    with pytest.raises(DstabError, match="no runs in group 'nope'"):
        compare.compare("nope", root=tmp_path)


def test_a_deleted_run_marks_the_result_partial(tmp_path):
    paths = fake_group(tmp_path, "g", {"baseline": linear(2.0), "mdlrc-clts": linear(4.0)}, steps=4000)
    shutil.rmtree(paths[-1])  # mdlrc-clts seed 2 deleted mid-sweep
    fake_run(tmp_path, "g-md-s0", "g", "md", 0, lambda s: 5.0, steps=4000, state="running")
    result = compare.compare("g", root=tmp_path, floor=False)
    assert result["partial"] and result["variants"]["mdlrc-clts"]["seeds"] == [0, 1]
    assert one(result, "mdlrc-clts")["readouts"]["ladder"]["ratio"] == pytest.approx(2.0)
    assert verdict.sentences(result)[-1].startswith("Partial result: not counted: g-md-s0 (")


def test_higher_is_better_metrics_cross_upwards(tmp_path):
    rise = {"baseline": lambda st, s: 0.1 + st / 10000, "mdlrc-clts": lambda st, s: 0.1 + 2 * st / 10000}
    fake_group(tmp_path, "g", rise, steps=3000, metric="mode_precision@500x50ddim")
    result = compare.compare("g", root=tmp_path, floor=False)
    c = one(result, "mdlrc-clts")
    assert result["higher_is_better"] and c["readouts"]["ladder"]["ratio"] == pytest.approx(2.0)
    assert c["readouts"]["final"]["ratio"] > 1 and c["readouts"]["area"]["ratio"] > 1  # higher is better


def test_the_metric_noise_from_repeat_evaluations_and_the_last_evaluations(tmp_path):
    fake_group(tmp_path, "g", {"baseline": linear(2.0), "clts": linear(2.0)}, steps=3000,
               repeat=lambda value: value * np.exp(0.1))  # fmt: skip
    noise = compare.compare("g", root=tmp_path, floor=False)["noise"]
    assert noise["repeat_sd_log"] == pytest.approx(0.1 / np.sqrt(2)) and noise["repeat_pairs"] == 6 * 3
    last = [20 + 0 - 2 * st / 1000 for st in range(2100, 3001, 100)]
    assert noise["reference_last_k_cv"][0] == pytest.approx(np.std(last, ddof=1) / np.mean(last))


def test_a_toy_metric_inside_its_floor_band_is_no_difference_detectable(tmp_path):
    toy = {"dataset": "toy2d:8gaussians", "arch": {"arch": "mlp_denoiser", "data_dim": 2, "hidden": 16}}
    ends = {"baseline": -0.002, "mdlrc-clts": 0.001}  # both inside the MMD^2 estimator's noise around 0
    # the same descent; they differ only once inside the band (from 2000 on, where the descent is < 0.0004)
    curves = {v: (lambda e: lambda st, s: 0.3 * np.exp(-st / 300) + e * (st > 2000))(e) for v, e in ends.items()}
    fake_group(tmp_path, "g", curves, steps=4000, every=200, metric="mmd2@500x50ddim", **toy)
    result = compare.compare("g", root=tmp_path)
    band = result["floor"]
    assert band["n"] == 500 and band["top"] == pytest.approx(band["mean"] + 2 * band["sd"])
    c = one(result, "mdlrc-clts")
    assert c["readouts"]["final"]["undetectable"].startswith("both final levels")
    assert verdict.cell(c["readouts"]["final"]) == "no difference detectable"
    assert c["verdict"]["word"] == verdict.DEPENDS
    assert "final level: no difference detectable (inside the metric's floor band)" in c["verdict"]["reason"]
    assert "2 of 2 variants end inside that band" in verdict.floor_sentence(result)


def test_cli_writes_markdown_json_and_figures(tmp_path, capsys):
    fall = {v: (lambda r: lambda st, s: 10 * linear(r)(st, s))(r) for v, r in (("baseline", 2), ("mdlrc-clts", 4))}
    fake_group(tmp_path / "runs", "g", {**fall, "lr-matched": fall["mdlrc-clts"]}, steps=2000, cpu_per_step=0.05)
    out = tmp_path / "report"
    assert main(["compare", "g", "--root", str(tmp_path / "runs"), "--out", str(out)]) == 0
    saved = json.loads((out / "compare.json").read_text())
    assert {c["reference"] for c in saved["comparisons"]} == {"baseline", "lr-matched"}
    md = (out / "compare.md").read_text()
    assert "| mdlrc-clts vs lr-matched | 3 | 1.00x [1.00, 1.00], p = 1, Holm 1; sign-flip p = 1 (floor 0.25) |" in md
    assert "![vs iterations](curves-iterations.png)" in md and "![vs cpu](curves-cpu.png)" in md
    for axis in ("iterations", "cpu"):
        assert (out / f"curves-{axis}.png").stat().st_size > 1000
    assert all((out / f"curves-{a}.html").exists() for a in compare.AXES)
    printed = capsys.readouterr().out
    assert "FD (local features), 250 samples, 10 DDIM steps: real data against the reference" in printed


def test_the_curves_figure_a_reviewer_can_read(tmp_path):
    from dstab.plots import compare as plots

    fall = {v: (lambda r: lambda st, s: 10 * linear(r)(st, s))(r) for v, r in (("baseline", 2), ("clts", 3))}
    fake_group(tmp_path, "g", fall, steps=3000, cpu_per_step=0.05, repeat=lambda value: value * 1.05)
    result = compare.compare("g", root=tmp_path)
    fig = plots.curves_figure(result, "iterations")
    y = fig.layout.yaxis
    assert fig.layout.xaxis.title.text == "iterations" and y.type == "log"
    assert y.title.text == "FD (local features), 250x10ddim (lower is better, log scale)"
    assert len(y.tickvals) >= 4 and list(y.ticktext) == [f"{v:.3g}" for v in y.tickvals]
    means = {t.name: t.line.color for t in fig.data if t.name and "mean of" in t.name}
    assert means == {"baseline (mean of 3, 90% t-band)": "#1f77b4", "clts (mean of 3, 90% t-band)": "#2ca02c"}
    floor, band = fig.data[0], fig.data[1]  # the floor beneath everything, then the baseline's t-band
    v = result["variants"]["baseline"]
    assert list(band.y) == v["high"] + v["low"][::-1] and band.fill == "toself"
    assert (
        floor.name.startswith("floor: real data vs reference (250 samples)") and floor.fillcolor == plots.FLOOR_COLOUR
    )
    assert max(floor.y) == pytest.approx(result["floor"]["top"]) and list(floor.x) == [100, 3000, 3000, 100]
    dotted = [t for t in fig.data if t.legendgroup == "ladder"]
    assert [t.y[0] for t in dotted] == pytest.approx(result["ladder"]["levels"]) and len(dotted) == 4
    assert dotted[0].name == "ladder levels: " + ", ".join(f"{lv:.4g}" for lv in result["ladder"]["levels"])
    assert not fig.layout.shapes and not fig.layout.annotations  # traces only: kaleido and figpng draw the same
    assert any(t.mode == "markers" and "repeat evaluation" in (t.name or "") for t in fig.data)
    assert plots.curves_figure(result, "cpu").layout.xaxis.title.text == "CPU seconds in training steps"


def test_log_ticks_are_at_least_four():
    from dstab.plots.compare import log_ticks

    assert log_ticks(90, 700) == [100, 200, 300, 500, 700]  # 1-2-5 would give three
    assert log_ticks(12, 700) == [20, 50, 100, 200, 500]
    assert len(log_ticks(150, 220)) >= 4 and all(150 <= t <= 220 for t in log_ticks(150, 220))


def test_a_report_over_some_variants_holds_only_their_comparisons_and_tests(tmp_path):
    curves = {"baseline": linear(2.0), "mdlrc-clts": linear(4.0), "lr-matched": linear(2.0), "edm": linear(3.0)}
    fake_group(tmp_path, "g", curves, steps=4000)
    fake_run(tmp_path, "g-edm-s9", "g", "edm", 9, lambda s: 5.0, steps=4000, state="running")
    whole = compare.compare("g", root=tmp_path, floor=False)
    some = compare.compare("g", root=tmp_path, floor=False, variants=["mdlrc-clts", "lr-matched"])
    pairs = [(c["variant"], c["reference"]) for c in some["comparisons"]]
    assert pairs == [("mdlrc-clts", "baseline"), ("lr-matched", "baseline"), ("mdlrc-clts", "lr-matched")]
    # 3 tests a comparison (straight lines reach no plateau); edm's unfinished run is not this report's
    assert (whole["tests"], some["tests"]) == (12, 9) and whole["partial"] and not some["partial"]
    lad = one(some, "mdlrc-clts")["readouts"]["ladder"]
    assert lad["p_sign"] == 0.25 and lad["p_holm"] == pytest.approx(0.0, abs=1e-12)  # the same 2x on every seed


def _rule_rate(n: int, effect: float, trials: int, seed: int) -> float:
    """Share of simulated reports in which the rule calls the first of two comparisons faster: 8 tests in
    one Holm family, four readouts per comparison whose per-seed log ratios have sd 0.1 and correlate
    0.8; the first comparison's true log ratio is `effect`, the second's 0."""
    rng, p = np.random.default_rng(seed), Protocol()
    cov = 0.01 * (np.full((4, 4), 0.8) + 0.2 * np.eye(4))
    fired = 0
    for _ in range(trials):
        comps = []
        for mean in (effect, 0.0):
            d = rng.multivariate_normal(np.full(4, mean), cov, size=n)  # seeds x readouts
            rs = {k: compare._summary(dict(enumerate(d[:, i])), p) for i, k in enumerate(verdict.READOUTS)}
            comps.append({"seeds": list(range(n)), "readouts": rs})
        compare._holm(comps)
        fired += verdict.decide(comps[0], p)["word"] != verdict.DEPENDS
    return fired / trials


def test_the_rule_with_no_effect_rarely_says_faster_and_with_one_says_it_more_often_with_seeds():
    """The seed counts users have (3-5). With no effect the shipped rule (percentile bootstrap, no
    Holm, one readout) said faster or slower 39% of the time at 3 seeds; this one at most 1% (measured
    over 3,000 reports: 0 / 0.07% / 0.2% at 3 / 4 / 5 seeds), under the protocol's 10%. With a true
    1.22x on every readout (log 0.2, per-seed sd 0.1) it says faster in about 5% / 25% / 50% of
    reports at 3 / 4 / 5 seeds: the price of requiring four readouts to pass Holm."""
    null = [_rule_rate(n, 0.0, 400, seed=n) for n in (3, 4, 5)]
    power = [_rule_rate(n, 0.2, 400, seed=10 + n) for n in (3, 4, 5)]
    assert max(null) <= 0.01 < Protocol().verdict_alpha
    assert power[0] < power[1] < power[2] and power[0] < 0.12 and 0.4 < power[2] < 0.6
