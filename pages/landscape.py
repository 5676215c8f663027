"""Loss landscape: DM and GAN 2-D surfaces side by side on one relative scale (Li et al. 2018).

Each surface is L(theta + a d1 + b d2) over two filter-normalised random
directions. Raw losses of a DM and a GAN are not comparable, so both are
drawn as the relative rise (L - L0) / |L0| over the centre loss L0, on one
colour and z scale.
"""

import numpy as np
import streamlit as st

from dashboard import analyses, compute, downloads, figures, sidebar, urlstate

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
role = urlstate.radio("GAN probe", ["G", "D"], "role", "G", where=c[1], horizontal=True,
                      help="G: generator loss with D frozen; D: discriminator loss with G frozen").lower()  # fmt: skip
grid = urlstate.selectbox("Grid size", GRIDS, "grid", 21, where=c[2])
radius = urlstate.selectbox("Radius r", RADII, "radius", 1.0, where=c[3])
seed = urlstate.number("Direction seed", "dseed", 0, 0, 10_000, where=c[4])


def request(choice, bundle, t):
    return analyses.surface_request(bundle, choice.label, t, role, grid, radius, seed, sel.device)


dm_bundle = sidebar.load_bundle(sel.dm.path) if sel.dm else None
shown = compute.instant(lambda t: request(sel.dm, dm_bundle, t), analyses.DM_TIMESTEP_CHOICES) if sel.dm else []
t = urlstate.select_slider("DM timestep t", analyses.DM_TIMESTEP_CHOICES, "t", analyses.DM_TIMESTEPS[1], where=c[0],
                           **compute.marked(shown))  # fmt: skip

results, cols = compute.side_by_side(sel, lambda choice, bundle: request(choice, bundle, t))

if results:
    rel = {k: figures.relative_rise(r.arrays["loss"]) for k, (_, r) in results.items()}
    zmax = max(float(np.nanmax(np.abs(v))) for v in rel.values()) or 1.0
    for kind, (choice, res) in results.items():
        where = cols[kind]
        a, b = res.arrays["alphas"], res.arrays["betas"]
        title = f"{choice.label} ({figures.probe_text(res.meta)}), r = {res.meta['radius']:g}"
        surf = figures.surface_3d(a, b, rel[kind], title, zmax, kind)
        cont = figures.contour(a, b, rel[kind], title, zmax)
        where.plotly_chart(surf, key=f"surface-{kind}")
        where.plotly_chart(cont, key=f"contour-{kind}")
        rows = figures.smoothness_rows(choice.label, res.meta)
        where.dataframe(rows, hide_index=True)
        downloads.figure(surf, f"surface-{kind}", where=where)
        downloads.figure(cont, f"contour-{kind}", where=where)
        downloads.numbers(figures.grid_rows(a, b, res.arrays["loss"]), f"surface-{kind}", where=where,
                          extra={"meta": res.meta})  # fmt: skip
    st.subheader("Smoothness, side by side")
    table = [row for _, (choice, res) in results.items() for row in figures.smoothness_rows(choice.label, res.meta)]
    st.dataframe(table, hide_index=True)
    downloads.numbers(table, "smoothness")
