"""The speedup experiment's bookkeeping: iterations to the baseline's final FD, ratios, RESULTS.md section."""

from __future__ import annotations

import pytest

from dstab.experiments import speedup
from dstab.training import rundir


def fake_run(out, name, curve, state="finished"):
    d = out / name
    d.mkdir(parents=True)
    db = rundir.MetricsDB(d / rundir.METRICS)
    for step, v in curve:
        db.write(step, {"fd_local@10x5ddim": v, "loss": 1.0}, wall=1000.0 + step)
    db.close()
    rundir.write_status(d, state, curve[-1][0])


def test_iterations_to_baseline_final_fd_and_ratio(tmp_path):
    curves = {
        "baseline": [(100, 50.0), (200, 30.0), (300, 20.0), (400, 20.5)],  # final 20.5, first reached at 300
        "md": [(100, 40.0), (200, 25.0), (300, 20.0), (400, 18.0)],
        "md-lrc": [(100, 20.0), (200, 19.0), (300, 18.0), (400, 17.0)],
        "mdlrc-clts": [(100, 60.0), (200, 40.0), (300, 30.0), (400, 25.0)],  # never reaches 20.5
        "lrc-only": [(100, 50.0), (200, 30.0), (300, 21.0), (400, 20.5)],
    }
    for v, c in curves.items():
        fake_run(tmp_path, f"{v}-s0", c)
    fake_run(tmp_path, "baseline-s1", curves["baseline"], state="stopped")
    summary = speedup.summarise(tmp_path, [0, 1])
    assert summary["seeds"] == [0] and summary["incomplete_seeds"] == [1]
    s0 = summary["per_seed"][0]
    assert s0["baseline"]["iters_to_baseline_final"] == 300 and s0["baseline"]["ratio"] == 1.0
    assert s0["md"]["iters_to_baseline_final"] == 300
    assert s0["md-lrc"]["ratio"] == pytest.approx(3.0)
    assert s0["mdlrc-clts"]["ratio"] is None
    assert s0["lrc-only"]["iters_to_baseline_final"] == 400 and s0["lrc-only"]["ratio"] == 0.75
    text = speedup.report(summary, speedup.Setup(), "fd_local@10x5ddim")
    assert "| md-lrc | 17.00 ± 0.00 [17.00, 17.00] | 18.50 ± 0.00 [18.50, 18.50] | 100 | 3.00 ± 0.00" in text
    assert "in 0 of 1 seeds and at least 2x sooner in 0; the paper's 2x does not hold" in text
    assert "not in 400" in text and "(1 seed(s) never reached it)" in text and "Seeds [1] did not finish" in text


def test_results_section_is_replaced_between_markers(tmp_path):
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\nother helper's section\n")
    speedup.write_section(md, f"{speedup.BEGIN}\nfirst\n{speedup.END}\n")
    speedup.write_section(md, f"{speedup.BEGIN}\nsecond\n{speedup.END}\n")
    text = md.read_text()
    assert "other helper's section" in text and "second" in text and "first" not in text
    assert text.count(speedup.BEGIN) == 1
