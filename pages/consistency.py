"""Consistency (the paper's Sec. 3.1, Eq. 1): do models of one group draw the same samples from one seed?

N models of a group (different inits, or different structures) each draw M
samples from ONE sampling seed: DMs share x_T and every step's noise, GANs
share z. C(q) is the mean PSNR of models 2..N against model 1. The paper's
Table 1: DMs 14-20 dB, GANs 6-10 dB; x0-prediction DMs lose it (Fig. 9).
"""

from dataclasses import replace

import streamlit as st

from dashboard import compute, downloads, sidebar, urlstate, verdictpanel
from dstab import verdicts, zooindex, zooresults
from dstab.analysis import consistency as consistency_mod
from dstab.errors import DstabError
from dstab.plots import consistency as consistency_plots
from dstab.plots import tables

GROUPS = {"different inits": "init", "different structures": "structure"}  # shown -> zoo group suffix

sel = sidebar.current()
st.title("Consistency")
intro = st.empty()  # filled once the samples say whether they are images or 2-D points
c = st.columns(5)
group = GROUPS[urlstate.radio("Group", list(GROUPS), "group", "different inits", where=c[0])]
SPEC = zooresults.CONSISTENCY
seed = urlstate.number("Sampling seed", "seed", SPEC.seed, 0, 10_000, where=c[1])
sampler = urlstate.radio("DM sampler", ["ddpm", "ddim"], "sampler", SPEC.sampler, where=c[2], horizontal=True)
steps = urlstate.number("DDIM steps", "steps", 50, 2, 1000, where=c[3]) if sampler == "ddim" else None
num = urlstate.number("Samples M", "m", SPEC.num, 1, 256, where=c[4])
x0 = urlstate.toggle(
    "x0-prediction counterexample (paper Fig. 9): x0 DMs of three inits beside the eps DMs and GANs", "x0"
)
if x0:
    group = "init"  # the paper's test compares groups of different inits
TITLES = {"dm": "DM", "x0": "DM, x0-prediction", "gan": "GAN"}
entries = sel.manifest["entries"]


def group_members(kind: str) -> list[str]:
    return consistency_mod.group_ids(sel.family, "x0-init" if kind == "x0" else f"{kind}-{group}")


def row_name(eid: str) -> str:
    label = zooindex.collapse_label(entries.get(eid, {}))
    return eid.split("/", 1)[1] + (f" ({label})" if label else "")


def heading_note(names: list[str], meta: dict, m: int) -> str:
    """What the heading's C(q) is over, naming any collapsed model in it and the score without it."""
    text = f"Mean PSNR against {names[0].split('/', 1)[1]}, over all M = {m} samples of N = {len(names)} models"
    gone, without = verdictpanel.without_collapsed(names, meta["psnr_matrix_db"], entries)
    if not gone:
        return text + "."
    shown = "no pair left" if without is None else f"{without:.2f} dB"
    return text + f", collapsed {', '.join(n.split('/', 1)[1] for n in gone)} included; without it: {shown}."


kinds = ("dm", "x0", "gan") if x0 else ("dm", "gan")
top = st.empty()  # "Compute all", above the columns
cols = dict(zip(kinds, st.columns(len(kinds))))
asks, members = {}, {}
for kind in kinds:
    where = cols[kind]
    try:
        names = group_members(kind)
        choices = [sidebar.zoo_choices(sel.manifest["entries"])[n] for n in names]
        bundles = [sidebar.load_bundle(ch.path) for ch in choices]
        spec = replace(SPEC, num=num, seed=seed, sampler=sampler, steps=steps).for_kind(bundles[0].kind)
        label = f"consistency of {', '.join(n.split('/')[-1] for n in names)}"
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
intro.caption(f"{grids if images else ''}The groups are the zoo's, for the dataset chosen in the sidebar.")
points_cols = None  # 2-D points: the groups side by side, each plot about square (equal axes)
for kind, (names, res) in results.items():
    shown = [row_name(n) for n in names]
    samples = res.arrays["samples"]
    where = st
    if samples.ndim != 5:
        points_cols = points_cols or dict(zip(results, st.columns(len(results))))
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
    where.plotly_chart(fig, key=f"samples-{kind}")
    downloads.figure(fig, f"consistency-samples-{kind}", where=where)

for where, (kind, (names, res)) in zip(st.columns(len(results) or 1), results.items()):
    heat = consistency_plots.psnr_heatmap(res.meta["psnr_matrix_db"], [n.split("/", 1)[1] for n in names], kind)
    where.plotly_chart(heat, key=f"psnr-{kind}")
    downloads.figure(heat, f"psnr-{kind}", where=where)

if results:
    st.subheader("Table 1, on this zoo")
    table = [tables.consistency_row(kind, names, res.meta) for kind, (names, res) in results.items()]
    st.dataframe(table, hide_index=True)
    st.caption(
        "Paper, Table 1 (M = 32): Improved Diffusion CIFAR-10 20.14 dB vs DCGAN 10.48; Guided Diffusion ImageNet128 "
        "17.23 vs BigGAN 8.58; U-ViT ImageNet512 14.37 vs BigGAN 6.40. PSNR capped at "
        f"{consistency_mod.PSNR_CAP_DB:.0f} dB (identical samples)."
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
    verdictpanel.draw(
        verdictpanel.PAPER["consistency"],
        verdictpanel.consistency_lines(verdicts.consistency_claims(row, collapsed)),
        verdictpanel.collapse_note(sel.family, entries),
    )
