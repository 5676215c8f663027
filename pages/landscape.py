"""Loss landscape: DM and GAN 2-D surfaces side by side, each on its own scale (Li et al. 2018).

Each surface is L(theta + a d1 + b d2) over two filter-normalised random
directions. A DM's centre loss is far smaller than a GAN's, so by default each
surface is drawn on the min-max of its own loss; a shared relative rise
(L - L0)/|L0|, log loss and one raw range are options. The contour maps come
first; the WebGL 3-D surfaces and the DM across timesteps beside the GAN's G
and D (the paper's Fig. 2 and 10, from stored results only) are drawn on
request, so the first chart is as quick as any other page's.
"""

from dataclasses import replace

import streamlit as st

from dashboard import compute, datapick, downloads, figures, sidebar, timesteps, urlstate, verdictpanel
from dstab import zooresults
from dstab.analysis.specs import ProbeSpec
from dstab.errors import DstabError
from dstab.plots import surface as surface_plots
from dstab.plots import tables
from dstab.plots.smoothness_text import smoother_sentence

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
SPEC = zooresults.SURFACE
role = urlstate.radio(
    "GAN probe",
    ["G", "D"],
    "role",
    "G",
    where=c[1],
    horizontal=True,
    help="G: generator loss with D frozen; D: discriminator loss with G frozen",
).lower()
grid = urlstate.selectbox("Grid size", GRIDS, "grid", SPEC.grid, where=c[2])
radius = urlstate.selectbox("Radius r", RADII, "radius", SPEC.radius, where=c[3])
seed = urlstate.number("Direction seed", "dseed", SPEC.seed, 0, 10_000, where=c[4])
scale = urlstate.selectbox(
    "Scale", surface_plots.SCALES, "scale", surface_plots.OWN, where=c[5], help=surface_plots.SCALE_HELP
)


dm_bundle = sidebar.load_bundle(sel.dm.path) if sel.dm else None
gan_bundle = sidebar.load_bundle(sel.gan.path) if sel.gan else None
data = datapick.row(sel, {"dm": dm_bundle, "gan": gan_bundle})


def spec_at(kind: str, t: int, gan_role: str = role):
    """The surface spec of `kind` at these settings; None while its data is not chosen."""
    if kind not in data:
        return None
    probe = ProbeSpec.of(kind, t, gan_role, batch_size=SPEC.probe.batch_size, seed=SPEC.probe.seed, dataset=data[kind])
    return replace(SPEC, probe=probe, grid=grid, radius=radius, seed=seed)


dm_T = dm_bundle.diffusion.T if dm_bundle else None
dm_ready = [dm_bundle] if "dm" in data else []
timestep = timesteps.Control(lambda t: spec_at("dm", t), dm_ready, dm_T, c[0], sel.device)
t = timestep.t

results, cols = compute.side_by_side(sel, lambda bundle: spec_at(bundle.kind, t), "surface")
timestep.note_stored()
settings = {"grid": grid, "radius": radius, "direction seed": seed}

if results:
    views = surface_plots.views({k: r.arrays["loss"] for k, (_, r) in results.items()}, scale)
    for kind, (choice, res) in results.items():  # the 2-D maps first: quick to draw, the page's first chart
        where = cols[kind]
        a, b = res.arrays["alphas"], res.arrays["betas"]
        figures.show(
            surface_plots.contour(a, b, views[kind], surface_plots.title(choice.label, res.meta)),
            f"contour-{kind}",
            where,
        )
        what = {"model": choice.label, "probe": tables.probe_text(res.meta), **settings}
        grid_rows = tables.grid_rows(a, b, res.arrays["loss"])
        downloads.numbers(grid_rows, f"surface-{kind}", where=where, extra={"meta": res.meta}, columns=what)
    if set(results) == {"dm", "gan"}:
        st.info(smoother_sentence(*((ch.label, r.meta) for ch, r in results.values())))
    st.subheader("Smoothness, side by side")
    table = [row for _, (choice, res) in results.items() for row in tables.smoothness_rows(choice.label, res.meta)]
    figures.table(table)
    downloads.numbers(table, "smoothness", columns=settings)
    # WebGL surfaces cost a second or more each to draw in the browser: on request
    if urlstate.toggle("3-D surfaces (drawn on request: WebGL is slow to draw)", "surf3d"):
        for (kind, (choice, res)), where in zip(results.items(), figures.columns(2)):
            a, b = res.arrays["alphas"], res.arrays["betas"]
            surf = surface_plots.surface_3d(a, b, views[kind], surface_plots.title(choice.label, res.meta))
            figures.show(surf, f"surface-{kind}", where)
zoo_settings = (grid, radius, seed) == (SPEC.grid, SPEC.radius, SPEC.seed)
verdictpanel.landscape(
    sel.family,
    sel.manifest["entries"],
    "surface",
    shown=f"DM at t = {t} against the GAN's {role.upper()} loss"
    + (
        ""
        if zoo_settings
        else f", at grid {grid}, r = {radius:g}, direction seed {seed} (not the zoo's settings the verdicts use)"
    ),
)

st.subheader("Across timesteps, beside the GAN's G and D (the paper's Fig. 2 and 10)")
wanted = [(sel.dm, dm_bundle, spec_at("dm", t_), f"t = {t_}") for t_ in timesteps.choices(dm_T)] if dm_ready else []
if "gan" in data:
    wanted += [(sel.gan, gan_bundle, spec_at("gan", t, r), r.upper()) for r in ("g", "d")]
if urlstate.toggle(f"Draw the {len(wanted)} contour maps (stored results only)", "multiples"):
    panels, missing = [], []
    for choice, bundle, spec, what in wanted:
        name = f"{choice.label} {what}"
        try:
            res = compute.found(spec, [bundle], sel.device)
        except DstabError:  # a timestep past this model's T: simply not shown
            res = None
        if res is None:
            missing.append(name)
        else:
            panels.append((name, res.arrays["alphas"], res.arrays["betas"], res.arrays["loss"]))
    if panels:
        figures.show(surface_plots.small_multiples(panels), "surface-multiples")
        st.caption(
            "How the DM's surface changes with t, and the GAN's two losses: each map coloured within its own loss "
            f"range (stated under its title). Grid {grid}, r = {radius:g}, direction seed {seed}."
            + (f" Not stored yet (choose them above to compute): {', '.join(missing)}." if missing else "")
        )
    else:
        st.caption("No stored surfaces at these settings yet: the maps above compute them one at a time.")
