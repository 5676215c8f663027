"""CLTS against today's timestep rules (issue 23 item 4): the RESULTS.md section of a head-to-head.

The head-to-head is a speed-up group (compare.py) whose arms are the reference (baseline), CLTS
(`clts`, and the full method `mdlrc-clts`) and other timestep rules (debias, EDM log-normal,
logit-normal, Laplace, SpeeD, immiscible pairing...). Its primary family, as pre-registered: every
arm against the reference, Holm-adjusted together, one verdict each by verdict.decide. Secondary,
reported apart with its own Holm family: CLTS against each other rule, read on the same ladder.
Beside them, where each arm puts its training signal over t (training.timestep_field, drawn by
plots.timesteps, from the runs' own timestep options), and sentences written from those numbers.
"""

from __future__ import annotations

from . import verdict
from .readouts import NAMES, READOUTS

CLTS = "clts"
OURS = ("clts", "mdlrc-clts")
TITLE = "CLTS against today's timestep rules"
SAVED = "results/speedup-digits-confirm-h2h.json"  # the digits head-to-head's report, beside RESULTS.md


def page_lines(saved: dict) -> list[str]:
    """The Training page's lines for a saved head-to-head report (`reproduce speedup --head-to-head`
    writes it with its arms, planned seeds and command): the same headline as RESULTS.md."""
    meta = saved["head_to_head"]
    return headline(saved, meta["arms"], meta["planned"])


def rules(variants: list[str], reference: str) -> list[str]:
    """The arms that are neither the reference nor CLTS / the full method, in the order named."""
    return [v for v in variants if v != reference and v not in OURS]


def secondary_pairs(variants: list[str], reference: str) -> list[tuple[str, str]]:
    """CLTS (ratio > 1: CLTS is better) against each other rule."""
    return [(CLTS, r) for r in rules(variants, reference)] if CLTS in variants else []


def picture_arms(arms: dict[str, dict], drawable: list[str]) -> tuple[list[str], dict, dict[str, str]]:
    """(arms drawn in the P(t) picture, their timestep options, why each other arm is not drawn).
    `arms`: per arm, the config its runs trained with (or its preset's, before any run finished);
    `drawable`: presets whose only change is their timestep rule."""
    drawn, options, why = [], {}, {}
    for lab, cfg in arms.items():
        ts, pairing = cfg["timesteps"], cfg.get("noise_pairing", "independent")
        if lab in drawable:
            drawn.append(lab)
            options[lab] = ts
        else:
            paired = f"; noise paired: {pairing}" if pairing != "independent" else ""
            why[lab] = f"draws t as {ts['name']} does{paired}"
    return drawn, options, why


def _ratio(c: dict, k: str) -> float | None:
    return c["readouts"][k]["ratio"]


def _x(v: float) -> str:
    return f"{v:.2f}x"


def signal_sentences(picture: dict, reference: str) -> list[str]:
    """How far each arm moves the training signal's mass below T/2 from uniform, written from the picture."""
    rows = {r["preset"]: r for r in picture["rows"]}
    T = picture["T"]
    if reference not in rows:
        return []
    base = rows[reference]["effective_below_half"]
    out = []
    if CLTS in rows:
        c = rows[CLTS]["effective_below_half"]
        out.append(
            f"CLTS as trained here puts {c:.1%} of its training signal below T/2 = {T / 2:g} ({reference}: "
            f"{base:.1%}), {100 * (c - base):+.1f} points."
        )
    others = [(r["preset"], r["effective_below_half"]) for p, r in rows.items() if p not in (reference, CLTS)]
    if others:
        lo, hi = min(others, key=lambda x: x[1]), max(others, key=lambda x: x[1])
        out.append(
            f"The other rules put {lo[1]:.1%} ({lo[0]}) to {hi[1]:.1%} ({hi[0]}) there, "
            f"{100 * (lo[1] - base):+.1f} to {100 * (hi[1] - base):+.1f} points."
        )
    return out


def ranking_sentence(result: dict, readout: str) -> str | None:
    """Every arm's point estimate against the reference by one readout, best first, and which have a
    90% interval wholly above or below 1 (those with 2 or more seeds)."""
    ref = result["reference"]
    mine = [c for c in result["comparisons"] if c["reference"] == ref and _ratio(c, readout) is not None]
    if not mine:
        return None
    mine.sort(key=lambda c: -_ratio(c, readout))
    ns = sorted({len(c["seeds"]) for c in mine})
    seeds = f"{ns[0]} seed{'s' if ns[0] != 1 else ''}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]} seeds"
    listed = ", ".join(f"{c['variant']} {_x(_ratio(c, readout))}" for c in mine)
    rs = {c["variant"]: c["readouts"][readout] for c in mine}
    above = [v for v, r in rs.items() if r["low"] is not None and r["low"] > 1]
    below = [v for v, r in rs.items() if r["high"] is not None and r["high"] < 1]
    spans = [v for v, r in rs.items() if r["low"] is not None and v not in above + below]
    bits = [f"interval above 1: {', '.join(above) or 'none'}", f"below 1: {', '.join(below) or 'none'}"]
    bits += [f"spanning 1: {', '.join(spans)}"] if spans else []
    single = [v for v, r in rs.items() if r["low"] is None]
    bits += [f"no interval (1 seed): {', '.join(single)}"] if single else []
    return (
        f"By {NAMES[readout]} against {ref} (ratio > 1: the arm is better; point estimates over {seeds}): {listed}. "
        f"90% {'; '.join(bits)}."
    )


def verdict_sentence(comparisons: list[dict], who: str, min_seeds: int) -> str:
    """What the verdicts of a family say, counted from their words."""
    words = [c["verdict"]["word"] for c in comparisons]
    if not words:
        return f"{who}: no comparison has a complete seed yet."
    if all(w == verdict.NO_VERDICT for w in words):
        ns = sorted({len(c["seeds"]) for c in comparisons})
        seeds = str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
        seeds += " complete paired seed" + ("s" if ns[-1] != 1 else "")
        return (
            f"{who}: no verdict yet: {seeds}, fewer than the {min_seeds} the rule needs; "
            "the numbers above are not a result."
        )
    named: dict[str, list[str]] = {}
    for c in comparisons:
        named.setdefault(c["verdict"]["word"], []).append(f"{c['variant']} vs {c['reference']}")
    return f"{who}: " + "; ".join(f"{w}: {', '.join(v)}" for w, v in named.items()) + "."


def clts_sentences(result: dict) -> list[str]:
    """CLTS against each rule by each readout, counted from the secondary comparisons' point estimates."""
    second = result["secondary"]["comparisons"]
    if not second:
        return []
    out = []
    for k in READOUTS:
        got = [(c["reference"], _ratio(c, k)) for c in second if _ratio(c, k) is not None]
        if not got:
            continue
        ahead = [r for r, x in got if x > 1]
        behind = [f"{r} {_x(x)}" for r, x in got if x < 1]
        out.append(
            f"By {NAMES[k]}, CLTS's point estimate is ahead of {len(ahead)} of {len(got)} rules"
            + (f"; behind (CLTS / rule): {', '.join(behind)}" if behind else "")
            + "."
        )
    sig = [c for c in second if c["verdict"]["word"] == verdict.SLOWER]
    if sig:
        out.append(
            "Past the verdict rule, these rules beat CLTS on every readout: "
            + ", ".join(c["reference"] for c in sig)
            + "."
        )
    return out


def _picture_rows(picture: dict, why: dict[str, str]) -> list[dict[str, str]]:
    half = picture["T"] / 2
    out = [
        {
            "arm": r["preset"],
            "kind": r["kind"],
            f"signal below {half:g} (P(t) x weight)": f"{r['effective_below_half']:.1%}",
            "mean t (signal)": f"{r['effective_mean_t']:.0f}",
            f"draws below {half:g}": f"{r['draws_below_half']:.1%}",
            "rule": r["formula"],
        }
        for r in picture["rows"]
    ]
    keys = list(out[0]) if out else []
    for lab, text in why.items():
        out.append({k: {"arm": lab, "kind": "not drawn", "rule": text}.get(k, "-") for k in keys})
    return out


def headline(result: dict, arms: list[str], planned: list[int], picture: dict | None = None) -> list[str]:
    """Markdown lines for the section and the Training page alike: seeds per arm, both families'
    verdicts, what is not compared yet, and the sentences written from the numbers."""
    ref = result["reference"]
    primary = len(result["comparisons"])
    lines: list[str] = []
    per_arm, short = verdict.seeds_line(result, arms, planned)
    lines += [f"**Seeds finished per arm:** {per_arm}." + (" **Partial.**" if short or result["partial"] else ""), ""]
    planned_pairs = len([a for a in arms if a != ref])
    lines += [f"**Against {ref} ({primary} of {planned_pairs} planned comparisons, one Holm family):**", ""]
    lines += [f"- {c['variant']} vs {c['reference']}: **{verdict.verdict_text(c)}**" for c in result["comparisons"]]
    second = result["secondary"]
    if second["comparisons"]:
        lines += [
            "",
            f"**CLTS against each rule** (secondary, not in the pre-registered family: Holm over these "
            f"{len(second['comparisons'])} comparisons alone; ratio > 1: CLTS is better):",
            "",
        ]
        lines += [f"- clts vs {c['reference']}: **{verdict.verdict_text(c)}**" for c in second["comparisons"]]
    waiting = [f"{a} vs {ref}" for a in arms if a != ref and a not in result["variants"]] + second["waiting"]
    if waiting:
        lines += ["", f"Not compared yet (no complete seed shared with the reference): {', '.join(waiting)}."]
    if result["partial"]:
        lines += ["", f"Partial: {verdict.partial_note(result)}"]
    lines += ["", "What the numbers say:", ""]
    said = []
    if picture:
        said += signal_sentences(picture, ref)
    said += [s for s in (ranking_sentence(result, k) for k in READOUTS) if s]
    least = result["protocol"]["min_seeds"]
    said.append(verdict_sentence(result["comparisons"], f"Against {ref}", least))
    said += clts_sentences(result)
    if second["comparisons"]:
        said.append(verdict_sentence(second["comparisons"], "CLTS against each rule", least))
    lines += [f"- {s}" for s in said]
    return lines


def section(
    result: dict,
    arms: list[str],
    picture: dict | None,
    why_not_drawn: dict[str, str],
    command: str,
    planned: list[int],
    preregistration: dict | None,
    figures: dict[str, str] | None = None,
    picture_png: str | None = None,
) -> str:
    """The RESULTS.md section, every sentence written from `result` (compare.compare with the secondary
    pairs) and `picture` (timestep_field.field on the runs' schedule and options)."""
    ref = result["reference"]
    lines = [f"## {TITLE}: `{command}`", ""]
    lines += [
        f"Generated by `{command} --report-only` from the runs' own config.json and metrics (the runs roots named "
        "and run summaries in results/speedup-runs); do not edit, rerun the command.",
        "",
    ]
    h2h = (preregistration or {}).get("head_to_head")
    if h2h:
        lines.append(
            f"Pre-registered in results/preregistered/{result['group']}.json (head_to_head, written {h2h['written']}), "
            f'protocol: "{h2h["protocol"]}". Left out: "{h2h.get("left_out", "nothing")}".'
        )
        lines.append("")
    lines += headline(result, arms, planned, picture)
    if picture:
        T = picture["T"]
        s = picture["schedule"]
        untrained = [a for a in arms if a not in result["variants"]]
        lines += [
            "",
            f"Where each arm puts its training signal over t ({s['schedule']} schedule, T = {T}, "
            f"{s['prediction']}-prediction; each rule as its runs trained it"
            + (f", {' and '.join(untrained)} as their presets define them (no finished run yet)" if untrained else "")
            + "; CLTS at the end of its curriculum):",
            "",
            *verdict._table(_picture_rows(picture, why_not_drawn)),
        ]
        if picture_png:
            lines += ["", f"![P(t) x loss weight of every arm]({picture_png})"]
    lines += ["", f"### Every arm against {ref}", "", verdict.markdown(result, figures)]
    second = result["secondary"]
    if second["comparisons"]:
        sub = {**result, "comparisons": second["comparisons"], "tests": second["tests"]}
        lines += ["", "### CLTS against each rule (secondary)", ""]
        lines += ["Readouts (ratio > 1: CLTS is better), 90% interval, t-test p, Holm-adjusted p, sign-flip p:", ""]
        lines += [*verdict._table(verdict.rows(sub)), ""]
        lines += [f"- {verdict.sentence(c)}" for c in second["comparisons"]]
        lines.append(f"- {verdict.holm_sentence(sub)}")
    return "\n".join(lines) + "\n"
