"""Loss landscape: DM and GAN 2-D surfaces side by side, each on its own scale (Li et al. 2018).

Each surface is L(theta + a d1 + b d2) over two filter-normalised random
directions. A DM's centre loss is far smaller than a GAN's, so by default each
surface is drawn on the min-max of its own loss; a shared relative rise
(L - L0)/|L0|, log loss and one raw range are options. Below: the DM across
timesteps beside the GAN's G and D (the paper's Fig. 2 and 10), from stored
results only.
"""

import streamlit as st

from dashboard import analyses, compute, downloads, figures, landscapeviews, sidebar, urlstate

GRIDS = [5, 11, 21, 31, 41, 51]
RADII = [0.1, 0.25, 0.5, 1.0, 2.0]

sel = sidebar.current()
st.title("Loss landscape")
st.caption(
    "Two filter-normalised random directions around each model's weights (Li et al. 2018). DMs are probed at one "
    "timestep t (the paper shows several: see below); GANs through the generator loss with D frozen (G) or the "
    "discriminator loss with G frozen (D). Each surface has its own colour and height scale by default."
)
c = st.columns(6)
role = urlstate.radio("GAN probe", ["G", "D"], "role", "G", where=c[1], horizontal=True,
                      help="G: generator loss with D frozen; D: discriminator loss with G frozen").lower()  # fmt: skip
grid = urlstate.selectbox("Grid size", GRIDS, "grid", 21, where=c[2])
radius = urlstate.selectbox("Radius r", RADII, "radius", 1.0, where=c[3])
seed = urlstate.number("Direction seed", "dseed", 0, 0, 10_000, where=c[4])
scale = urlstate.selectbox("Scale", landscapeviews.SCALES, "scale", landscapeviews.OWN, where=c[5],
                           help=landscapeviews.SCALE_HELP)  # fmt: skip


def request(choice, bundle, t, gan_role=role):
    return analyses.surface_request(bundle, choice.label, t, gan_role, grid, radius, seed, sel.device)


dm_bundle = sidebar.load_bundle(sel.dm.path) if sel.dm else None
shown = compute.instant(lambda t: request(sel.dm, dm_bundle, t), analyses.DM_TIMESTEP_CHOICES) if sel.dm else []
t = urlstate.select_slider("DM timestep t", analyses.DM_TIMESTEP_CHOICES, "t", analyses.DM_TIMESTEPS[1], where=c[0],
                           **compute.marked(shown))  # fmt: skip

results, cols = compute.side_by_side(sel, lambda choice, bundle: request(choice, bundle, t))
settings = {"grid": grid, "radius": radius, "direction seed": seed}

if results:
    shown_views = landscapeviews.views({k: r.arrays["loss"] for k, (_, r) in results.items()}, scale)
    for kind, (choice, res) in results.items():
        where = cols[kind]
        a, b = res.arrays["alphas"], res.arrays["betas"]
        title = f"{choice.label} ({figures.probe_text(res.meta)}), r = {res.meta['radius']:g}"
        surf = landscapeviews.surface_3d(a, b, shown_views[kind], title)
        cont = landscapeviews.contour(a, b, shown_views[kind], title)
        where.plotly_chart(surf, key=f"surface-{kind}")
        where.plotly_chart(cont, key=f"contour-{kind}")
        rows = figures.smoothness_rows(choice.label, res.meta)
        where.dataframe(rows, hide_index=True)
        downloads.figure(surf, f"surface-{kind}", where=where)
        downloads.figure(cont, f"contour-{kind}", where=where)
        what = {"model": choice.label, "probe": figures.probe_text(res.meta), **settings}
        downloads.numbers(figures.grid_rows(a, b, res.arrays["loss"]), f"surface-{kind}", where=where,
                          extra={"meta": res.meta}, columns=what)  # fmt: skip
    if set(results) == {"dm", "gan"}:
        st.info(landscapeviews.smoother_sentence(*((c.label, r.meta) for c, r in results.values())))
    st.subheader("Smoothness, side by side")
    table = [row for _, (choice, res) in results.items() for row in figures.smoothness_rows(choice.label, res.meta)]
    st.dataframe(table, hide_index=True)
    downloads.numbers(table, "smoothness", columns=settings)

st.subheader("Across timesteps, beside the GAN's G and D (the paper's Fig. 2 and 10)")
panels, missing = [], []
pairs = [(sel.dm, dm_bundle, t_, None) for t_ in analyses.DM_TIMESTEP_CHOICES] if sel.dm else []
if sel.gan:
    gan_bundle = sidebar.load_bundle(sel.gan.path)
    pairs += [(sel.gan, gan_bundle, analyses.DM_TIMESTEPS[1], r) for r in ("g", "d")]
for choice, bundle, t_, gan_role in pairs:
    req = request(choice, bundle, t_, gan_role or role)
    name = f"{choice.label} {gan_role.upper()}" if gan_role else f"{choice.label} t = {t_}"
    res = compute.found(req)
    if res is None:
        missing.append(name)
    else:
        panels.append((name, res.arrays["alphas"], res.arrays["betas"], res.arrays["loss"]))
if panels:
    multiples = landscapeviews.small_multiples(panels)
    st.plotly_chart(multiples, key="small-multiples")
    st.caption(
        "Contour maps, each on its own loss range (stated under its title): how the DM's surface changes with t, "
        f"and the GAN's two losses. Grid {grid}, r = {radius:g}, direction seed {seed}."
        + (f" Not stored yet (choose them above to compute): {', '.join(missing)}." if missing else "")
    )
    downloads.figure(multiples, "surface-multiples")
else:
    st.caption("No stored surfaces at these settings yet: the plots above compute them one at a time.")
