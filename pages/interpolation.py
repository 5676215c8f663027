"""Interpolation: the loss along the straight line from an early to a late checkpoint of one run.

theta(alpha) = alpha * theta_final + (1 - alpha) * theta_early (the paper's
Sec. 3.2, after Goodfellow et al. 2015), beyond both ends too. DM and GAN on
one chart, each relative to its final checkpoint's loss; a smooth, unimodal
curve has roughness 0 (dstab.analysis.smoothness).
"""

from dataclasses import replace

import streamlit as st

from dashboard import compute, downloads, sidebar, timesteps, urlstate, verdictpanel
from dstab import zooresults
from dstab.analysis.interpolation import rise_over_end
from dstab.analysis.specs import ProbeSpec
from dstab.errors import DstabError
from dstab.plots import curve as curve_plots
from dstab.plots import tables

sel = sidebar.current()
st.title("Interpolation")
st.caption(
    "alpha = 0 is the run's early checkpoint (10% of training), alpha = 1 its final one. The loss is the final "
    "checkpoint's probe (its batch, its timestep; for a GAN its frozen partner network)."
)
c = st.columns(5)
SPEC = zooresults.CURVE
role = urlstate.radio("GAN probe", ["G", "D"], "role", "G", where=c[1], horizontal=True).lower()
lo = urlstate.selectbox("From alpha", [-1.0, -0.5, -0.25, 0.0], "lo", SPEC.lo, where=c[2])
hi = urlstate.selectbox("To alpha", [1.0, 1.25, 1.5, 2.0], "hi", SPEC.hi, where=c[3])
steps = urlstate.selectbox("Points per unit", [4, 10, 20, 40, 100], "steps", SPEC.steps, where=c[4])


def spec_at(kind: str, t: int):
    probe = ProbeSpec.of(kind, t, role, batch_size=SPEC.probe.batch_size, seed=SPEC.probe.seed)
    return replace(SPEC, probe=probe, lo=lo, hi=hi, steps=steps)


def pair(choice) -> list:
    """From the early checkpoint (alpha = 0) to the final one (alpha = 1), the zoo's convention."""
    return [sidebar.load_bundle(choice.path), sidebar.load_bundle(choice.early)]


has_line = sel.dm is not None and sel.dm.early is not None
line = pair(sel.dm) if has_line else []
timestep = timesteps.Control(lambda t: spec_at("dm", t), line, line[0].diffusion.T if line else None, c[0])
t = timestep.t

asks, labels = {}, {}
for kind, choice in (("dm", sel.dm), ("gan", sel.gan)):
    if choice is None:
        st.error(f"Pick a {kind.upper()} in the sidebar.")
        continue
    if choice.early is None:
        st.error(
            f"{choice.label} has no early checkpoint to interpolate from: pick a zoo entry, or run "
            "`python -m dstab interpolate` on your two checkpoints."
        )
        continue
    try:
        asks[kind] = (compute.Ask(spec_at(kind, t), pair(choice), f"{choice.label} interpolation"), None)
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
    st.plotly_chart(fig, key="interpolation")
    downloads.figure(fig, "interpolation")
    table = [tables.roughness_row(label, kind, res.meta) for kind, (label, res) in results.items()]
    st.subheader("Roughness")
    st.dataframe(table, hide_index=True)
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
