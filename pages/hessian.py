"""Hessian: eigenvalue spectral densities of a DM and a GAN overlaid, and the paper's Figure 4 numbers.

Top eigenvalues by Lanczos, the trace by Hutchinson, the density by
stochastic Lanczos quadrature (dstab.analysis.hessian). The paper reports
DM lambda_1 = 13.3, sigma^2 = 37.9 against GAN lambda_1 = 40.9, sigma^2 = 93.9.
"""

from dataclasses import replace

import streamlit as st

from dashboard import compute, datapick, downloads, figures, sidebar, timesteps, urlstate, verdictpanel
from dstab import paper, zooresults
from dstab.plots import hessian as hessian_plots
from dstab.plots import tables

sel = sidebar.current()
st.title("Hessian spectrum")
st.caption(
    "The curvature of each model's loss at its trained weights. Sharp minima have large top eigenvalues lambda_1 "
    "and a wide spectrum. Same probes as the landscape page: a DM at timestep t, a GAN's G or D loss."
)
c = st.columns([1.6, 1, 1, 1, 1, 1])
TIMESTEP_HELP = "the report's default averages the loss over t = T/8, 3T/8, 5T/8, 7T/8"
dm_T = sidebar.load_bundle(sel.dm.path).diffusion.T if sel.dm else None
t = urlstate.selectbox(
    "DM timestep t",
    [compute.QUARTILES, *timesteps.choices(dm_T)],
    "t",
    compute.QUARTILES,
    where=c[0],
    help=TIMESTEP_HELP,
    keep_nearest=True,
)
role = urlstate.radio(
    "GAN probe",
    ["G", "D"],
    "role",
    "G",
    where=c[1],
    horizontal=True,
    help="G: generator loss with D frozen; D: discriminator loss with G frozen",
).lower()
SPEC = zooresults.HESSIAN  # the report's probe and settings, which `dstab report` ships for the zoo
top_k = urlstate.number("Top-k", "k", SPEC.top_k, 1, 50, where=c[2])
trace_samples = urlstate.number("Trace samples", "trace", SPEC.trace_samples, 2, 2000, where=c[3])
slq_runs = urlstate.number("SLQ runs", "slq", SPEC.slq_runs, 1, 50, where=c[4])
seed = urlstate.number("Seed", "seed", SPEC.seed, 0, 10_000, where=c[5])
with st.expander("Lanczos: tolerance, products, check"):
    e = st.columns(3)
    tol = urlstate.number("tol (x spectral radius)", "tol", SPEC.tol, 1e-8, 0.1, step=1e-5, format="%.0e", where=e[0])
    max_steps = urlstate.number("max products", "steps", SPEC.max_steps, 10, 1000, where=e[1])
    verify = urlstate.toggle("check the top-k (off: unverified)", "verify", SPEC.verify, where=e[2])


data = datapick.row(
    sel, {k: sidebar.load_bundle(ch.path) for k, ch in (("dm", sel.dm), ("gan", sel.gan)) if ch is not None}
)


def spec_for(bundle):
    """The report's probe (a DM at the quartile midpoints) or a DM at one timestep; a GAN by role. None
    while the model's data is not chosen."""
    if bundle.kind not in data:
        return None
    probe = replace(SPEC.probe, role=role if bundle.kind == "gan" else None, dataset=data[bundle.kind])
    if bundle.kind == "dm" and t != compute.QUARTILES:
        probe = replace(probe, timesteps=(int(t),))
    counts = {"top_k": top_k, "trace_samples": trace_samples, "slq_runs": slq_runs, "seed": seed}
    return replace(SPEC, probe=probe, tol=tol, max_steps=max_steps, verify=verify, **counts)


results, cols = compute.side_by_side(sel, spec_for, "Hessian")

if results:
    labelled = {kind: (choice.label, res) for kind, (choice, res) in results.items()}
    d1, d2 = st.columns(2)
    scale = urlstate.radio(
        "Density",
        ["log", "linear"],
        "density",
        "log",
        where=d1,
        horizontal=True,
        help="log: the tails, 8 decades below the highest peak; linear: where the mass is",
    )
    axes = urlstate.radio(
        "Eigenvalue axis",
        list(hessian_plots.DENSITY_AXES),
        "xaxes",
        hessian_plots.DENSITY_AXES[0],
        where=d2,
        horizontal=True,
        help="each model over its own eigenvalue range shows a DM's mass near 0 beside a GAN's wider one",
    )
    density = hessian_plots.spectral_density(labelled, log_y=scale == "log", axes=axes)
    left, right = figures.columns(2)
    figures.show(density, "hessian-density", left, key="density")
    figures.show(hessian_plots.top_eigenvalues(labelled), "hessian-top", right, key="top-eigenvalues")
    st.subheader("The paper's Figure 4 numbers")
    table = [tables.hessian_row(label, kind, res) for kind, (label, res) in labelled.items()]
    figures.table(table)
    st.caption(
        f"Paper (CIFAR-10 / ImageNet models): {paper.hessian_text()}. "
        "sigma^2 here is the variance of the eigenvalue distribution, tr(H^2)/n - (tr(H)/n)^2, from SLQ; the "
        "unweighted variance of the Ritz values (closer to what PyHessian's density nodes give) is shown beside it."
    )
    downloads.numbers(
        table,
        "hessian",
        extra={k: {**res.meta, "probe": res.params["probe"]} for k, (_, res) in labelled.items()},
        columns={"top_k": top_k, "trace_samples": trace_samples, "slq_runs": slq_runs, "seed": seed},
    )

# Memory plans and per-block spectra (dstab.analysis.hessian_memory, hessian_blocks): one section
for choice, res in results.values():
    st.caption(f"{choice.label}: {res.meta.get('memory_plan', 'no memory plan recorded (a result from before plans)')}")
st.subheader("Where the curvature sits, block by block")
if urlstate.toggle("Per-block lambda_1 and trace (one Lanczos run per block)", "blocks", False):
    per_block, _ = compute.side_by_side(sel, lambda b: replace(spec_for(b), per_block=True), "per-block Hessian")
    if per_block:
        labelled_blocks = {kind: (choice.label, res) for kind, (choice, res) in per_block.items()}
        blocks_fig = hessian_plots.block_spectra(labelled_blocks)
        st.plotly_chart(blocks_fig, key="blocks")
        downloads.figure(blocks_fig, "hessian-blocks")

verdictpanel.draw(
    verdictpanel.PAPER["hessian"],
    verdictpanel.hessian_lines(
        zooresults.shipped_hessian_claims(sel.family, sel.manifest["entries"]), ("lambda_1", "sigma2", "Ritz variance")
    ),
    verdictpanel.collapse_note(sel.family, sel.manifest["entries"]),
)
