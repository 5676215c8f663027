"""Cached, cancellable analyses on a page: cost estimate up front, progress bar, no recompute on rerun.

`cached(...)` looks the result up in dstab's analysis cache (shipped zoo
results first, then the user cache); on a miss it states the estimated cost
and either starts at once (cheap) or waits for the user's Compute click, then
runs the computation in the background job runner and shows its progress.
"""

from __future__ import annotations

import os
import time

import streamlit as st

from dstab import cache
from dstab.errors import DstabError

from . import costs
from .jobs import Cancelled, Job, JobRunner

POLL_S = 0.25


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


def cached(request) -> cache.Result | None:
    """The result of an `analyses.Request`, or None while it is not available yet.

    The cache lookup comes first (shipped zoo results, then the user cache); only
    a miss times one unit of the work for the estimate (`costs.seconds_per_call`),
    then starts `request.run` in the background."""
    name, params, shas, label = request.name, request.params, request.shas, request.label
    key = cache.result_key(name, params, shas)
    jobs = runner()
    hit = jobs.result(key)
    if hit is None:
        hit = cache.lookup(name, params, shas)
    if hit is not None:
        return hit
    job = jobs.job(key)
    if job is None:
        estimate_s = request.units * costs.seconds_per_call(request.unit_key, request.unit())
        cancelled = st.session_state.setdefault("dstab_cancelled", set())
        notice = st.empty()  # a placeholder, so that the notice disappears once the result is shown
        box = notice.container(border=True)
        box.caption(f"{label}: not in the cache; estimated cost {duration(estimate_s)} on this server.")
        auto = estimate_s <= auto_limit_s() and key not in cancelled  # a cancelled job waits for a click
        if not auto and not box.button("Compute", key=f"go-{key}", type="primary"):
            return None
        cancelled.discard(key)
        job = jobs.submit(key, label, request.run, estimate_s)
        notice.empty()
    return _wait(job, jobs)


def side_by_side(selection, make_request) -> tuple[dict, dict]:
    """The picked DM and GAN in two columns: `make_request(choice, bundle)` for each, looked up or computed
    (`cached`) in its own column, where its errors show too. Returns ({kind: (choice, result)} for the
    results available now, {kind: column})."""
    from . import sidebar

    results, cols = {}, dict(zip(("dm", "gan"), st.columns(2)))
    for kind, choice in (("dm", selection.dm), ("gan", selection.gan)):
        where = cols[kind]
        if choice is None:
            where.error(f"Pick a {kind.upper()} in the sidebar.")
            continue
        try:
            request = make_request(choice, sidebar.load_bundle(choice.path))
            with where:
                found = cached(request)
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
