"""Teaching page: forward noising of real data across t, and a DM's reverse trajectory.

Forward: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. 2020, Eq. 4)
with the selected DM's own schedule and one noise draw eps (the noise seed) for
every t. Reverse: the DM samples from one seed and we show x_t, its predicted
noise and its estimate of x_0 at every step, which sharpens from the data mean
towards the final sample.
"""

import streamlit as st
import torch

from dashboard import compute, datapick, downloads, figures, sidebar, urlstate
from dstab import probes
from dstab.analysis.specs import TrajectorySpec
from dstab.analysis.trajectory import forward_noised, schedule_rows, trajectory_rows
from dstab.diffusion import Diffusion
from dstab.errors import DstabError
from dstab.plots import trajectory as trajectory_plots
from dstab.plots.png import grid_image

SNAPSHOT_TS = (0, 100, 250, 500, 750, 999)

sel = sidebar.current()
st.title("Diffusion process")
if sel.dm is None:
    st.error("Pick a DM in the sidebar (or load your own checkpoint there) to see its diffusion process.")
    st.stop()
bundle = sidebar.load_bundle(sel.dm.path)
diffusion: Diffusion = bundle.diffusion
pick, ready = datapick.control("dm", sel.dm, bundle, st.columns(2)[0])
if not ready:
    st.stop()
try:  # a picked set of another shape is refused by name
    ds = probes.dataset_for(bundle, pick)
except DstabError as exc:
    st.error(str(exc))
    st.stop()

st.header("Forward: noising real data")
st.caption(f"{sel.dm.label}'s schedule: {diffusion.schedule}, T = {diffusion.T}, dataset {ds.spec}.")
c1, c2, c3 = st.columns(3)
t = urlstate.slider("Timestep t", "t", min(250, diffusion.T - 1), 0, diffusion.T - 1, where=c1)
index = urlstate.number("Example", "example", 0, 0, len(ds) - 1, where=c2) if ds.image else 0
noise_seed = urlstate.number("Noise seed", "noise", 0, 0, 10_000, where=c3)

ts = [s for s in SNAPSHOT_TS if s < diffusion.T] + [t]
example = ds.data[index] if ds.image else ds.fixed_batch(1000, seed=0)
xt = forward_noised(diffusion, example, ts, noise_seed)  # one noise for every t: the strip and x_t agree

left, right = figures.columns(2)
if ds.image:
    strip = grid_image(xt[:-1], nrow=len(ts) - 1, scale=8)
    left.image(grid_image(xt[-1:], scale=24), caption=f"x_t at t = {t}")
    left.image(strip, caption="x_t at t = " + ", ".join(str(s) for s in ts[:-1]))
    downloads.image(strip, "forward-strip", where=left)
else:
    fig_pts = trajectory_plots.points(xt[-1], f"x_t at t = {t}", reference=example)
    figures.show(fig_pts, "forward-points", left)
fig_sched = trajectory_plots.schedule(diffusion, t)
figures.show(fig_sched, "schedule", right)
abar = float(diffusion.alphas_cumprod[t])
right.markdown(
    f"At t = {t}: signal weight sqrt(abar) = {abar**0.5:.4f}, noise weight sqrt(1-abar) = {(1 - abar) ** 0.5:.4f}, "
    f"SNR = {abar / (1 - abar):.4g}."
)
downloads.numbers(
    schedule_rows(diffusion),
    "schedule",
    where=right,
    columns={"model": sel.dm.label, "schedule": diffusion.schedule, "T": diffusion.T},
)

st.header(f"Reverse: {sel.dm.label} denoising from one seed")
c1, c2, c3, c4 = st.columns(4)
SPEC = TrajectorySpec()
sampler = urlstate.radio("Sampler", ["ddim", "ddpm"], "sampler", SPEC.sampler, where=c1, horizontal=True)
steps = urlstate.number("DDIM steps", "steps", SPEC.steps, 2, diffusion.T, where=c2) if sampler == "ddim" else None
seed = urlstate.number("Sampling seed", "seed", SPEC.seed, 0, 10_000, where=c3)
n = urlstate.number("Samples", "n", SPEC.n, 1, 64, where=c4)


try:
    spec = TrajectorySpec(sampler, int(steps or SPEC.steps), int(seed), int(n)).for_bundle(bundle)
    result = compute.cached(spec, [bundle], f"{sel.dm.label} {sampler.upper()} trajectory", sel.device)
except DstabError as exc:
    st.error(str(exc))
    st.stop()
if result is None:
    st.stop()
frames_t, x0_hat = result.arrays["t"], torch.from_numpy(result.arrays["x0_hat"])
k = urlstate.slider(
    "Sampler step",
    "step",
    len(frames_t),
    1,
    len(frames_t),
    help="step k is the sampler's k-th model call, from pure noise (step 1) to the sample",
)
spaced = f" ({trajectory_plots.MAX_FRAMES} evenly spaced)" if len(frames_t) > trajectory_plots.MAX_FRAMES else ""
st.caption(
    f"Step {k} of {len(frames_t)}: the model sees x_t at t = {int(frames_t[k - 1])}, predicts its noise, and so "
    f"estimates x0. Play runs through the steps{spaced}."
)
steps_fig = trajectory_plots.reverse_steps(
    frames_t, result.arrays["x_t"], result.arrays["eps_hat"], result.arrays["x0_hat"], ds.image, start=k - 1
)
figures.show(steps_fig, "reverse-steps")
left, right = figures.columns(2)
if ds.image:
    strip, picks = trajectory_plots.strip(result.arrays["x0_hat"])
    left.image(strip, caption="sample 1's x0 estimate at t = " + ", ".join(str(int(frames_t[i])) for i in picks))
    downloads.image(strip, "x0-estimate-strip", where=left)
else:
    data_points = ds.fixed_batch(1000, 0)
    fig_now = trajectory_plots.points(
        x0_hat[k - 1], f"x0 estimate at t = {int(frames_t[k - 1])}", reference=data_points
    )
    figures.show(fig_now, "x0-estimate", left, key="x0-points")
rows = trajectory_rows(frames_t, x0_hat)
fig_conv = trajectory_plots.distance(rows, int(frames_t[k - 1]))
figures.show(fig_conv, "trajectory", right)
run_columns = {"model": sel.dm.label, "sampler": sampler, "steps": len(frames_t), "seed": seed, "samples": n}
downloads.numbers(
    rows, "trajectory", where=right, extra={"params": result.params, "checkpoint": sel.dm.ref}, columns=run_columns
)
