"""Run length decided by the data (issue 22, item 4): the reference arm first, extended until its own
plateau test fires on every seed (at most a maximum), then the other arms at that length.

Why in that order: the reference's schedules (constant lr and beta1, uniform t) do not depend on
the run's length, so a reference run extended from L to N iterations is the run that would have
been launched at N (`length_free` checks it; runs.extend resumes from the exact resume state). The
other arms' schedules do depend on it (MDLRC's tau = iter / total, CLTS's target as a fraction of
the run), so they are launched once, at the decided length N = margin x the reference's latest
plateau (rounded up to a checkpoint), the protocol's `length_margin`. A reference still improving
at the maximum is reported so ("the baseline is still improving at N ..."), with the level gap.

`advance` moves a group one stage on and says what it did; `reproduce speedup` calls it once (or,
with --wait, until the group is complete).
"""

from __future__ import annotations

import math

from .. import runs
from ..errors import require
from ..metricnames import HIGHER_IS_BETTER
from ..training.lr import optimizer_schedule
from ..training.sampler_options import sampler_options
from . import readouts as ro
from .compare import _common_metric, by_label, curve_of, floor_band
from .groupruns import load
from .protocol import Protocol, read_record, write_record


def length_free(cfg: dict) -> list[str]:
    """What in `cfg` depends on the run's length (empty: an extended run equals a longer launch)."""
    short, long = int(cfg["steps"]), 2 * int(cfg["steps"])
    out = []
    sched = optimizer_schedule(cfg["momentum"], cfg["lr"], cfg["beta1"], cfg["beta2"], cfg.get("lr_schedule"))
    probes = sorted({0, short // 3, short // 2, short - 1})
    if any(sched.at(it, short) != sched.at(it, long) for it in probes):
        out.append("its beta1 / lr schedule")
    T = cfg["diffusion"]["T"]
    if sampler_options(cfg["timesteps"], T, short) != sampler_options(cfg["timesteps"], T, long):
        out.append(f"its timestep sampler ({cfg['timesteps'].get('name')})")
    return out


def round_up(x: float, every: int) -> int:
    return int(math.ceil(x / every) * every)


def decide(fired: dict[int, float | None], current: int, maximum: int, margin: float, every: int):
    """('extend', N): train the reference on to N; ('launch', N): the other arms at N. `fired`: per
    seed the step at which the reference's plateau test fired (None: not yet)."""
    if all(x is not None for x in fired.values()):
        need = round_up(margin * max(fired.values()), every)
        if need <= current:
            return "launch", current
        return ("extend", min(need, maximum)) if current < maximum else ("launch", current)
    if current < maximum:
        return "extend", min(maximum, round_up(2 * current, every))
    return "launch", current


def reference_fired(group: str, protocol: Protocol, root=None) -> tuple[dict[int, float | None], int]:
    """Per reference seed the step at which its plateau test fired, and the reference's length."""
    found, _ = load(group, root)
    metric = _common_metric(found, group, protocol.metric)
    higher = metric.split("@")[0] in HIGHER_IS_BETTER
    band = floor_band(metric, found[0].config["dataset"], protocol)
    top = band.get("top") if band and band.get("top", 0) > 0 else None
    ref = by_label(found)[protocol.reference]
    fired = {}
    for s, r in ref.items():
        c = curve_of(r, metric, top, higher)
        fired[s] = ro.plateau_x(c.steps, c.values, protocol.plateau_window, protocol.plateau_alpha, higher)
    return fired, min(int(r.config["steps"]) for r in ref.values())


def advance(group: str, planned, replan, protocol: Protocol, maximum: int, root=None, launch=None) -> tuple[str, str]:
    """One stage of the procedure for `group`, whose runs are `planned` (all variants, at the first
    length); `replan(N)` plans the other arms at N; `launch(runs)` queues runs. Returns (stage,
    message), stage one of 'waiting', 'extended', 'launched', 'complete'."""
    root = runs.workspace_root(root)
    launch = launch or (lambda rs: None)
    ref_runs = [r for r in planned if r.variant == protocol.reference]
    require(ref_runs, f"the reference {protocol.reference!r} is not among the variants; add it to --variants")
    problems = length_free(ref_runs[0].config)
    require(
        not problems,
        f"the reference {protocol.reference!r} has schedules that depend on the run's length ({', '.join(problems)}), "
        "so it cannot be extended into a longer run; use a length-free reference or --fixed-length",
    )
    record = read_record(group, root) or {}
    length = record.setdefault("length", {"maximum": maximum, "history": []})
    states = {s.name: s for s in runs.list_runs(root) if s.group == group}
    if not any(r.name in states for r in ref_runs):
        launch(ref_runs)
        length["history"].append({"stage": "reference", "steps": ref_runs[0].config["steps"]})
        write_record(group, root, record)
        return "launched", (
            f"queued the reference arm first ({len(ref_runs)} runs of {protocol.reference}, "
            f"{ref_runs[0].config['steps']} iterations): its plateau test decides the other arms' length"
        )
    waiting = [n for n, s in states.items() if s.active]
    broken = [f"{n} ({s.state})" for n, s in states.items() if s.state not in ("finished", "queued", "running")]
    require(not broken, f"runs {broken} did not finish; resume them (`dstab runs resume NAME`), then rerun this")
    if waiting:
        return "waiting", f"{len(waiting)} runs of group {group} still queued or running, e.g. {waiting[0]}"
    others = [r for r in planned if r.variant != protocol.reference]
    if "decided" not in length:
        fired, current = reference_fired(group, protocol, root)
        every = ref_runs[0].config.get("checkpoint_every") or ref_runs[0].config["eval_every"]
        action, n = decide(fired, current, maximum, protocol.length_margin, every)
        length["history"].append({"stage": action, "steps": n, "fired": {str(s): x for s, x in fired.items()}})
        if action == "extend":
            for r in ref_runs:
                runs.extend(r.name, n, root)
            write_record(group, root, record)
            return "extended", f"the reference's plateau test fired at {_fired(fired)}: extending it to {n} iterations"
        length["decided"] = n
        launch(replan(n))
        write_record(group, root, record)
        return "launched", (
            f"the reference's plateau test fired at {_fired(fired)}: queued the other arms ({len(others)} runs) "
            f"at {n} iterations"
        )
    return "complete", f"every run of group {group} has finished"


def _fired(fired: dict) -> str:
    return ", ".join(f"seed {s}: {'not yet' if x is None else f'{x:.0f}'}" for s, x in sorted(fired.items()))
