"""Loss landscape: DM and GAN 2-D surfaces side by side on one relative scale (Li et al. 2018).

Each surface is L(theta + a d1 + b d2) over two filter-normalised random
directions. Raw losses of a DM and a GAN are not comparable, so both are
drawn as the relative rise (L - L0) / |L0| over the centre loss L0, on one
colour and z scale.
"""

from dataclasses import replace

import streamlit as st

from dashboard import compute, downloads, sidebar, urlstate
from dstab import zooresults
from dstab.analysis.landscape import rise_over_centre
from dstab.analysis.specs import ProbeSpec
from dstab.plots import surface as surface_plots
from dstab.plots import tables

GRIDS = [5, 11, 21, 31, 41, 51]
RADII = [0.1, 0.25, 0.5, 1.0, 2.0]

sel = sidebar.current()
st.title("Loss landscape")
st.caption(
    "Two filter-normalised random directions around each model's weights (Li et al. 2018). DMs are probed at one "
    "timestep t (the paper shows several); GANs through the generator loss with D frozen (G) or the discriminator "
    "loss with G frozen (D). Colours and heights are the relative rise (L - L0) / |L0|, shared by both plots."
)
c = st.columns(5)
SPEC = zooresults.SURFACE
t = urlstate.select_slider("DM timestep t", compute.DM_TIMESTEP_CHOICES, "t", zooresults.DM_TIMESTEPS[1], where=c[0])
role = urlstate.radio("GAN probe", ["G", "D"], "role", "G", where=c[1], horizontal=True,
                      help="G: generator loss with D frozen; D: discriminator loss with G frozen").lower()  # fmt: skip
grid = urlstate.selectbox("Grid size", GRIDS, "grid", SPEC.grid, where=c[2])
radius = urlstate.selectbox("Radius r", RADII, "radius", SPEC.radius, where=c[3])
seed = urlstate.number("Direction seed", "dseed", SPEC.seed, 0, 10_000, where=c[4])


def spec_for(bundle):
    probe = ProbeSpec.of(bundle.kind, t, role, batch_size=SPEC.probe.batch_size, seed=SPEC.probe.seed)
    return replace(SPEC, probe=probe, grid=grid, radius=radius, seed=seed)


results, cols = compute.side_by_side(sel, spec_for, "surface")

if results:
    rel = {k: rise_over_centre(r.arrays["loss"]) for k, (_, r) in results.items()}
    zmax = surface_plots.zmax_of(rel.values())
    for kind, (choice, res) in results.items():
        where = cols[kind]
        a, b = res.arrays["alphas"], res.arrays["betas"]
        title = surface_plots.title(choice.label, res.meta)
        surf = surface_plots.surface_3d(a, b, rel[kind], title, zmax, kind)
        cont = surface_plots.contour(a, b, rel[kind], title, zmax)
        where.plotly_chart(surf, key=f"surface-{kind}")
        where.plotly_chart(cont, key=f"contour-{kind}")
        rows = tables.smoothness_rows(choice.label, res.meta)
        where.dataframe(rows, hide_index=True)
        downloads.figure(surf, f"surface-{kind}", where=where)
        downloads.figure(cont, f"contour-{kind}", where=where)
        downloads.numbers(tables.grid_rows(a, b, res.arrays["loss"]), f"surface-{kind}", where=where,
                          extra={"meta": res.meta})  # fmt: skip
    st.subheader("Smoothness, side by side")
    table = [row for _, (choice, res) in results.items() for row in tables.smoothness_rows(choice.label, res.meta)]
    st.dataframe(table, hide_index=True)
    downloads.numbers(table, "smoothness")
