"""The one verdict: sentences generated from a `compare` result, used by the CLI, the Training
page and RESULTS.md alike, and the Markdown report around them.

The paper's claim ("about 2x sooner") for a variant at the reference's plateau:
- holds: the 90% interval lies above 1 and reaches 2 (lo > 1 and hi >= 2);
- does not hold: the interval lies below 2 (hi < 2), or the variant never reached the target in
  most seeds (the reference reaches its own plateau by construction);
- weak test: otherwise (an interval that spans both 1 and 2), or fewer than 3 paired seeds.
"""

from __future__ import annotations

from ..verdicts import FAILS, HOLDS, WEAK  # the words of the zoo's claims, for the same three outcomes

FULL_METHOD = "mdlrc-clts"
CLAIM = 2.0


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def claim(s: dict) -> str:
    if len(s["never_reached"]) > len(s["seeds"]) / 2:
        return FAILS
    if s["paired"] < 3 or s["low"] is None:
        return WEAK
    if s["high"] < CLAIM:
        return FAILS
    return HOLDS if s["low"] > 1.0 else WEAK


def sentence(row: dict, axis: str = "iterations") -> str:
    """e.g. 'mdlrc-clts reaches baseline's plateau (0.0123) 1.14x sooner than baseline in iterations, 90% CI
    [0.95, 1.35], p = 0.4 over 3 seeds: not distinguishable from baseline.'"""
    s, v, ref = row[axis], row["variant"], row["reference"]
    owner = row["target_of"]
    where = f"{owner}'s plateau" if row["target_name"] == "plateau" else f"the {row['target_name']} target of {owner}"
    target = f"{where} ({row['target']:.4g})"
    seeds = len(s["seeds"])
    if s["never_reached"]:
        missing = f"never reached {target} in seed(s) {s['never_reached']} of {seeds}"
        if s["paired"] < 2:
            versus = "" if ref == owner else f" (where {ref} did in {seeds - len(s['reference_never'])})"
            return f"{v} {missing}{versus}: no speed-up to estimate."
        missing = f"; it {missing}"
    else:
        missing = ""
    if s["estimate"] is None or s["paired"] < 2:
        return f"{v} vs {ref} at {target}: too few seeds where both reach it ({s['paired']})."
    word = "sooner" if s["estimate"] >= 1 else "later"
    factor = s["estimate"] if s["estimate"] >= 1 else 1 / s["estimate"]
    lo, hi = (s["low"], s["high"]) if s["estimate"] >= 1 else (1 / s["high"], 1 / s["low"])  # same units
    if s["low"] > 1:
        outcome = f"faster than {ref}"
    elif s["high"] < 1:
        outcome = f"slower than {ref}"
    else:
        outcome = f"not distinguishable from {ref}"
    small = " (the smallest p that many seeds allow)" if s["p"] <= 2 / 2 ** s["paired"] + 1e-12 else ""
    return (
        f"{v} reaches {target} {factor:.2f}x {word} than {ref} in {axis}, "
        f"90% CI [{_fmt(lo)}, {_fmt(hi)}], "
        f"p = {s['p']:.2g}{small} over {s['paired']} seeds{missing}: {outcome}."
    )


def sentences(result: dict) -> list[str]:
    """The verdict: each variant at the reference's plateau, the full method against the controls,
    and the paper's 2x claim for the full method."""
    plateau = [r for r in result["speedups"] if r["target_name"] == "plateau"]
    out = []
    for r in plateau:
        out.append(sentence(r))
        if r["iterations"]["paired"] < 2:  # then also the hardest target that can be estimated
            easier = [
                e for e in result["speedups"] if e["variant"] == r["variant"] and e["reference"] == r["reference"]
            ]
            hit = next((e for e in easier if e["iterations"]["paired"] >= 2), None)
            if hit:
                out.append(sentence(hit))
    full = next((r for r in plateau if r["variant"] == FULL_METHOD and r["reference"] == result["reference"]), None)
    if full:
        out.append(
            f"The paper's claim (about {CLAIM:g}x sooner) at this scale: {claim(full['iterations'])} "
            "(holds: 90% CI above 1 reaching 2; does not hold: CI below 2, or the baseline's plateau not reached "
            "in most seeds; otherwise a weak test)."
        )
    if result["partial"]:
        out.append("Partial result: " + partial_note(result))
    return out


def partial_note(result: dict) -> str:
    parts = [f"{n['run']} ({n['state']})" for n in result["not_counted"]]
    thin = [f"{lab} (complete seeds {seeds})" for lab, seeds in result["left_out_variants"].items()]
    return (
        "; ".join(
            filter(
                None,
                [f"not counted: {', '.join(parts)}" if parts else "", f"left out: {', '.join(thin)}" if thin else ""],
            )
        )
        + "."
    )


def markdown(result: dict, figures: dict[str, str] | None = None) -> str:
    s = result["setup"]
    lines = [
        f"Group `{result['group']}`: {s['dataset']}, {s['model']}, {s['steps']} iterations, batch {s['batch']}, "
        f"lr {s['lr']}, EMA {s['ema']}, seeds {s['seeds']}. Metric: {result['metric_label']} "
        f"(`{result['metric']}`, {'higher' if result['higher_is_better'] else 'lower'} is better) of EMA samples "
        f"every {s['eval_every']} iterations, the same evaluation noise for every run. Reference: "
        f"{result['reference']}; its plateau = per seed the mean of its last {result['last_k']} evaluations "
        f"(mean over seeds {result['plateau']:.4g}); easier targets lie 10/25/50% of the way (log scale) back "
        "to its first evaluation. Speed-up = reference iterations / variant iterations to reach a target "
        "(interpolated crossing of each seed's own target, paired by seed), geometric mean over seeds, 90% "
        "bootstrap CI over seeds, exact sign-flip test. Wall-clock: each run's seconds since its first logged "
        "step; runs that share a machine with other jobs also measure its load.",
        "",
        "| variant | seeds | schedule | final (mean [90% CI]) | vs paper |",
        "|---|---|---|---|---|",
    ]
    for lab, v in result["variants"].items():
        lines.append(
            f"| {lab} | {len(v['seeds'])} | {v['schedule']} | {v['mean'][-1]:.4g} [{v['low'][-1]:.4g}, "
            f"{v['high'][-1]:.4g}] | {'; '.join(v['vs_paper']) or '-'} |"
        )
    rows = speedup_rows(result)
    lines += ["", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r.values()) + " |" for r in rows]
    lines += ["", *(f"- {t}" for t in sentences(result))]
    if figures:
        lines += ["", *(f"![{k}]({v})" for k, v in figures.items())]
    return "\n".join(lines) + "\n"


def speedup_rows(result: dict) -> list[dict[str, str]]:
    """The speed-up table, one row per (target, variant vs reference): for Markdown and the page."""
    out = []
    for r in result["speedups"]:
        it, im, wc = r["iterations"], r["images"], r["wall"]
        never = f", never: {it['never_reached']}" if it["never_reached"] else ""
        p = "" if it["p"] is None else f", p = {it['p']:.2g}"
        out.append(
            {
                "target": f"{r['target_name']} ({r['target']:.4g})",
                "variant vs reference": f"{r['variant']} vs {r['reference']}",
                "reached (seeds)": f"{it['paired']}/{len(it['seeds'])}{never}",
                "speed-up in iterations [90% CI], p": f"{_ci(it)}{p}",
                "in images seen": _ci(im),
                "in wall-clock": _ci(wc),
            }
        )
    return out


def _ci(s: dict) -> str:
    if s["estimate"] is None:
        return "-"
    return f"{s['estimate']:.2f}x" + (f" [{_fmt(s['low'])}, {_fmt(s['high'])}]" if s["low"] is not None else "")
