"""Interpolation: the loss along the straight line between two checkpoints of one architecture.

theta(alpha) = alpha * theta_final + (1 - alpha) * theta_early (the paper's
Sec. 3.2, after Goodfellow et al. 2015), beyond both ends too. The final end is
the sidebar's pick; the early end is the same run's early checkpoint by default
(a run folder's first step for a user's checkpoint) or any checkpoint of the same
architecture (dashboard.partners). DM and GAN on one chart, each relative to its
final checkpoint's loss; a smooth, unimodal curve has roughness 0
(dstab.analysis.smoothness).
"""

from dataclasses import replace

import streamlit as st

from dashboard import compute, datapick, downloads, figures, partners, sidebar, timesteps, urlstate, verdictpanel
from dstab import zooresults
from dstab.analysis.interpolation import rise_over_end
from dstab.analysis.specs import ProbeSpec
from dstab.errors import DstabError
from dstab.plots import curve as curve_plots
from dstab.plots import tables

sel = sidebar.current()
st.title("Interpolation")
st.caption(
    "alpha = 1 is the model picked in the sidebar, alpha = 0 the checkpoint chosen below: by default the same "
    "run's early checkpoint (the zoo's at 10% of training; a run folder's first saved step). The loss is the "
    "alpha = 1 checkpoint's probe (its batch, its timestep; for a GAN its frozen partner network)."
)
c = st.columns(5)
SPEC = zooresults.CURVE
role = urlstate.radio("GAN probe", ["G", "D"], "role", "G", where=c[1], horizontal=True).lower()
lo = urlstate.selectbox("From alpha", [-1.0, -0.5, -0.25, 0.0], "lo", SPEC.lo, where=c[2])
hi = urlstate.selectbox("To alpha", [1.0, 1.25, 1.5, 2.0], "hi", SPEC.hi, where=c[3])
steps = urlstate.selectbox("Points per unit", [4, 10, 20, 40, 100], "steps", SPEC.steps, where=c[4])


bundles = {k: sidebar.load_bundle(ch.path) for k, ch in (("dm", sel.dm), ("gan", sel.gan)) if ch is not None}
data = datapick.row(sel, bundles)
ends = {}  # kind -> the checkpoint at alpha = 0
for (kind, choice), where in zip((("dm", sel.dm), ("gan", sel.gan)), st.columns(2)):
    if choice is None:
        where.error(f"Pick a {kind.upper()} in the sidebar.")
        continue
    offered = partners.early_ends(choice, sel)
    if not offered:
        where.error(
            f"{choice.label}: no other checkpoint of its architecture is listed to interpolate from; add one in "
            "the sidebar (a path or an upload), or pick a zoo entry."
        )
        continue
    # the early end belongs to the pick it was chosen for: another pick starts from its own default
    name, owner = f"{kind}from", urlstate.key(f"{kind}from") + "#for"
    if st.session_state.get(owner) not in (None, choice.ref):
        st.session_state.pop(urlstate.key(name), None)
        if name in st.query_params:
            del st.query_params[name]
    st.session_state[owner] = choice.ref
    start = urlstate.selectbox(
        f"{kind.upper()} line from (alpha = 0)",
        list(offered),
        name,
        next(iter(offered)),
        where=where,
        help=f"alpha = 1 is {choice.label}, the sidebar's pick",
    )
    ends[kind] = offered[start]


def spec_at(kind: str, t: int):
    """The curve spec of `kind`; None while its data is not chosen."""
    if kind not in data:
        return None
    probe = ProbeSpec.of(kind, t, role, batch_size=SPEC.probe.batch_size, seed=SPEC.probe.seed, dataset=data[kind])
    return replace(SPEC, probe=probe, lo=lo, hi=hi, steps=steps)


def pair(kind: str) -> list:
    """The sidebar's pick (alpha = 1) and the chosen early end (alpha = 0)."""
    return [bundles[kind], sidebar.load_bundle(ends[kind])]


line = pair("dm") if "dm" in ends and "dm" in data else []
timestep = timesteps.Control(lambda t: spec_at("dm", t), line, line[0].diffusion.T if line else None, c[0], sel.device)
t = timestep.t

asks, labels = {}, {}
for kind, choice in (("dm", sel.dm), ("gan", sel.gan)):
    if kind not in ends or kind not in data:
        continue
    try:
        asks[kind] = (compute.Ask(spec_at(kind, t), pair(kind), f"{choice.label} interpolation"), None)
        labels[kind] = choice.label
    except DstabError as exc:
        st.error(str(exc))
results = {kind: (labels[kind], res) for kind, res in compute.many(asks, sel.device).items()}
timestep.note_stored()

if results:
    rows = {
        kind: (label, res.meta, res.arrays["alphas"], rise_over_end(res.arrays["alphas"], res.arrays["loss"]))
        for kind, (label, res) in results.items()
    }
    fig = curve_plots.curves(rows)
    figures.show(fig, "interpolation")
    table = [tables.roughness_row(label, kind, res.meta) for kind, (label, res) in results.items()]
    st.subheader("Roughness")
    figures.table(table)
    st.caption(
        "roughness = (total variation - monotone envelope) / (max - min): 0 for a curve that falls to one minimum "
        "and rises again; each extra bump of height b adds 2b / range. barrier = the largest rise above the chord "
        "between alpha = 0 and 1."
    )
    curves = [
        {"model": label, "alpha": float(a), "loss": float(v)}
        for kind, (label, res) in results.items()
        for a, v in zip(res.arrays["alphas"], res.arrays["loss"])
    ]
    settings = {"from alpha": lo, "to alpha": hi, "points per unit": steps}
    downloads.numbers(table, "roughness", extra={"curves": curves}, columns=settings)
    downloads.numbers(curves, "interpolation-curves", columns=settings)
verdictpanel.landscape(sel.family, sel.manifest["entries"], "interpolate")
