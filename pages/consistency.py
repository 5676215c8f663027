"""Consistency (the paper's Sec. 3.1, Eq. 1): do models of one group draw the same samples from one seed?

N models of a group (different inits, or different structures) each draw M
samples from ONE sampling seed: DMs share x_T and every step's noise, GANs
share z. C(q) is the mean PSNR of models 2..N against model 1. The paper's
Table 1: DMs 14-20 dB, GANs 6-10 dB; x0-prediction DMs lose it (Fig. 9).
"""

from dataclasses import replace

import streamlit as st

from dashboard import compute, downloads, figures, sidebar, urlstate, verdictpanel
from dstab import paper, verdicts, zooindex, zooresults
from dstab.analysis import consistency as consistency_mod
from dstab.errors import DstabError
from dstab.modelconfig import DDIM_STEPS
from dstab.plots import consistency as consistency_plots
from dstab.plots import tables

# shown -> zoo group suffix; "chosen": any checkpoints of one kind the user picks (the zoo's, their own)
GROUPS = {"different inits": "init", "different structures": "structure", "checkpoints you choose": "chosen"}

sel = sidebar.current()
st.title("Consistency")
intro = st.empty()  # filled once the samples say whether they are images or 2-D points
c = st.columns(5)
group = GROUPS[urlstate.radio("Group", list(GROUPS), "group", "different inits", where=c[0])]
SPEC = zooresults.CONSISTENCY
seed = urlstate.number("Sampling seed", "seed", SPEC.seed, 0, 10_000, where=c[1])
sampler = urlstate.radio("DM sampler", ["ddpm", "ddim"], "sampler", SPEC.sampler, where=c[2], horizontal=True)
steps = urlstate.number("DDIM steps", "steps", DDIM_STEPS, 2, 1000, where=c[3]) if sampler == "ddim" else None
num = urlstate.number("Samples M", "m", SPEC.num, 1, 256, where=c[4])
x0 = urlstate.toggle(
    "x0-prediction counterexample (paper Fig. 9): x0 DMs of three inits beside the eps DMs and GANs", "x0"
)
if x0:
    group = "init"  # the paper's test compares groups of different inits
TITLES = {"dm": "DM", "x0": "DM, x0-prediction", "gan": "GAN"}
entries = sel.manifest["entries"]
listed = {
    **{r: ch for r, ch in sidebar.zoo_choices(entries).items() if r.startswith(sel.family + "/")},
    **sidebar.user_choices(),
}


def short(ref: str) -> str:
    """A member's name in headings, rows and heatmaps: the zoo id without its dataset, or `yours: NAME`."""
    return ref.split("/", 1)[1] if ref in entries else listed[ref].label if ref in listed else ref


def row_name(ref: str) -> str:
    label = zooindex.collapse_label(entries.get(ref, {}))
    return short(ref) + (f" ({label})" if label else "")


def chosen_members(kind: str) -> list[str]:
    """The user's group of one kind: any listed checkpoints (the zoo's of this dataset, their own)."""
    options = [r for r, ch in listed.items() if ch.kind == kind]
    picked = urlstate.multiselect(
        f"{kind.upper()}s in the group (2 or more; the first is the reference)",
        options,
        f"{kind}s",
        consistency_mod.group_ids(sel.family, f"{kind}-init"),
        where=cols[kind],
        format_func=row_name,
    )
    if len(picked) < 2:
        raise DstabError(f"choose at least 2 {kind.upper()}s: C(q) compares models 2..N with model 1")
    return picked


def group_members(kind: str) -> list[str]:
    if group == "chosen" and kind != "x0":
        return chosen_members(kind)
    return consistency_mod.group_ids(sel.family, "x0-init" if kind == "x0" else f"{kind}-{group}")


def heading_note(names: list[str], meta: dict, m: int) -> str:
    """What the heading's C(q) is over, naming any collapsed model in it and the score without it."""
    text = f"Mean PSNR against {short(names[0])}, over all M = {m} samples of N = {len(names)} models"
    gone, without = verdictpanel.without_collapsed(names, meta["psnr_matrix_db"], entries)
    if not gone:
        return text + "."
    shown = "no pair left" if without is None else f"{without:.2f} dB"
    return text + f", collapsed {', '.join(short(n) for n in gone)} included; without it: {shown}."


kinds = ("dm", "x0", "gan") if x0 else ("dm", "gan")
top = st.empty()  # "Compute all", above the columns
cols = dict(zip(kinds, figures.columns(len(kinds))))
asks, members = {}, {}
for kind in kinds:
    where = cols[kind]
    try:
        names = group_members(kind)
        bundles = [sidebar.load_bundle(listed[n].path) for n in names]
        spec = replace(SPEC, num=num, seed=seed, sampler=sampler, steps=steps).for_kind(bundles[0].kind)
        label = f"consistency of {', '.join(short(n) for n in names)}"
        asks[kind] = (compute.Ask(spec, bundles, label, {"names": names}), where)
        members[kind] = names
    except (DstabError, KeyError) as exc:
        where.error(f"{TITLES[kind]} group unavailable: {exc}")
results = {kind: (members[kind], res) for kind, res in compute.many(asks, sel.device, where_all=top).items()}

images = any(res.arrays["samples"].ndim == 5 for _, res in results.values())
grids = (
    "Each row of a grid is one model, each column one sample; a column shares its noise. A consistent group makes "
    "columns of near-identical images. "
)
whose = (
    "Your groups: any listed checkpoints of one kind (the sidebar adds your own)."
    if group == "chosen"
    else "The groups are the zoo's, for the dataset chosen in the sidebar."
)
intro.caption(f"{grids if images else ''}{whose}")
points_cols = None  # 2-D points: the groups side by side, each plot about square (equal axes)
for kind, (names, res) in results.items():
    shown = [row_name(n) for n in names]
    samples = res.arrays["samples"]
    where = st
    if samples.ndim != 5:
        points_cols = points_cols or dict(zip(results, figures.columns(len(results))))
        where = points_cols[kind]
    where.subheader(f"{TITLES[kind]}: C(q) = {res.meta['C_db']:.2f} dB")
    where.caption(heading_note(names, res.meta, samples.shape[1]))
    if samples.ndim == 5:
        fig = consistency_plots.image_grid(samples, shown, f"{TITLES[kind]}: a row per model, a column per noise")
        st.caption("Drag to zoom in, double-click to zoom out. Column i of every row starts from the same noise.")
        downloads.image(consistency_plots.grid(samples, scale=6, columns=samples.shape[1]), f"consistency-{kind}")
    else:
        fig = consistency_plots.linked_points(samples, shown, f"{TITLES[kind]}: each colour one shared noise")
        where.caption(
            "One marker symbol per model, one colour per sample: the faint line joins where the same "
            "noise went in each model. Short lines: a consistent group."
        )
    figures.show(fig, f"consistency-samples-{kind}", where, key=f"samples-{kind}")

for where, (kind, (names, res)) in zip(figures.columns(len(results) or 1), results.items()):
    heat = consistency_plots.psnr_heatmap(res.meta["psnr_matrix_db"], [short(n) for n in names], kind)
    figures.show(heat, f"psnr-{kind}", where, key=f"psnr-{kind}")

if results:
    st.subheader("Table 1, on this zoo")
    table = [  # zoo ids in full (a CSV read alone tells the dataset), a user's file by its label
        tables.consistency_row(kind, [n if n in entries else short(n) for n in names], res.meta)
        for kind, (names, res) in results.items()
    ]
    figures.table(table)
    st.caption(
        f"Paper, {paper.table1_text()}. PSNR capped at {consistency_mod.PSNR_CAP_DB:.0f} dB (identical samples)."
    )
    downloads.numbers(table, "consistency", extra={k: res.meta for k, (_, res) in results.items()})
    # the report's verdicts (dstab.verdicts) on these results: all seeds, collapsed models excluded and named
    matrices = {k: {"ids": names, "matrix": res.meta["psnr_matrix_db"]} for k, (names, res) in results.items()}
    x0_tests = [{"kind": "x0 group", **matrices.pop("x0")}] if "x0" in matrices else []
    row = {
        "family": sel.family,
        "sampler": sampler,
        "x0": x0_tests,
        "groups": {f"{k}-{group}": m for k, m in matrices.items()},
    }
    collapsed = {e for e, v in entries.items() if zooindex.is_collapsed(v)}
    claims = verdicts.consistency_claims(row, collapsed)
    if group == "chosen" and {"dm", "gan"} <= set(matrices):
        where_ = f"your chosen checkpoints, {sel.family}, {sampler}"
        # the user's files by their labels (a verdict names its models), the zoo's by id (their collapse records)
        dm, gan = (
            {"ids": [n if n in entries else short(n) for n in m["ids"]], "matrix": m["matrix"]}
            for m in (matrices["dm"], matrices["gan"])
        )
        claims.insert(0, verdicts.consistency_verdict(f"DMs more consistent than GANs ({where_})", dm, gan, collapsed))
    verdictpanel.draw(
        verdictpanel.PAPER["consistency"],
        verdictpanel.consistency_lines(claims),
        verdictpanel.collapse_note(sel.family, entries),
    )
