"""Interpolation: the loss along the straight line from an early to a late checkpoint of one run.

theta(alpha) = alpha * theta_final + (1 - alpha) * theta_early (the paper's
Sec. 3.2, after Goodfellow et al. 2015), beyond both ends too. DM and GAN on
one chart, each relative to its final checkpoint's loss; a smooth, unimodal
curve has roughness 0 (dstab.analysis.smoothness).
"""

import streamlit as st

from dashboard import analyses, compute, downloads, figures, sidebar, urlstate
from dstab.errors import DstabError

sel = sidebar.current()
st.title("Interpolation")
st.caption(
    "alpha = 0 is the run's early checkpoint (10% of training), alpha = 1 its final one. The loss is the final "
    "checkpoint's probe (its batch, its timestep; for a GAN its frozen partner network)."
)
c = st.columns(5)
role = urlstate.radio("GAN probe", ["G", "D"], "role", "G", where=c[1], horizontal=True).lower()
lo = urlstate.selectbox("From alpha", [-1.0, -0.5, -0.25, 0.0], "lo", -0.5, where=c[2])
hi = urlstate.selectbox("To alpha", [1.0, 1.25, 1.5, 2.0], "hi", 1.5, where=c[3])
steps = urlstate.selectbox("Points per unit", [4, 10, 20, 40, 100], "steps", 20, where=c[4])


def request(choice, t):
    final, early = sidebar.load_bundle(choice.path), sidebar.load_bundle(choice.early)
    return analyses.interpolation_request(final, early, choice.label, t, role, lo, hi, steps, sel.device)


has_dm_line = sel.dm is not None and sel.dm.early is not None
shown = compute.instant(lambda t: request(sel.dm, t), analyses.DM_TIMESTEP_CHOICES) if has_dm_line else []
t = urlstate.select_slider("DM timestep t", analyses.DM_TIMESTEP_CHOICES, "t", analyses.DM_TIMESTEPS[1], where=c[0],
                           **compute.marked(shown))  # fmt: skip

requests, labels = {}, {}
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
        requests[kind] = (request(choice, t), None)
        labels[kind] = choice.label
    except DstabError as exc:
        st.error(str(exc))
results = {kind: (labels[kind], res) for kind, res in compute.many(requests).items()}

if results:
    fig = figures.interpolation_curves(results)
    st.plotly_chart(fig, key="interpolation")
    downloads.figure(fig, "interpolation")
    table = [figures.roughness_row(label, kind, res.meta) for kind, (label, res) in results.items()]
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
