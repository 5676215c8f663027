"""Cached, cancellable analyses on a page: cost estimate up front, progress bar, no recompute on rerun.

`cached(spec, bundles, label)` looks the result up through a
`dstab.analysis.results.Plan` (shipped zoo results first, then the user
cache; one Plan and one lookup per result per render, `_memo`); on a miss
it times one unit of the work for the estimate (the plan keeps the built
probe and the timing, so the computation reuses both), states the estimated
cost and either starts at once (cheap) or waits for the user's Compute
click, then runs the plan in the background job runner and shows its
progress `(stage, done, total)`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

import streamlit as st

from dstab import cache
from dstab.analysis.results import Plan
from dstab.errors import DstabError

from . import figures, guard, server
from .jobs import Job, JobRunner

server.torch_ready()  # every analysis page imports us before it computes: torch runs with the server's threads

POLL_S = 0.25
QUARTILES = "quartile midpoints"  # the report's DM Hessian probe: t at 1/8, 3/8, 5/8, 7/8 of T, averaged


_RUNNER = JobRunner()  # one per server process, shared by its sessions


def runner() -> JobRunner:
    return _RUNNER


def auto_limit_s() -> float:
    """Computations estimated below this start without a click (DSTAB_AUTO_COMPUTE_S)."""
    return float(os.environ.get("DSTAB_AUTO_COMPUTE_S", "10"))


def duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    return f"about {seconds / 60:.0f} min"


@dataclass
class Ask:
    """One analysis a page wants: `spec` of `bundles`, its label, and runtime arguments for the engine
    (a consistency group's display `names`)."""

    spec: object
    bundles: list
    label: str
    runtime: dict = field(default_factory=dict)


def cached(spec, bundles, label: str, device="cpu", **runtime) -> cache.Result | None:
    """The result of `spec` for `bundles`, or None while it is not available yet (see `many`)."""
    return many({"": (Ask(spec, bundles, label, runtime), None)}, device).get("")


def _memo() -> dict:
    """This render's plans and lookups: each result is looked up once per render of a page, however many
    controls and panels ask for it (`found`, `instant`, the asks). New on every run (`sidebar.current`
    counts the runs), so nothing looked up on an earlier run is served as current."""
    run = st.session_state.get("dstab_render")
    memo = st.session_state.get("dstab_render_memo")
    if memo is None or memo["run"] != run:
        memo = st.session_state["dstab_render_memo"] = {"run": run, "plans": {}, "found": {}}
    return memo


def plan_for(spec, bundles, device="cpu") -> Plan:
    """The Plan of `spec` for `bundles` on `device`, one per render (its key computed once)."""
    ident = (spec, tuple(b.sha256 or id(b) for b in bundles), str(device))
    plans = _memo()["plans"]
    if ident not in plans:
        plans[ident] = Plan(spec, bundles, device)
    return plans[ident]


def _lookup(plan: Plan) -> cache.Result | None:
    """This server's recent job's result, else the stored one (shipped or user cache): read once per render."""
    if not plan.key:
        return None
    done = runner().result(plan.key)
    if done is not None:
        return done
    found = _memo()["found"]
    if plan.key not in found:
        found[plan.key] = plan.lookup()
    return found[plan.key]


def found(spec, bundles, device="cpu") -> cache.Result | None:
    """The result if it is at hand (this server's recent jobs, the shipped or user cache); never computes,
    never draws."""
    return _lookup(plan_for(spec, bundles, device))


def _inside(where):
    return contextlib.nullcontext() if where is None else where


def _cancel(job: Job) -> None:
    job.cancel()
    st.session_state.setdefault("dstab_cancelled", set()).add(job.key)


def _go(keys: list[str]) -> None:
    st.session_state.setdefault("dstab_go", set()).update(keys)


def _begin(ask: Ask, device) -> cache.Result | Job | str:
    """A stored result, a running job, or (on a miss that waits for a click) the plan's key.

    The lookup comes first (shipped zoo results, then the user cache); only a miss times one unit of
    the work for the estimate (the plan keeps the built probe and the timing, so the computation reuses
    both). A cheap miss starts at once, unless the user cancelled it; a costly or cancelled one draws
    its cost and a Compute button."""
    plan = plan_for(ask.spec, ask.bundles, device)
    jobs = runner()
    hit = _lookup(plan)
    if hit is not None:
        return hit
    key = plan.key or ask.label
    job = jobs.job(key)
    if job is not None and not job.cancel_event.is_set():
        return job
    cancelled = st.session_state.setdefault("dstab_cancelled", set())
    go = st.session_state.setdefault("dstab_go", set())
    failed = jobs.failure(key) if key not in go else None
    estimate_s = plan.estimate_s()
    notice = st.empty()  # a placeholder, so that the notice disappears once the job starts
    box = notice.container(border=True)
    if failed is not None:  # said once, not started again by itself: Compute retries
        box.error(_failure_text(ask.label, failed))
    elif key in cancelled:
        box.warning(
            f"{ask.label}: cancelled; nothing was stored. Press Compute to start it again, or change a parameter."
        )
    box.caption(f"{ask.label}: not in the cache; estimated cost {duration(estimate_s)} on this server.")
    auto = key in go or (estimate_s <= auto_limit_s() and key not in cancelled and failed is None)
    if not auto and not box.button("Compute", key=f"go-{key}", type="primary"):
        return key
    cancelled.discard(key)
    go.discard(key)
    jobs.forget_failure(key)
    notice.empty()
    return jobs.submit(key, ask.label, lambda job: _compute(plan, job, ask.runtime), estimate_s)


def _compute(plan: Plan, job: Job, runtime: dict) -> cache.Result:
    """The plan's result through the one lookup -> compute -> store path (`cache.get_or_compute`: another
    session may have stored it meanwhile); a job cancelled while its last points ran stops before its
    result is stored."""

    def computed() -> tuple[dict, dict]:
        out = plan.compute(job.progress, **runtime)
        job.progress("storing", 1, 1)  # raises Cancelled if Cancel came meanwhile
        return out

    return cache.get_or_compute(plan.spec.name, plan.params, plan.shas if plan.identified else [], computed)


def _failure_text(label: str, exc: BaseException) -> str:
    if isinstance(exc, DstabError):
        return str(exc)
    return f"{label} failed ({type(exc).__name__}: {guard.one_line(exc)}); the server log has the details"


def many(asks: dict, device="cpu", where_all=None) -> dict:
    """Results of several analyses, {name: (Ask, container)}, each drawn in its own container (a column;
    None: the page). Looked up, else started (cheap, clicked, or "Compute all" when two or more wait for
    a click, drawn in `where_all`). Returns {name: result} for those available now, in the order asked;
    errors show in the ask's container. Every running job gets its own live box (progress, Cancel) in
    its container, polled by a fragment, so the page's script run ends and draws everything else; when
    a job ends the page runs again and draws its result (or says it was cancelled, or failed)."""
    out, waiting = {}, []
    for name, (ask, where) in asks.items():
        with _inside(where):
            try:
                state = _begin(ask, device)
            except DstabError as exc:
                st.error(str(exc))
                continue
            if isinstance(state, Job):
                st.fragment(_live_box, run_every=POLL_S)(state.key)
            elif isinstance(state, str):
                waiting.append(state)
            else:
                out[name] = state
    if len(waiting) > 1:
        (where_all or st).button(
            f"Compute all {len(waiting)}",
            key=f"go-all-{'-'.join(waiting)}",
            type="primary",
            on_click=_go,
            args=(waiting,),
        )
    return {name: out[name] for name in asks if out.get(name) is not None}


def side_by_side(selection, make_spec, label: str) -> tuple[dict, dict]:
    """The picked DM and GAN in two columns: `make_spec(bundle)` for each (None: not yet, the page has
    said why), looked up or computed (`many`) in its own column, where its errors show too. Returns
    ({kind: (choice, result)} for the results available now, {kind: column})."""
    from . import sidebar

    top = st.empty()  # "Compute all", above the columns
    cols = dict(zip(("dm", "gan"), figures.columns(2)))
    asks, choices = {}, {}
    for kind, choice in (("dm", selection.dm), ("gan", selection.gan)):
        where = cols[kind]
        if choice is None:
            where.error(f"Pick a {kind.upper()} in the sidebar.")
            continue
        try:
            bundle = sidebar.load_bundle(choice.path)
            spec = make_spec(bundle)
        except DstabError as exc:
            where.error(str(exc))
            continue
        if spec is not None:  # None: the page waits for a choice it has asked for (its data)
            asks[kind] = (Ask(spec, [bundle], f"{choice.label} {label}"), where)
            choices[kind] = choice
    results = many(asks, selection.device, where_all=top)
    return {kind: (choices[kind], res) for kind, res in results.items()}, cols


def _status(job: Job, jobs: JobRunner) -> str:
    ahead = jobs.queue_ahead(job.key)
    if ahead:
        return f"{job.label}: queued behind {', '.join(ahead)}"
    text = f"{job.label}: {job.elapsed():.0f} s of {duration(job.estimate_s)} estimated"
    return f"{text} ({job.stage})" if job.stage else text


def _live_box(key: str) -> None:
    """A running job's progress and Cancel button, redrawn every POLL_S by its fragment; once the job has
    ended (finished, failed or cancelled) the whole page runs again to draw what came of it."""
    jobs = runner()
    job = jobs.job(key)
    if job is None or job.future.done():
        st.rerun(scope="app")
    box = st.container(border=True)
    cancelling = job.cancel_event.is_set()
    box.button("Cancel", key=f"cancel-{key}", on_click=_cancel, args=(job,), disabled=cancelling)
    text = f"{job.label}: cancelling at its next step" if cancelling else _status(job, jobs)
    box.progress(job.shown_fraction(), text=text)
