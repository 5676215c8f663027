"""Time that means time: a speed-up in seconds is read from each run's CPU seconds in training steps
(`cpu_s`, process time, which the machine's load does not inflate), or from wall-clock only for arms
that ran interleaved (same machine, same period). Whether two runs did is read from their own
timestamps: the share of the shorter run's active period that both were running."""

from __future__ import annotations

import numpy as np

from .groupruns import GroupRun

INTERLEAVED = 0.75  # two runs ran side by side if they shared this much of the shorter one's active period
CLOCKS = {"cpu": "CPU seconds", "wall": "wall-clock seconds"}


def shared_period(a: GroupRun, b: GroupRun) -> float:
    """The share of the shorter run's active period (first to last logged row) during which both ran."""
    lo, hi = max(a.first_wall, b.first_wall), min(a.last_wall, b.last_wall)
    shorter = min(a.last_wall - a.first_wall, b.last_wall - b.first_wall)
    return max(0.0, hi - lo) / shorter if shorter > 0 else 0.0


def clock(run: GroupRun, kind: str, steps) -> np.ndarray | None:
    """CPU or wall-clock seconds of `run` at `steps` (None: the run has no record of that clock)."""
    return run.cpu_at(steps) if kind == "cpu" else run.wall_at(steps)


def log_ratio(ref: GroupRun, var: GroupRun, kind: str, ref_steps, var_steps) -> float | None:
    """The mean over the pairs (x_ref, x_var) of crossing steps of log(t_ref(x_ref) / t_var(x_var))."""
    pairs = [(r, v) for r, v in zip(ref_steps, var_steps) if r is not None and v is not None]
    if not pairs:
        return None
    tr, tv = clock(ref, kind, [r for r, _ in pairs]), clock(var, kind, [v for _, v in pairs])
    if tr is None or tv is None or np.any(tr <= 0) or np.any(tv <= 0):
        return None
    return float(np.mean(np.log(tr / tv)))


def load_check(pairs: list[tuple[GroupRun, GroupRun]]) -> dict:
    """Per kind of clock, whether an interval on its ratio means what it says, and why."""
    shared = [shared_period(r, v) for r, v in pairs]
    side_by_side = bool(pairs) and min(shared) >= INTERLEAVED
    have_cpu = all(r.series("cpu_s") is not None and v.series("cpu_s") is not None for r, v in pairs)
    tput = {
        "reference": [t for r, _ in pairs if (t := r.throughput()) is not None],
        "variant": [t for _, v in pairs if (t := v.throughput()) is not None],
    }
    speeds = ""
    if tput["reference"] and tput["variant"]:
        speeds = (
            f" (samples/s: reference {min(tput['reference']):.0f}-{max(tput['reference']):.0f}, "
            f"variant {min(tput['variant']):.0f}-{max(tput['variant']):.0f})"
        )
    wall_why = (
        f"every seed's two runs shared >= {INTERLEAVED:.0%} of their active period (least {min(shared):.0%})"
        if side_by_side
        else "the runs did not run side by side"
        + (f" (shared period as low as {min(shared):.0%} of the shorter run)" if pairs else "")
        + speeds
        + ": the machine's load could explain a wall-clock ratio, so it gets no interval"
    )
    return {
        "cpu": {
            "interval": have_cpu,
            "why": "CPU seconds in training steps (process time)"
            if have_cpu
            else "these runs did not record CPU seconds (cpu_s): no time ratio from them",
        },
        "wall": {"interval": side_by_side, "why": wall_why},
        "shared_period": shared,
        "throughput": tput,
    }
