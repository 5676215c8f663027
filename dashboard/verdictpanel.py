"""The "paper vs this zoo" panel on Home and the analysis pages: the paper's value, the zoo's (every seed
of a group, mean +- sd), and whether the claim holds, does not hold, or is a weak test, with the report's
caveats (collapsed models excluded and named, the x0 stand-in, seeds that disagree). And the Training
page's compare panel (`speedup`): a group's speed-up verdicts as `dstab compare` prints them, from the
same verdict function (`dstab.experiments.verdict`), with its curves figure and tables.

The verdicts are `dstab.verdicts`' (through `dstab.zooresults`, from the shipped results, without
PyTorch: Home may show them on a cold server) and are written as `dstab report` writes them into
RESULTS.md, so page and report read the same words for the same numbers. The landscape pages show the
report's smoothness lines (`dstab.report.roughness_lines`).
"""

from __future__ import annotations

import streamlit as st

from dstab import paper, verdicts, zooindex, zooresults

PAPER = {
    "consistency": f"Paper, {paper.table1_text()}; x0-prediction DMs lose the consistency (Fig. 9).",
    "hessian": f"Paper, Sec. 3.2: {paper.hessian_text()}.",
    "landscape": "Paper, Sec. 3.2 (after Li et al. 2018): DM loss surfaces and interpolation curves are smoother "
    "than GANs'.",
}


def consistency_lines(claims) -> list[str]:
    """As the report writes them: DMs vs GANs, then x0 vs eps DMs."""
    return [f"- {v.text(spec='.2f')}" for v in claims if not v.claim.startswith("x0")] + [
        f"- {v.text(('x0', 'eps'), '.2f')}" for v in claims if v.claim.startswith("x0")
    ]


def hessian_lines(claims, numbers: tuple[str, ...] = ("lambda_1", "sigma2")) -> list[str]:
    """As the report writes them, for the numbers the paper quotes (lambda_1, sigma^2)."""
    return [f"- {v.text()}" for v in claims if any(f" {n} below" in v.claim for n in numbers)]


def collapse_note(family: str, entries: dict) -> str | None:
    gone = sorted(e for e, v in entries.items() if e.startswith(f"{family}/") and zooindex.is_collapsed(v))
    if not gone:
        return None
    return f"Mode-collapsed by the zoo's measure, so left out of the verdicts (and named in them): {', '.join(gone)}."


def draw(paper: str, lines: list[str], note: str | None = None, where=st) -> None:
    box = where.container(border=True)
    box.markdown("**Paper vs this zoo**")
    box.caption(paper)
    if lines:
        box.markdown("\n".join(lines))
    else:
        box.caption("No stored result for this dataset yet: `python -m dstab report` computes and ships them.")
    if note:
        box.caption(note)


def home(family: str, entries: dict) -> None:
    """The consistency and Hessian verdicts of one dataset, from the shipped results."""
    lines = consistency_lines(zooresults.shipped_consistency_claims(family, entries))
    lines += hessian_lines(zooresults.shipped_hessian_claims(family, entries))
    draw(PAPER["consistency"] + " " + PAPER["hessian"], lines, collapse_note(family, entries))


def landscape(family: str, entries: dict, analysis: str, shown: str | None = None) -> None:
    """The report's smoothness verdicts of one dataset for `analysis` ('surface' or 'interpolate'): the
    zoo's DMs at each timestep against its GANs' G and D losses. `shown` says what the plots above show,
    one of the cases the verdict sums up (a verdict over all of them may differ from that one case)."""
    from dstab import report

    note = report.ROUGHNESS_BASIS + (f" The plots above are one case: {shown}." if shown else "")
    draw(PAPER["landscape"], roughness_lines(family, analysis), note)


def roughness_lines(family: str, analysis: str) -> list[str]:
    """The report's smoothness verdict lines of one dataset for 'surface' or 'interpolate'."""
    from dstab import report, zoo

    return [ln for ln in report.roughness_lines(zoo.zoo_root()) if ln.startswith(f"- {family}: DM {analysis} ")]


def _short(eid: str) -> str:
    return eid.split("/", 1)[-1]


def without_collapsed(ids: list[str], matrix_db, entries: dict) -> tuple[list[str], float | None]:
    """(the collapsed models of a group, its C(q) without them as the verdicts count it: the reference
    then the group's first healthy model; None when no pair is left)."""
    gone = [e for e in ids if zooindex.is_collapsed(entries.get(e, {}))]
    _, kept = verdicts.group_psnr_values(ids, matrix_db, set(gone))
    return gone, (sum(v.value for v in kept) / len(kept) if kept else None)


def group_consistency(family: str, kind: str, entries: dict) -> tuple[float | None, str]:
    """A kind's init-group C(q) as the verdicts count it (collapsed models left out) and a note naming what
    was left out, with the number that includes it."""
    found = zooresults.shipped_consistency(family, kind, entries)
    if found is None:
        return None, ""
    ids = zooindex.group_ids(entries, family, f"{kind}-init")
    gone, value = without_collapsed(ids, found.meta["psnr_matrix_db"], entries)
    if not gone:
        return found.meta["C_db"], ""
    return value, (
        f"{kind.upper()}: {', '.join(_short(e) for e in gone)} left out as collapsed (with it, all {len(ids)} "
        f"models: {found.meta['C_db']:.2f} dB)"
    )


def verdict_clause(v) -> str:
    """'over every seed: holds (DM .. vs GAN ..; collapsed .. left out)', from a `dstab.verdicts.Verdict`."""
    out = f"over every seed: {v.verdict} (DM {v.a.text('.4g')} vs GAN {v.b.text('.4g')}"
    if v.excluded:
        out += f"; collapsed {', '.join(v.excluded)} left out, with {'it' if len(v.excluded) == 1 else 'them'}: "
        out += v.verdict_all
    out += ")"
    return out + (f"; {'; '.join(v.caveats)}" if v.caveats else "")


def pair_sentence(number: str, dm: tuple[str, float], gan: tuple[str, float], claim_below: bool, v=None) -> str:
    """One DM-GAN pair's `number` against the claim (DM below GAN when `claim_below`), and the verdict over
    every seed beside it: a single pair is one draw, the verdict the claim."""
    (dl, a), (gl, b) = dm, gan
    agrees = (a < b) == claim_below and a != b
    word = "below" if a < b else "above" if a > b else "equal to"
    text = (
        f"This one pair {'agrees with' if agrees else 'goes against'} the claim: {dl}'s {number} {a:.2f} is {word} "
        f"{gl}'s {b:.2f}."
    )
    if v is not None:
        text += f" The claim, {verdict_clause(v)}."
    return text


def report_hessian_of(choice, entries: dict):
    """The report's Hessian of a picked model, by its exact key: spelled from the manifest for a zoo entry
    (no PyTorch), else from the loaded checkpoint (a user's own, a manifest that lacks a value)."""
    if choice.is_zoo and zooresults.keyed_by_manifest(choice.ref, entries):
        return zooresults.shipped_hessian(choice.ref, entries)
    from . import sidebar

    return zooresults.report_hessian(sidebar.load_bundle(choice.path))


def speedup(result: dict, axis: str, group: str, where=st) -> None:
    """A `compare` result: each comparison's verdict first, then the figure (the CLI's PNG is drawn from
    the same plotly figure), the readout and time tables, the metric's floor and noise, the definitions."""
    from dashboard import downloads
    from dstab.experiments import verdict
    from dstab.plots import compare as compare_plots

    box = where.container(border=True)
    box.markdown("**Verdicts**")
    box.markdown("\n".join(f"- {t}" for t in verdict.sentences(result)))
    fig = compare_plots.curves_figure(result, axis)
    where.plotly_chart(fig, key="compare-curves")
    downloads.figure(fig, f"compare-{group}", where=where)
    where.dataframe(verdict.rows(result), hide_index=True, key="compare-table")
    where.caption("Readouts: ratio > 1 means the variant is better; 90% interval, t-test p, Holm p, sign-flip p.")
    where.dataframe(verdict.time_rows(result), hide_index=True, key="compare-time")
    where.caption(" ".join(verdict.time_sentences(result)))
    with where.expander("Definitions (the group's protocol)"):
        st.markdown(
            "\n".join([verdict.setup_text(result), "", verdict.ladder_text(result), "", *verdict.definitions(result)])
        )
