"""The Training page's run tracker: which runs the charts show, their series, the run table, the
confirmations after Stop / Resume, the devices a run can be launched on.

The charts show either one sweep group (its runs as they are now: a run launched into it joins on
the next poll) or every active run plus the ones chosen, so a run launched from an open tab appears
without a reload; a run seen active joins the chosen ones, so it stays on the charts when it ends.
Colours are one per run (`dstab.plots.runs.run_colours`), the same on every chart.
"""

from __future__ import annotations

import time

import streamlit as st

from dstab.runs.runmetrics import RunMetrics

from . import urlstate

ACTIVE_AND_CHOSEN = "all active + chosen"
FLASH = "training_flash"
FOLLOWED = "training_followed"  # runs seen active in this session


def chart_runs(statuses, names: list[str]) -> list[str]:
    """The runs the charts show, of those with metrics (`names`), in the run table's order."""
    groups = sorted({s.group for s in statuses if s.group})
    c1, c2 = st.columns([1, 3])
    modes = [ACTIVE_AND_CHOSEN, *(f"group {g}" for g in groups)]
    mode = urlstate.selectbox(  # in the URL: a reload shows the same runs
        "Show",
        modes,
        "show",
        ACTIVE_AND_CHOSEN,
        where=c1,
        help="a sweep group's runs, or every active run and the ones chosen beside",
    )
    if mode != ACTIVE_AND_CHOSEN:
        group = mode.removeprefix("group ")
        return [s.name for s in statuses if s.group == group and s.name in names]
    key = "training_chosen"
    urlstate.mark_read("runs")
    if key not in st.session_state:  # a first visit: the URL's choice, else the newest finished four
        asked = [n for n in st.query_params.get("runs", "").split(",") if n]
        linked = [n for n in asked if n in names]
        if unknown := [n for n in asked if n not in names]:
            st.warning(f"Link parameter runs: no run named {', '.join(map(repr, unknown))} here; ignored.")
        st.session_state[key] = linked or [s.name for s in statuses if s.name in names and not s.active][-4:]
    kept = [n for n in st.session_state[key] if n in names]  # a deleted run drops out
    # a run seen active in this session joins the chosen ones once, so that it stays on the charts when it
    # finishes (it would vanish the moment it stopped being active); removing it there hides it for good
    followed = st.session_state.setdefault(FOLLOWED, set())
    for s in statuses:
        if s.active and s.name in names and s.name not in followed:
            followed.add(s.name)
            if s.name not in kept:
                kept.append(s.name)
    st.session_state[key] = kept
    chosen = c2.multiselect("Also show", names, key=key)
    st.query_params["runs"] = ",".join(chosen)
    active = [s.name for s in statuses if s.active and s.name in names]
    return [n for n in names if n in set(active) | set(chosen)]


def series(metrics: RunMetrics, run: str, name: str, x_axis: str) -> dict:
    """{"label", "x", "y", "step", "wall"} of one metric of one run; x: iteration, or seconds since the
    run's first logged point."""
    steps, values, walls = metrics.series(name)
    x = steps if x_axis == "iteration" else (walls - walls[0] if len(walls) else walls)
    return {"label": run, "x": x, "y": values, "step": steps, "wall": walls}


def table(rows: list[dict]) -> None:
    st.dataframe(
        rows,
        hide_index=True,
        key="run-table",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
        },
    )


FLASH_S = 20.0  # how long a confirmation stays: a stopped run's end reruns the page once or twice meanwhile


def confirm(message: str) -> None:
    """A confirmation to show after the rerun an action triggers, and for FLASH_S seconds after it."""
    st.session_state[FLASH] = (message, time.monotonic(), False)


def show_confirmation() -> None:
    flash = st.session_state.get(FLASH)
    if not flash:
        return
    message, since, toasted = flash
    if time.monotonic() - since > FLASH_S:
        del st.session_state[FLASH]
        return
    st.success(message)
    if not toasted:  # a toast once; the line stays
        st.toast(message)
        st.session_state[FLASH] = (message, since, True)


def devices() -> list[str]:
    """What a run can be launched on here: auto, the CPU, and each CUDA device torch sees."""
    import torch

    return ["auto", "cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]


def stop_resume(name: str, action: str) -> None:
    """Stop or resume a run, then say so after the rerun."""
    from dstab import runs

    (runs.stop if action == "stop" else runs.resume)(name)
    confirm(f"{name}: {'stop requested; it stops at its next step' if action == 'stop' else 'resumed'}.")
