"""Hessian: eigenvalue spectral densities of a DM and a GAN overlaid, and the paper's Figure 4 numbers.

Top eigenvalues by Lanczos, the trace by Hutchinson, the density by
stochastic Lanczos quadrature (dstab.analysis.hessian). The paper reports
DM lambda_1 = 13.3, sigma^2 = 37.9 against GAN lambda_1 = 40.9, sigma^2 = 93.9.
"""

import streamlit as st

from dashboard import analyses, compute, costs, downloads, figures, sidebar, urlstate
from dstab.errors import DstabError

sel = sidebar.current()
st.title("Hessian spectrum")
st.caption(
    "The curvature of each model's loss at its trained weights. Sharp minima have large top eigenvalues lambda_1 "
    "and a wide spectrum. Same probes as the landscape page: a DM at timestep t, a GAN's G or D loss."
)
c = st.columns(6)
t = urlstate.select_slider("DM timestep t", analyses.DM_TIMESTEPS_CHOICES, "t", analyses.DM_TIMESTEPS[1], where=c[0])
role = urlstate.radio("GAN probe", ["g", "d"], "role", "g", where=c[1], horizontal=True)
top_k = urlstate.number("Top-k", "k", 5, 1, 50, where=c[2])
trace_samples = urlstate.number("Trace samples", "trace", 100, 2, 2000, where=c[3])
slq_runs = urlstate.number("SLQ runs", "slq", 3, 1, 50, where=c[4])
seed = urlstate.number("Seed", "seed", 0, 0, 10_000, where=c[5])

results = {}
cols = dict(zip(("dm", "gan"), st.columns(2)))
for kind, choice in (("dm", sel.dm), ("gan", sel.gan)):
    where = cols[kind]
    if choice is None:
        where.error(f"Pick a {kind.upper()} in the sidebar.")
        continue
    try:
        bundle = sidebar.load_bundle(choice.path)
        settings = analyses.probe_settings(bundle, t, role)
        req = analyses.hessian_request(bundle, choice.sha256 or bundle.sha256, settings, top_k, trace_samples, slq_runs,
                                       seed, sel.device)  # fmt: skip
        per = costs.seconds_per_call(("loss", choice.ref, str(settings), str(sel.device)),
                                     analyses.loss_call(bundle, settings, sel.device))  # fmt: skip
        with where:
            res = compute.cached(req.name, req.params, req.shas, req.compute, req.units * per, req.label)
    except DstabError as exc:
        where.error(str(exc))
        continue
    if res is not None:
        results[kind] = (choice, res)

if results:
    labelled = {kind: (choice.label, res) for kind, (choice, res) in results.items()}
    density = figures.spectral_density(labelled)
    top = figures.top_eigenvalues(labelled)
    left, right = st.columns(2)
    left.plotly_chart(density, key="density")
    downloads.figure(density, "hessian-density", where=left)
    right.plotly_chart(top, key="top-eigenvalues")
    downloads.figure(top, "hessian-top", where=right)
    st.subheader("The paper's Figure 4 numbers")
    table = [figures.hessian_row(label, kind, res.meta) for kind, (label, res) in labelled.items()]
    st.dataframe(table, hide_index=True)
    st.caption(
        "Paper (CIFAR-10 / ImageNet models): DM lambda_1 = 13.3, sigma^2 = 37.9; GAN lambda_1 = 40.9, sigma^2 = 93.9. "
        "sigma^2 here is the variance of the eigenvalue distribution, tr(H^2)/n - (tr(H)/n)^2, from SLQ; the "
        "unweighted variance of the Ritz values (closer to what PyHessian's density nodes give) is shown beside it."
    )
    downloads.numbers(table, "hessian", extra={k: res.meta for k, (_, res) in labelled.items()})
