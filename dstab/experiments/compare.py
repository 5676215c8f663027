"""`dstab compare GROUP`: the runs of one group (a sweep) as curves and speed-ups with intervals.

Runs are grouped by variant label (preset + sweep values, from launch.json)
and paired by seed. For a reference variant (default: baseline) the
targets are, per seed, its plateau (the mean of its last k evaluations)
and easier values a fraction of the way back towards its first
evaluation (stats.easier_targets). Per target and variant: the speed-up in
iterations, images seen and wall-clock seconds (stats.speedup), and the
variants that never reached it. Every label (dataset, model width, batch,
lr and its schedule, EMA, steps, metric) is read from the runs' own
config.json. Only complete (finished) runs count; runs that are still
active, failed or were deleted are listed as such, and the result is
marked partial. Fewer than 2 complete seeds of the reference and of some
other variant is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import paper, runs
from ..analysis import fid
from ..errors import DstabError, require
from ..metricnames import is_repeat
from ..runs import rundir
from ..runs.runmetrics import RunMetrics
from . import cifar10, stats

AXES = {"iterations": "iterations", "images": "images seen", "wall": "wall-clock seconds"}
CONTROLS = ("lr-matched", "lrc-only")  # controls the full method is also compared with, when present
MIN_SEEDS = 2  # complete seeds a variant needs to be compared (the Training page's sweep form starts there)
EASIER = (0.1, 0.25, 0.5)  # easier targets: this far back (log scale) from each seed's plateau to its start
PREFERRED = ("mmd2@", "fid@", "fd_local@", "fd_points@", "sw2@")  # the default metric, first found


@dataclass
class RunCurve:
    name: str
    label: str
    variant: str
    seed: int
    state: str
    config: dict = field(repr=False)
    steps: np.ndarray = field(default=None, repr=False)
    values: np.ndarray = field(default=None, repr=False)
    wall: np.ndarray = field(default=None, repr=False)  # seconds since the run's first logged row

    def x(self, axis: str) -> np.ndarray:
        if axis == "images":
            return self.steps * float(self.config["batch_size"])
        return self.wall if axis == "wall" else self.steps.astype(np.float64)


def _launch(path: Path) -> dict:
    try:
        return json.loads((path / "launch.json").read_text())
    except (OSError, ValueError):
        return {}


def _config(path: Path) -> dict | None:
    for p in (path / runs.RUN / rundir.CONFIG, path / "request.json"):
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            continue
    return None


def group_runs(group: str, root=None) -> list[runs.RunStatus]:
    found = [s for s in runs.list_runs(root) if s.group == group]
    require(found, f"no runs in group {group!r} in {runs.workspace_root(root)}; `dstab runs list` shows the groups")
    return found


def pick_metric(names: set[str], wanted: str | None) -> str:
    evals = sorted(n for n in names if "@" in n and not is_repeat(n))
    require(evals, "the runs of this group have no evaluations yet; set eval_every and wait for one")
    if wanted:
        hits = [n for n in evals if n == wanted or n.split("@")[0] == wanted]
        require(len(hits) == 1, f"metric {wanted!r} is not one of the group's metrics {evals}")
        return hits[0]
    return (
        next(n for prefix in PREFERRED for n in evals if n.startswith(prefix))
        if any(n.startswith(PREFERRED) for n in evals)
        else evals[0]
    )


def load(group: str, metric: str | None = None, root=None) -> tuple[str, list[RunCurve], list[dict]]:
    """(metric name, complete runs' curves, notes on runs left out)."""
    root = runs.workspace_root(root)
    curves, notes, names_per_run, metrics_of = [], [], {}, {}
    for st in group_runs(group, root):
        path = root / st.name
        launch, cfg = _launch(path), _config(path)
        if st.state != "finished" or cfg is None:
            notes.append({"run": st.name, "state": st.state, "reason": st.reason or ""})
            continue
        metrics = RunMetrics.read(path / runs.RUN / rundir.METRICS)
        names_per_run[st.name] = set(metrics.names())
        variant = launch.get("variant") or launch.get("preset") or "custom"
        metrics_of[st.name] = metrics
        curves.append(RunCurve(st.name, launch.get("label") or variant, variant, int(cfg["seed"]), st.state, cfg))
    require(curves, f"group {group!r} has no finished runs yet ({len(notes)} runs: {_states(notes)})")
    datasets = sorted({c.config["dataset"] for c in curves})
    require(len(datasets) == 1, f"group {group!r} mixes datasets {datasets}; compare runs of one dataset")
    common = set.intersection(*names_per_run.values())
    evals = {n for names in names_per_run.values() for n in names if "@" in n}
    if evals and not any("@" in n for n in common):
        raise DstabError(
            f"the runs of group {group!r} were not evaluated with one metric ({sorted(evals)}); "
            "compare runs of one metric (same eval_samples, eval_sampler_steps, eval_seeds)"
        )
    name = pick_metric(common, metric)
    missing = [c.name for c in curves if name not in names_per_run[c.name]]
    require(not missing, f"runs {missing[:3]} were not evaluated with {name}; compare runs of one metric")
    sign = -1.0 if name.split("@")[0] in fid.HIGHER_IS_BETTER else 1.0
    for c in curves:
        metrics = metrics_of[c.name]
        first = min(w for *_, w in metrics.rows())
        c.steps, values, wall = metrics.series(name)
        c.values, c.wall = sign * values, wall - first
    return name, curves, notes


def _states(notes) -> str:
    counts = {}
    for n in notes:
        counts[n["state"]] = counts.get(n["state"], 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def by_label(curves: list[RunCurve]) -> dict[str, dict[int, RunCurve]]:
    out: dict[str, dict[int, RunCurve]] = {}
    for c in curves:
        out.setdefault(c.label, {})[c.seed] = c
    return out


def _common_prefix(curves: list[RunCurve]) -> int:
    n = min(len(c.steps) for c in curves)
    require(all(np.array_equal(c.steps[:n], curves[0].steps[:n]) for c in curves), "seeds evaluated at different steps")
    return n


def compare(group: str, metric=None, reference="baseline", last_k: int = 5, root=None) -> dict:
    """Everything `compare` reports, as plain data (JSON-serialisable)."""
    require(last_k >= 1, f"--last-k must be >= 1, got {last_k}")
    name, curves, notes = load(group, metric, root)
    labels = by_label(curves)
    require(reference in labels, f"reference {reference!r} has no finished runs in {group!r}; have {sorted(labels)}")
    thin = {lab: sorted(s) for lab, s in labels.items() if len(s) < MIN_SEEDS}
    others = [lab for lab in labels if lab != reference and lab not in thin]
    require(
        reference not in thin and others,
        f"group {group!r} needs >= 2 complete seeds of {reference!r} and of another variant; complete seeds: "
        + ", ".join(f"{lab} {sorted(s)}" for lab, s in labels.items()),
    )
    sign = -1.0 if name.split("@")[0] in fid.HIGHER_IS_BETTER else 1.0
    ref = labels[reference]
    n_ref = _common_prefix(list(ref.values()))
    plateaus = {s: float(c.values[:n_ref][-last_k:].mean()) for s, c in ref.items()}
    targets = {"plateau": plateaus}  # per seed: that seed's reference plateau, then easier ones
    for i, f in enumerate(EASIER):
        targets[f"easier {int(f * 100)}%"] = {
            s: stats.easier_targets(plateaus[s], float(c.values[0]), EASIER)[i] for s, c in ref.items()
        }
    decays = [lab for lab in others if paper.decays_momentum(next(iter(labels[lab].values())).config)]
    pairs = [(lab, reference) for lab in others] + [  # the controls answer: momentum decay, or lr decay?
        (lab, ctl) for ctl in CONTROLS if ctl in labels and ctl not in thin for lab in decays if lab not in CONTROLS
    ]
    rows = []
    for lab, against in pairs:
        seeds = sorted(set(labels[lab]) & set(labels[against]) & set(ref))
        for tname, per_seed in targets.items():
            ts = [per_seed[s] for s in seeds]
            row = {"variant": lab, "reference": against, "target_of": reference, "target_name": tname}
            row["target"] = sign * float(np.mean(ts))
            for axis in AXES:
                rc = [(labels[against][s].x(axis), labels[against][s].values) for s in seeds]
                vc = [(labels[lab][s].x(axis), labels[lab][s].values) for s in seeds]
                row[axis] = stats.speedup(ts, seeds, rc, vc).to_dict()
            rows.append(row)
    plateau = float(np.mean(list(plateaus.values())))
    return {
        "group": group,
        "metric": name,
        "metric_label": fid.metric_label(name),
        "higher_is_better": sign < 0,
        "reference": reference,
        "last_k": last_k,
        "plateau": sign * plateau,
        "variants": {lab: _variant(labels[lab], sign) for lab in labels},
        "left_out_variants": thin,
        "speedups": rows,
        "partial": bool(notes or thin),
        "not_counted": notes,
        "setup": setup_labels(curves),
        "axes": AXES,
    }


def _variant(seeds: dict[int, RunCurve], sign: float) -> dict:
    cs = [seeds[s] for s in sorted(seeds)]
    n = _common_prefix(cs)
    vals = np.stack([c.values[:n] for c in cs])
    mean, lo, hi = stats.mean_band(vals) if len(cs) > 1 else (vals[0], vals[0], vals[0])
    if sign < 0:
        mean, lo, hi = -mean, -hi, -lo
    cfg = cs[0].config
    return {
        "seeds": sorted(seeds),
        "runs": [c.name for c in cs],
        "steps": cs[0].steps[:n].tolist(),
        "images": (cs[0].steps[:n] * cfg["batch_size"]).tolist(),
        "wall": np.stack([c.wall[:n] for c in cs]).mean(axis=0).tolist(),
        "per_seed": {int(c.seed): (sign * c.values[:n]).tolist() for c in cs},
        "mean": mean.tolist(),
        "low": lo.tolist(),
        "high": hi.tolist(),
        "schedule": schedule_label(cfg),
        "vs_paper": cifar10.departures(cfg),
    }


def schedule_label(cfg: dict) -> str:
    m, lr, t = cfg["momentum"], cfg.get("lr_schedule", {"name": "constant"}), cfg["timesteps"]
    beta = f"beta1 {cfg['beta1']:g}" + (
        f" {m['name']} (floor {m.get('floor', paper.FLOOR):g})" if m["name"] != "constant" else ""
    )
    lr_text = f"lr {cfg['lr']:g}" + ("" if lr["name"] == "constant" else f" x {lr['name']}")
    return f"{beta}, {lr_text}, t ~ {t['name']}"


def setup_labels(curves: list[RunCurve]) -> dict:
    """Dataset, width, batch, lr, EMA, steps, evaluation: one value, or every value the group holds."""

    def values(fn):
        vs = sorted({json.dumps(fn(c.config)) for c in curves})
        return ", ".join(json.loads(v) if isinstance(json.loads(v), str) else v for v in vs)

    def width(cfg):
        a = cfg["arch"]
        return f"{a.get('arch')} " + (
            f"{a['model_channels']} base channels" if "model_channels" in a else f"hidden {a.get('hidden')}"
        )

    return {
        "dataset": values(lambda c: c["dataset"]),
        "model": values(width),
        "batch": values(lambda c: c["batch_size"]),
        "lr": values(lambda c: c["lr"]),
        "ema": values(lambda c: c["ema_rate"]),
        "steps": values(lambda c: c["steps"]),
        "eval_every": values(lambda c: c["eval_every"]),
        "seeds": sorted({c.seed for c in curves}),
    }
