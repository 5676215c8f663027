"""Cached, cancellable analyses on a page: cost estimate up front, progress bar, no recompute on rerun.

`cached(spec, bundles, label)` looks the result up through a
`dstab.analysis.results.Plan` (shipped zoo results first, then the user
cache); on a miss it times one unit of the work for the estimate (the plan
keeps the built probe and the timing, so the computation reuses both), states
the estimated cost and either starts at once (cheap) or waits for the user's
Compute click, then runs the plan in the background job runner and shows its
progress `(stage, done, total)`.
"""

from __future__ import annotations

import os
import time

import streamlit as st

from dstab import cache, zooresults
from dstab.analysis.results import Plan
from dstab.errors import DstabError

from . import server
from .jobs import Cancelled, Job, JobRunner

server.torch_ready()  # every analysis page imports us before it computes: torch runs with the server's threads

POLL_S = 0.25
# the DM timesteps a page offers: the precomputed ones and a few more
DM_TIMESTEP_CHOICES = sorted({1, 10, 100, 250, 750, 999, *zooresults.DM_TIMESTEPS})
QUARTILES = "quartile midpoints"  # the report's DM Hessian probe: t at 1/8, 3/8, 5/8, 7/8 of T, averaged


@st.cache_resource
def runner() -> JobRunner:
    return JobRunner()


def auto_limit_s() -> float:
    """Computations estimated below this start without a click (DSTAB_AUTO_COMPUTE_S)."""
    return float(os.environ.get("DSTAB_AUTO_COMPUTE_S", "10"))


def duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    return f"about {seconds / 60:.0f} min"


def cached(spec, bundles, label: str, device="cpu", **runtime) -> cache.Result | None:
    """The result of `spec` for `bundles`, or None while it is not available yet (see the module docstring);
    `runtime` goes to the engine (a consistency group's display `names`)."""
    plan = Plan(spec, bundles, device)
    jobs = runner()
    hit = jobs.result(plan.key) if plan.key else None
    if hit is None:
        hit = plan.lookup()
    if hit is not None:
        return hit
    job = jobs.job(plan.key) if plan.key else None
    if job is None:
        estimate_s = plan.estimate_s()
        cancelled = st.session_state.setdefault("dstab_cancelled", set())
        notice = st.empty()  # a placeholder, so that the notice disappears once the result is shown
        box = notice.container(border=True)
        box.caption(f"{label}: not in the cache; estimated cost {duration(estimate_s)} on this server.")
        auto = estimate_s <= auto_limit_s() and plan.key not in cancelled  # a cancelled job waits for a click
        if not auto and not box.button("Compute", key=f"go-{plan.key}", type="primary"):
            return None
        cancelled.discard(plan.key)
        job = jobs.submit(plan.key or label, label, lambda job: plan.get(job.progress, **runtime), estimate_s)
        notice.empty()
    return _wait(job, jobs)


def side_by_side(selection, make_spec, label: str) -> tuple[dict, dict]:
    """The picked DM and GAN in two columns: `make_spec(bundle)` for each, looked up or computed (`cached`)
    in its own column, where its errors show too. Returns ({kind: (choice, result)} for the results
    available now, {kind: column})."""
    from . import sidebar

    results, cols = {}, dict(zip(("dm", "gan"), st.columns(2)))
    for kind, choice in (("dm", selection.dm), ("gan", selection.gan)):
        where = cols[kind]
        if choice is None:
            where.error(f"Pick a {kind.upper()} in the sidebar.")
            continue
        try:
            bundle = sidebar.load_bundle(choice.path)
            with where:
                found = cached(make_spec(bundle), [bundle], f"{choice.label} {label}", selection.device)
        except DstabError as exc:
            where.error(str(exc))
            continue
        if found is not None:
            results[kind] = (choice, found)
    return results, cols


def _wait(job: Job, jobs: JobRunner) -> cache.Result | None:
    slot = st.empty()
    box = slot.container(border=True)
    if box.button("Cancel", key=f"cancel-{job.key}"):
        job.cancel()
        st.session_state.setdefault("dstab_cancelled", set()).add(job.key)
        box.warning(f"{job.label}: cancelled. Change a parameter or press Compute to start again.")
        return None
    bar = box.progress(0.0)
    while not job.future.done():
        ahead = jobs.queue_ahead(job.key)
        text = f"{job.label}: {job.elapsed():.0f} s of {duration(job.estimate_s)} estimated"
        if job.stage:
            text += f" ({job.stage})"
        if ahead:
            text = f"{job.label}: queued behind {', '.join(ahead)}"
        bar.progress(job.shown_fraction(), text=text)  # also where Streamlit stops us on a widget change
        time.sleep(POLL_S)
    slot.empty()
    if job.future.cancelled():
        st.warning(f"{job.label}: cancelled before it started.")
        return None
    exc = job.future.exception()
    if isinstance(exc, Cancelled):
        st.warning(f"{job.label}: cancelled. Change a parameter or press Compute to start again.")
        return None
    if isinstance(exc, DstabError):
        st.error(str(exc))
        return None
    if exc is not None:
        raise exc
    return job.future.result()
