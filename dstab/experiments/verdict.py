"""The one verdict of a speed-up comparison, and the sentences and tables around it: used by the CLI
(`compare`, `reproduce speedup`), the Training page's compare panel and RESULTS.md alike.

`decide` reads the four readouts of one comparison (compare.py) under the group's protocol (the
pre-registered rule, as amended before any confirmation comparison was computed):
- "faster" / "slower": every readout points the same way with its t-interval excluding no effect
  (ratio 1) and its Holm-adjusted t-test p <= the protocol's alpha;
- "depends on the readout": otherwise, naming what each readout says: better or worse and
  significant, pointing one way but not significant after Holm, no difference (interval spans 1),
  no difference detectable (inside the metric's floor band), or could not be read;
- "no verdict": fewer complete seeds than the protocol's minimum (the numbers are still shown).
Ratios are oriented so that > 1 means the variant is better: reference / variant iterations for
the ladder and own plateau, reference / variant metric level (geometric) for area and final level.
"""

from __future__ import annotations

from .readouts import NAMES, READOUTS

FASTER, SLOWER = "faster", "slower"
DEPENDS, NO_VERDICT = "depends on the readout", "no verdict"
FULL_METHOD = "mdlrc-clts"
CLAIM = 2.0


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _p(x: float) -> str:
    return f"{x:.3g}" if x >= 0.001 else f"{x:.1e}"


def classify(r: dict, min_seeds: int, alpha: float) -> str:
    """What one readout says: 'better' / 'worse' (interval excludes 1, Holm p <= alpha), 'better, not
    significant' / 'worse, not significant' (interval excludes 1, Holm p above alpha), 'no effect'
    (interval spans 1), 'undetectable' (inside the floor band) or 'unreadable'."""
    if r.get("unreadable") or r["n"] < min_seeds or r["low"] is None:
        return "unreadable"
    if r.get("undetectable"):
        return "undetectable"
    side = "better" if r["low"] > 1.0 else "worse" if r["high"] < 1.0 else None
    if side is None:
        return "no effect"
    return side if r["p_holm"] is not None and r["p_holm"] <= alpha else f"{side}, not significant"


def decide(comparison: dict, protocol) -> dict:
    """The verdict of one comparison: {'word', 'reason', 'classes': readout -> class}."""
    n = len(comparison["seeds"])
    rs = comparison["readouts"]
    classes = {k: classify(rs[k], protocol.min_seeds, protocol.verdict_alpha) for k in READOUTS}
    if n < protocol.min_seeds:
        seeds = f"{n} complete seed{'s' if n != 1 else ''}"
        return {"word": NO_VERDICT, "reason": f"{seeds}, fewer than {protocol.min_seeds}", "classes": classes}
    values = set(classes.values())
    if values in ({"better"}, {"worse"}):
        return {"word": FASTER if values == {"better"} else SLOWER, "reason": "", "classes": classes}
    return {"word": DEPENDS, "reason": _naming(classes, rs, protocol.verdict_alpha), "classes": classes}


CLASS_WORDS = {
    "better": "say the variant is better",
    "worse": "say it is worse",
    "better, not significant": "point to the variant but do not reach significance after Holm",
    "worse, not significant": "point to the reference but do not reach significance after Holm",
    "no effect": "show no difference (interval spans 1)",
    "undetectable": "no difference detectable (inside the metric's floor band)",
    "unreadable": "could not be read",
}


def _naming(classes: dict, rs: dict, alpha: float) -> str:
    groups: dict[str, list[str]] = {}
    for k, c in classes.items():
        groups.setdefault(c, []).append(k)
    parts = []
    for c, ks in groups.items():
        text = f"{' and '.join(NAMES[k] for k in ks)}: {CLASS_WORDS[c]}"
        if c.endswith("not significant"):
            text += f" (Holm p {', '.join(_p(rs[k]['p_holm']) for k in ks)} > {alpha:g})"
        parts.append(text)
    return "; ".join(parts)


def cell(r: dict) -> str:
    """One readout as a table cell: ratio [interval], t-test p, Holm-adjusted p, sign-flip p (its floor)."""
    if r.get("undetectable"):
        return "no difference detectable"
    if r["ratio"] is None:
        return r.get("unreadable") or "not read"
    text = f"{r['ratio']:.2f}x"
    if r["low"] is not None:
        text += f" [{_fmt(r['low'])}, {_fmt(r['high'])}]"
    if r.get("p") is not None:
        text += f", p = {_p(r['p'])}"
        if r.get("p_holm") is not None:
            text += f", Holm {_p(r['p_holm'])}"
        at_floor = " (its floor)" if r["p_sign"] <= r["p_floor"] + 1e-12 else f" (floor {_p(r['p_floor'])})"
        text += f"; sign-flip p = {_p(r['p_sign'])}{at_floor}"
    return text


def _missing(c: dict) -> str:
    nr = c["readouts"]["plateau"]["not_reached"]
    parts = []
    if nr["reference"]:
        parts.append(f"{c['reference']} not at its plateau on seeds {nr['reference']}")
    if nr["variant"]:
        parts.append(f"{c['variant']} not at its plateau on seeds {nr['variant']}")
    return ("; " + ", ".join(parts)) if parts else ""


def verdict_text(c: dict) -> str:
    v = c["verdict"]
    return v["word"] + (f" ({v['reason']})" if v["reason"] else "")


def sentence(c: dict) -> str:
    """e.g. 'mdlrc-clts vs baseline, 5 seeds: ladder crossings 1.21x [1.05, 1.40], p = 0.062 (floor),
    Holm 0.75; ...: depends on the readout (...).'"""
    rs = c["readouts"]
    parts = "; ".join(f"{NAMES[k]} {cell(rs[k])}" for k in READOUTS)
    n = len(c["seeds"])
    return (
        f"{c['variant']} vs {c['reference']}, {n} seed{'s' if n != 1 else ''}: {parts}{_missing(c)}: {verdict_text(c)}."
    )


def floor_sentence(result: dict) -> str:
    f, label, noise = result.get("floor"), result["metric_label"], result["noise"]
    finals = [v["final_raw"] for v in result["variants"].values()]
    if not f:
        text = f"{label}: no real-vs-reference floor can be measured offline for this metric."
    elif "error" in f:
        text = f"{label}: its floor could not be measured ({f['error']})."
    else:
        inside = sum(x <= f["top"] for x in finals) if not result["higher_is_better"] else 0
        text = (
            f"{label}: real data against the reference at the same sample count scores {f['mean']:.3g} +- "
            f"{f['sd']:.2g} (sd over {f['draws']:.0f} draws); values below the band's top ({f['top']:.3g}) cannot "
            "be told from real data and are read as that top. "
        )
        if inside:
            text += f"{inside} of {len(finals)} variants end inside that band (final levels {min(finals):.3g} to "
            text += f"{max(finals):.3g}): there the metric cannot tell them apart."
        else:
            text += f"The floor is {f['mean'] / min(finals):.1%} of the best final level ({min(finals):.4g})."
    if noise["repeat_sd_log"] is not None:
        text += (
            f" The same model evaluated with other noise seeds differs by {noise['repeat_sd_log']:.1%} (sd of one "
            f"evaluation, log scale, {noise['repeat_pairs']} repeat pairs)."
        )
    if noise["reference_last_k_cv"]:
        cv = noise["reference_last_k_cv"]
        spread = f"{min(cv):.1%}" if len(cv) == 1 else f"{min(cv):.1%}-{max(cv):.1%}"
        text += (
            f" The reference's last {result['protocol']['final_k']} evaluations scatter by {spread} "
            "of their level (sd / mean, per seed): evaluation noise plus the model's own drift."
        )
    return text


def length_sentence(result: dict) -> str | None:
    """Item 4: whether the reference reached its own plateau within the run; if not, what can be read."""
    ref, steps = result["reference"], result["run_steps"]
    fired = dict(result["reference_plateau"])
    still = [s for s, x in fired.items() if x is None]
    if not still:
        latest = max(fired.values())
        return (
            f"{ref}'s plateau test fired on every seed (at {', '.join(f'{x:.0f}' for x in fired.values())} "
            f"iterations; latest {latest:.0f}), within the {steps} iterations of the run ({steps / latest:.2f}x)."
        )
    gaps = [f"{c['variant']} {cell(c['readouts']['final'])}" for c in result["comparisons"] if c["reference"] == ref]
    return (
        f"{ref} is still improving at {steps} iterations on seeds {still}: a speed-up to its plateau cannot be read; "
        f"the level gap at {steps} (final level, {ref} / variant): " + "; ".join(gaps) + "."
    )


def holm_sentence(result: dict) -> str:
    m = result["tests"]
    ns = sorted({r["n"] for c in result["comparisons"] for r in c["readouts"].values() if r.get("p") is not None})
    if not m or not ns:
        return "No test could be made: no comparison has 2 paired seeds."
    floors = ", ".join(f"{2 / 2**n:.3g} at {n} seeds" for n in ns)
    return (
        f"{m} tests in this report: two-sided t-test p, Holm-adjusted together; the exact sign-flip p beside "
        f"each is a distribution-free check, and cannot go below {floors}."
    )


def time_sentences(result: dict) -> list[str]:
    out = []
    for c in result["comparisons"]:
        t = c["time"]
        cpu, wall, load = t["cpu"], t["wall"], t["load"]
        bits = []
        if load["cpu"]["interval"]:
            bits.append(f"in CPU seconds: ladder {cell(cpu['ladder'])}, own plateau {cell(cpu['plateau'])}")
        else:
            bits.append(load["cpu"]["why"])
        wall_text = f"ladder {cell(wall['ladder'])}, own plateau {cell(wall['plateau'])}"
        bits.append(f"in wall-clock: {wall_text} ({load['wall']['why']})")
        out.append(f"{c['variant']} vs {c['reference']}: " + "; ".join(bits) + ".")
    return out


def claim(c: dict) -> str:
    """The paper's ~2x claim against the ladder readout: holds (interval above 1 reaching 2, and the
    verdict is faster), does not hold (interval below 2), else a weak test."""
    from ..verdicts import FAILS, HOLDS, WEAK

    r = c["readouts"]["ladder"]
    if r["low"] is None or len(c["seeds"]) < 3:
        return WEAK
    if r["high"] < CLAIM:
        return FAILS
    return HOLDS if r["low"] > 1.0 and c["verdict"]["word"] == FASTER else WEAK


def sentences(result: dict) -> list[str]:
    """The verdict of each comparison, then the metric's floor and noise, the run length, the tests'
    multiplicity, the paper's claim, and whether the result is partial."""
    out = [sentence(c) for c in result["comparisons"]]
    out.append(floor_sentence(result))
    length = length_sentence(result)
    if length:
        out.append(length)
    out.append(holm_sentence(result))
    full = next(
        (c for c in result["comparisons"] if c["variant"] == FULL_METHOD and c["reference"] == result["reference"]),
        None,
    )
    if full:
        out.append(
            f"The paper's claim (about {CLAIM:g}x sooner) at this scale, by the ladder readout: {claim(full)} "
            "(holds: 90% interval above 1 reaching 2 and the verdict faster; does not hold: interval below 2; "
            "otherwise a weak test)."
        )
    if result["partial"]:
        out.append("Partial result: " + partial_note(result))
    return out


def seeds_line(result: dict, arms: list[str], planned: list[int]) -> tuple[str, bool]:
    """'baseline 2 of 5 (100, 101), ...' for every arm named, and whether any has fewer than planned."""
    parts, short = [], False
    for lab in arms:
        seeds = result["variants"].get(lab, {}).get("seeds", [])
        short |= len(seeds) < len(planned)
        parts.append(f"{lab} {len(seeds)} of {len(planned)}" + (f" ({', '.join(map(str, seeds))})" if seeds else ""))
    return ", ".join(parts), short


def partial_note(result: dict) -> str:
    """The runs not counted: those running (with their step) and ended otherwise by name, queued ones counted."""
    notes = result["not_counted"]
    queued = [n for n in notes if n["state"] == "queued"]
    named = [
        f"{n['run']} ({n['state']}{', step ' + str(n['step']) if n.get('step') else ''})"
        for n in notes
        if n["state"] != "queued"
    ]
    if queued:
        named.append(f"{len(queued)} queued")
    thin = [
        f"{lab} (complete seeds {seeds}, none shared with the reference)"
        for lab, seeds in result["left_out_variants"].items()
    ]
    parts = [f"not counted: {', '.join(named)}" if named else "", f"left out: {', '.join(thin)}" if thin else ""]
    return "; ".join(filter(None, parts)) + "."


def rows(result: dict) -> list[dict[str, str]]:
    """The readout table, one row per comparison: for Markdown and the page."""
    out = []
    for c in result["comparisons"]:
        row = {"variant vs reference": f"{c['variant']} vs {c['reference']}", "seeds": str(len(c["seeds"]))}
        row.update({NAMES[k]: cell(c["readouts"][k]) for k in READOUTS})
        row["verdict"] = c["verdict"]["word"]
        out.append(row)
    return out


def time_rows(result: dict) -> list[dict[str, str]]:
    out = []
    for c in result["comparisons"]:
        t = c["time"]
        out.append(
            {
                "variant vs reference": f"{c['variant']} vs {c['reference']}",
                "CPU s, ladder": cell(t["cpu"]["ladder"]) if t["load"]["cpu"]["interval"] else "not recorded",
                "CPU s, own plateau": cell(t["cpu"]["plateau"]) if t["load"]["cpu"]["interval"] else "not recorded",
                "wall-clock, ladder": cell(t["wall"]["ladder"]),
                "wall-clock, own plateau": cell(t["wall"]["plateau"]),
                "side by side": "yes" if t["load"]["wall"]["interval"] else "no: no wall-clock interval",
            }
        )
    return out


def _table(rs: list[dict[str, str]]) -> list[str]:
    if not rs:
        return []
    return [
        "| " + " | ".join(rs[0]) + " |",
        "|" + "---|" * len(rs[0]),
        *("| " + " | ".join(r.values()) + " |" for r in rs),
    ]


def variant_rows(result: dict) -> list[dict[str, str]]:
    k = result["protocol"]["final_k"]
    side = sorted({n for v in result["variants"].values() for n in v["side"] if not n.endswith("_se")})
    out = []
    for lab, v in result["variants"].items():
        row = {"variant": lab, "seeds": str(len(v["seeds"])), "schedule": v["schedule"]}
        row[f"final (mean of last {k}, over seeds)"] = f"{v['final_raw']:.4g}" + (
            " (inside the floor band)" if v["final"] > v["final_raw"] else ""
        )
        for n in side:
            val = v["side"].get(n)
            se = v["side"].get(f"{n}_se")
            row[n] = "-" if val is None else f"{val:.4g}" + (f" +- {se:.2g}" if se is not None else "")
        row["vs paper"] = "; ".join(v["vs_paper"]) or "-"
        out.append(row)
    return out


def setup_text(result: dict) -> str:
    s = result["setup"]
    return (
        f"Group `{result['group']}`: {s['dataset']}, {s['model']}, {s['steps']} iterations, batch {s['batch']}, "
        f"lr {s['lr']}, EMA {s['ema']}, seeds {s['seeds']}. Metric: {result['metric_label']} "
        f"(`{result['metric']}`, {'higher' if result['higher_is_better'] else 'lower'} is better) of EMA samples "
        f"every {s['eval_every']} iterations, the same evaluation noise for every run. Reference: "
        f"{result['reference']}. Protocol: {result['protocol_source']}."
    )


def definitions(result: dict) -> list[str]:
    return [f"- {k.replace('_', ' ')}: {v}" for k, v in result["definitions"].items()]


def ladder_text(result: dict) -> str:
    lad = result["ladder"]
    if not lad["levels"]:
        return f"Ladder: none ({lad['why_none']})."
    return (
        f"Ladder levels: {', '.join(f'{x:.4g}' for x in lad['levels'])} (top {lad['top']:.4g}, bottom "
        f"{lad['bottom']:.4g})."
    )


def markdown(result: dict, figures: dict[str, str] | None = None) -> str:
    lines = [setup_text(result), "", "Definitions:", *definitions(result), "", ladder_text(result), ""]
    lines += [*_table(variant_rows(result)), ""]
    lines += ["Readouts (ratio > 1: the variant is better), 90% interval, t-test p, Holm-adjusted p, sign-flip p:", ""]
    lines += [*_table(rows(result)), "", "Time (the same readouts in seconds):", "", *_table(time_rows(result)), ""]
    lines += [*(f"- {t}" for t in sentences(result)), *(f"- {t}" for t in time_sentences(result))]
    if figures:
        lines += ["", *(f"![{k}]({v})" for k, v in figures.items())]
    return "\n".join(lines) + "\n"
