"""The head-to-head (issue 23 item 4): a report over several runs roots, every arm against the
reference in one Holm family, CLTS against each rule apart, the P(t) picture from the runs' own
timestep options, sentences from the numbers; refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dstab.cli import main
from dstab.errors import DstabError
from dstab.experiments import compare, groupruns, headtohead
from dstab.training import config as train_config
from dstab.training import timestep_field
from tests.compare_helpers import fake_group, fake_run
from tests.test_compare import noisy_decay

GROUP = "speedup-digits-confirm"
METRIC = "fd_local@1000x10ddim"  # the pre-registered metric; FD-sized curves sit far above its floor (top ~8.6)
ARMS = "baseline,mdlrc-clts,clts,lognormal,laplace,speed"


def two_roots(tmp_path):
    """Root A: baseline, mdlrc-clts, clts; root B: the rules (speed with one finished seed)."""
    a, b = tmp_path / "a" / "runs", tmp_path / "b" / "runs"
    seeds = range(100, 105)
    shift = {s: s - 100 for s in seeds}  # noisy_decay's per-seed shift wants small seed numbers

    def curve(level, tau):
        f = noisy_decay(level, tau)
        return lambda step, seed: f(step, shift[seed])

    base = curve(100.0, 500)
    ours = {"baseline": base, "mdlrc-clts": curve(100.0, 450), "clts": curve(100.0, 450)}
    fake_group(a, GROUP, ours, seeds=seeds, steps=6000, metric=METRIC)
    rules = {"lognormal": base, "laplace": curve(90.0, 250)}  # lognormal: the baseline's own curves
    fake_group(b, GROUP, rules, seeds=seeds, steps=6000, metric=METRIC)
    fake_run(b, f"{GROUP}-speed-s100", GROUP, "speed", 100, lambda st: base(st, 100), steps=6000, metric=METRIC)
    return a, b


def args(a, b, results, *more):
    return ["reproduce", "speedup", "--confirm", "--head-to-head", "--report-only", "--variants", ARMS,
            "--seeds", "100,101,102,103,104", "--root", str(a), "--root", str(b), "--results", str(results),
            "--out", str(results.parent / "compare"), *more]  # fmt: skip


def test_the_head_to_head_reads_two_roots_and_writes_its_section(tmp_path):
    a, b = two_roots(tmp_path)
    results = tmp_path / "RESULTS.md"
    assert main(args(a, b, results)) == 0
    text = results.read_text()
    assert text.count("<!-- BEGIN dstab reproduce speedup --dataset digits --head-to-head -->") == 1
    assert "## CLTS against today's timestep rules: `python -m dstab reproduce speedup --dataset digits" in text
    assert (
        "**Seeds finished per arm:** baseline 5 of 5 (100, 101, 102, 103, 104), mdlrc-clts 5 of 5 (100, 101, 102, "
        "103, 104), clts 5 of 5 (100, 101, 102, 103, 104), lognormal 5 of 5 (100, 101, 102, 103, 104), laplace 5 of 5 "
        "(100, 101, 102, 103, 104), speed 1 of 5 (100). **Partial.**" in text
    )
    # the pre-registered family: every arm against the baseline, Holm over all of them
    assert "**Against baseline (5 of 5 planned comparisons, one Holm family):**" in text
    assert "- laplace vs baseline: **faster**" in text
    assert "- lognormal vs baseline: **depends on the readout (" in text  # identical curves: no difference
    assert "- speed vs baseline: **no verdict (1 complete seed, fewer than 3)**" in text
    # CLTS against each rule: its own family, oriented so that > 1 means CLTS is better
    assert "Holm over these 3 comparisons alone; ratio > 1: CLTS is better" in text
    assert "- clts vs laplace: **slower**" in text
    assert "Past the verdict rule, these rules beat CLTS on every readout: laplace." in text
    # the sentences count what the tables show
    saved = compare.compare(
        GROUP, root=[a, b], variants=ARMS.split(","), secondary=headtohead.secondary_pairs(ARMS.split(","), "baseline")
    )
    final = {c["variant"]: c["readouts"]["final"]["ratio"] for c in saved["comparisons"]}
    assert final["laplace"] == pytest.approx(100 / 90, rel=0.02) and final["lognormal"] == pytest.approx(1.0)
    rs = {c["variant"]: c["readouts"]["final"] for c in saved["comparisons"]}
    above = ", ".join(v for v in sorted(rs, key=lambda v: -rs[v]["ratio"]) if (rs[v]["low"] or 0) > 1)
    assert above.startswith("laplace") and "lognormal" not in above and "speed" not in above
    ranking = next(line for line in text.splitlines() if line.startswith("- By final level against baseline"))
    assert ranking.startswith("- By final level against baseline (ratio > 1: the arm is better; point estimates over ")
    assert (
        f"90% interval above 1: {above}; below 1: none; spanning 1: lognormal; no interval (1 seed): speed." in ranking
    )
    assert ranking.index("laplace") < ranking.index("speed")  # best first
    assert "- Against baseline: faster: " in text and "; no verdict: speed vs baseline." in text
    # the P(t) picture: the runs' own options on their schedule, the same numbers as `dstab timesteps`
    cfg = train_config.resolve("laplace", networks=False)
    field = timestep_field.field(cfg["diffusion"], ["baseline", "clts", "laplace"], 6000)
    want = {r["preset"]: r["effective_below_half"] for r in field["rows"]}
    assert f"| laplace | sampler | {want['laplace']:.1%} |" in text and "| baseline | uniform | 50.0% |" in text
    assert f"CLTS as trained here puts {want['clts']:.1%} of its training signal below T/2 = 500" in text
    assert "| mdlrc-clts | not drawn | - | - | - | draws t as clts does |" in text
    assert (tmp_path / "results" / f"{GROUP}-h2h-timesteps.png").stat().st_size > 1000
    assert (tmp_path / "results" / f"{GROUP}-h2h-curves.png").stat().st_size > 1000
    assert not (tmp_path / "results" / f"{GROUP}-curves.png").exists()  # the confirmation's figure is not touched
    kept = {p.name for p in (tmp_path / "results" / "speedup-runs").glob("*.json")}
    assert f"{GROUP}-laplace-s104.json" in kept and f"{GROUP}-baseline-s104.json" in kept  # both roots summarised
    saved_report = json.loads((tmp_path / "results" / f"{GROUP}-h2h.json").read_text())
    assert saved_report["head_to_head"]["planned"] == [100, 101, 102, 103, 104]
    assert all(line in text for line in headtohead.page_lines(saved_report))  # the Training page's lines
    assert main(args(a, b, results)) == 0 and results.read_text().count("--head-to-head -->") == 2  # replaced


def test_below_three_seeds_the_head_to_head_gives_numbers_and_no_verdict(tmp_path):
    a, b = two_roots(tmp_path)
    for root in (a, b):
        for p in root.glob(f"{GROUP}-*-s10[234]"):
            (p / "run" / "status.json").unlink()  # not finished: a dead run, not counted
    results = tmp_path / "RESULTS.md"
    assert main(args(a, b, results)) == 0
    text = results.read_text()
    assert "- laplace vs baseline: **no verdict (2 complete seeds, fewer than 3)**" in text
    assert "Against baseline: no verdict yet: 1-2 complete paired seeds, fewer than the 3 the rule needs" in text
    assert "**faster**" not in text and "**slower**" not in text and "**Partial.**" in text


def test_several_roots_are_read_together_and_a_run_in_two_is_refused(tmp_path):
    a, b = two_roots(tmp_path)
    found, _ = groupruns.load(GROUP, [a, b])
    assert {r.variant for r in found} == {"baseline", "mdlrc-clts", "clts", "lognormal", "laplace", "speed"}
    assert groupruns.seeds_of(GROUP, [a, b]) == {100, 101, 102, 103, 104}
    assert len(groupruns.load(GROUP, [a, a, b])[0]) == len(found)  # one folder named twice counts once
    fake_run(b, f"{GROUP}-baseline-s100", GROUP, "baseline", 100, lambda st: 100.0, steps=6000, metric=METRIC)
    with pytest.raises(DstabError, match=f"run {GROUP}-baseline-s100 of group .* is in two runs roots"):
        groupruns.load(GROUP, [a, b])
    with pytest.raises(DstabError, match="is not a folder"):
        groupruns.load(GROUP, [a, tmp_path / "nowhere"])


def test_launching_takes_one_root_and_the_head_to_head_only_reports(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert main(["reproduce", "speedup", "--root", str(a), "--root", str(b)]) == 2
    assert "launching writes to one runs root" in capsys.readouterr().err
    assert main(["reproduce", "speedup", "--head-to-head", "--variants", ARMS, "--root", str(a)]) == 2
    assert "--head-to-head reports arms already trained: add --report-only" in capsys.readouterr().err
    assert main(["sweep", "--root", str(a), "--root", str(b), "--dry-run"]) == 2


def test_the_picture_draws_what_the_runs_trained_with():
    diffusion = train_config.resolve("laplace", networks=False)["diffusion"]
    mine = timestep_field.field(diffusion, ["laplace"], 6000, {"laplace": {"name": "laplace", "b": 2.0}})["rows"][0]
    preset = timestep_field.field(diffusion, ["laplace"], 6000)["rows"][0]
    assert "/ 2)" in mine["formula"] and "/ 0.5)" in preset["formula"]
    assert mine["effective_below_half"] < preset["effective_below_half"] == pytest.approx(0.996, abs=0.001)
    assert np.sum(mine["draws"]) == pytest.approx(1.0)


def test_the_arms_not_drawn_say_why():
    arms = {
        "clts": train_config.resolve("clts", networks=False),
        "mdlrc-clts": train_config.resolve("mdlrc-clts", networks=False),
        "immiscible": train_config.resolve("immiscible", networks=False),
    }
    drawn, options, why = headtohead.picture_arms(arms, timestep_field.field_presets())
    assert drawn == ["clts"] and options["clts"]["name"] == "clts"
    assert why == {
        "mdlrc-clts": "draws t as clts does",
        "immiscible": "draws t as uniform does; noise paired: immiscible",
    }
