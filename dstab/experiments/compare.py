"""`dstab compare GROUP`: the runs of one group (a sweep) as curves, four readouts of a speed-up with
honest intervals, and one verdict per comparison.

Runs are grouped by variant label (preset + sweep values, from launch.json) and paired by seed; a
group's runs come from the workspace and from run summary files (groupruns.py). Each variant is
compared with the reference (default baseline), and the variants that decay momentum also with the
controls (lr-matched, lrc-only) when present. Per seed pair: the four readouts of readouts.py (the
ladder of fixed levels, area under the log curve, final level, time to the run's own plateau), then
per readout the mean over seeds of the log ratio with its Student-t (BCa at n >= 10) interval, its
two-sided t-test p Holm-adjusted across every comparison and readout of the report, and the exact
sign-flip p with its floor beside it; time ratios in CPU seconds and, for arms run side by side,
wall-clock (timing.py). The
metric's floor (real data against the reference at the same sample count) and its noise (a repeat
evaluation with other noise seeds, and the reference's scatter over its last evaluations) are
measured and reported. Every definition is a field of the group's `Protocol` (protocol.py): fixed
with a confirmation group, the pre-registered defaults otherwise. Only complete (finished) runs
count; the others are listed, and the result is marked partial.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import paper
from ..analysis import fid
from ..errors import DstabError, require
from ..metricnames import HIGHER_IS_BETTER, is_repeat, metric_label, repeat_name
from . import cifar10, stats, timing
from . import readouts as ro
from .groupruns import GroupRun, first_root, load
from .protocol import REPO, Protocol, for_group

AXES = {
    "iterations": "iterations",
    "images": "images seen",
    "cpu": "CPU seconds in training steps",
    "wall": "wall-clock seconds",
}
CONTROLS = ("lr-matched", "lrc-only")  # controls the full method is also compared with, when present
MIN_SEEDS = 2  # complete seeds a comparison needs for an interval (a verdict: the protocol's min_seeds, 3)
PREFERRED = ("mmd2@", "fid@", "fd_local@", "fd_points@", "sw2@")  # the default metric, first found
SIDE = ("kid", "precision", "recall", "density", "coverage")  # reported beside the primary metric


def pick_metric(names: set[str], wanted: str | None) -> str:
    evals = sorted(n for n in names if "@" in n and not is_repeat(n))
    require(evals, "the runs of this group have no evaluations yet; set eval_every and wait for one")
    if wanted:
        hits = [n for n in evals if n == wanted or n.split("@")[0] == wanted]
        require(len(hits) == 1, f"metric {wanted!r} is not one of the group's metrics {evals}")
        return hits[0]
    return next((n for prefix in PREFERRED for n in evals if n.startswith(prefix)), evals[0])


def _common_metric(found: list[GroupRun], group: str, wanted: str | None) -> str:
    datasets = sorted({r.config["dataset"] for r in found})
    require(len(datasets) == 1, f"group {group!r} mixes datasets {datasets}; compare runs of one dataset")
    names = [set(r.metrics) for r in found]
    common = set.intersection(*names)
    if any("@" in n for s in names for n in s) and not any("@" in n for n in common):
        raise DstabError(
            f"the runs of group {group!r} were not evaluated with one metric "
            f"({sorted({n for s in names for n in s if '@' in n})}); compare runs of one metric "
            "(same eval_samples, eval_sampler_steps, eval_seeds)"
        )
    return pick_metric(common, wanted)


def by_label(found: list[GroupRun]) -> dict[str, dict[int, GroupRun]]:
    out: dict[str, dict[int, GroupRun]] = {}
    for r in found:
        out.setdefault(r.label, {})[r.seed] = r
    return out


def floor_band(metric: str, dataset: str, protocol: Protocol) -> dict | None:
    """The metric's real-vs-reference floor at its sample count, with the band drawn and used to
    censor: mean +- floor_sd sd."""
    try:
        f = fid.metric_floor(metric, dataset)
    except (DstabError, OSError) as exc:
        return {"error": str(exc)}
    if f is None:
        return None
    return {**f, "low": f["mean"] - protocol.floor_sd * f["sd"], "top": f["mean"] + protocol.floor_sd * f["sd"]}


def curve_of(run: GroupRun, metric: str, top: float | None, higher: bool) -> ro.Curve:
    steps, values, _ = run.series(metric)
    return ro.Curve(steps, ro.censored(values, top, higher), higher)


def compare(
    group: str,
    protocol: Protocol | None = None,
    root=None,
    summaries=None,
    floor: bool = True,
    reference: str | None = None,
    variants=None,
    secondary=(),
) -> dict:
    """Everything `compare` reports, as plain data (JSON-serialisable). `protocol`: the group's stored
    one if None (else the defaults); `reference` overrides its reference variant; `variants`: only
    these (a group may hold several experiments' arms: Holm's family is the report's comparisons);
    `floor=False` skips measuring the metric's floor; `root`: one runs root or several, read together
    (the group's stored protocol is read beside the first). `secondary`: more (variant, reference)
    pairs, e.g. CLTS against each other rule, read on the same ladder and reported apart as their own
    Holm family ("secondary"); a pair without a complete shared seed is listed, not compared."""
    fixed = for_group(group, first_root(root))
    base = fixed[0] if fixed else Protocol()
    p = (protocol or base).replace(reference=reference)
    source = _source(p, base, fixed[1] if fixed else None)
    found, notes = load(group, root, summaries)
    if variants:
        keep = set(variants) | {p.reference}
        found = [r for r in found if r.variant in keep or r.label in keep]
        notes = [n for n in notes if n.get("variant") in keep]
    require(found, f"group {group!r} has no finished runs yet ({len(notes)} runs: {_states(notes)})")
    metric = _common_metric(found, group, p.metric)
    higher = metric.split("@")[0] in HIGHER_IS_BETTER
    labels = by_label(found)
    require(
        p.reference in labels, f"reference {p.reference!r} has no finished runs in {group!r}; have {sorted(labels)}"
    )
    # a variant is compared on the seeds it shares with the reference; with fewer than the protocol's
    # minimum its numbers are shown without a verdict (and without an interval under 2)
    thin = {lab: sorted(s) for lab, s in labels.items() if lab != p.reference and not set(s) & set(labels[p.reference])}
    others = [lab for lab in labels if lab != p.reference and lab not in thin]
    require(
        others,
        f"group {group!r} needs a complete seed of {p.reference!r} and of another variant, run with the same seed; "
        "complete seeds: " + ", ".join(f"{lab} {sorted(s)}" for lab, s in labels.items()),
    )
    band = floor_band(metric, found[0].config["dataset"], p) if floor else None
    top = band.get("top") if band and "top" in band and band["top"] > 0 else None
    curves = {lab: {s: curve_of(r, metric, top, higher) for s, r in seeds.items()} for lab, seeds in labels.items()}
    ladder = _ladder(curves, labels, p, higher)
    decays = [lab for lab in others if paper.decays_momentum(next(iter(labels[lab].values())).config)]
    pairs = [(lab, p.reference) for lab in others] + [
        (lab, ctl) for ctl in CONTROLS if ctl in labels and ctl not in thin for lab in decays if lab not in CONTROLS
    ]
    comparisons = [_compare_pair(labels, curves, lab, ref, ladder["levels"], band, p) for lab, ref in pairs]
    _holm(comparisons)
    from .verdict import decide  # the one verdict function (verdict.py builds its sentences on this result)

    for c in comparisons:
        c["verdict"] = decide(c, p)
    extra = [(v, r) for v, r in secondary if v in labels and r in labels and set(labels[v]) & set(labels[r])]
    second = [_compare_pair(labels, curves, v, r, ladder["levels"], band, p) for v, r in extra]
    _holm(second)
    for c in second:
        c["verdict"] = decide(c, p)
    ref_plateaus = {
        s: ro.plateau_x(c.steps, c.values, p.plateau_window, p.plateau_alpha, higher)
        for s, c in curves[p.reference].items()
    }
    return {
        "group": group,
        "metric": metric,
        "metric_label": metric_label(metric),
        "higher_is_better": higher,
        "reference": p.reference,
        "protocol": p.to_dict(),
        "protocol_source": source,
        "definitions": p.describe(),
        "floor": band,
        "noise": _noise(labels, curves, metric, p),
        "ladder": ladder,
        "reference_plateau": [[s, x] for s, x in sorted(ref_plateaus.items())],
        "run_steps": max(int(r.config["steps"]) for r in labels[p.reference].values()),
        "variants": {lab: _variant(labels[lab], curves[lab], metric, p) for lab in labels},
        "left_out_variants": thin,
        "comparisons": comparisons,
        "tests": _tests(comparisons),
        "secondary": {
            "comparisons": second,
            "tests": _tests(second),
            "waiting": [f"{v} vs {r}" for v, r in secondary if (v, r) not in extra],
        },
        "partial": bool(notes or thin),
        "not_counted": notes,
        "setup": setup_labels(found),
        "axes": AXES,
    }


def _tests(comparisons: list[dict]) -> int:
    return sum(1 for c in comparisons for r in c["readouts"].values() if r.get("p") is not None)


def _source(p: Protocol, base: Protocol, where: str | None) -> str:
    """Where the report's definitions come from, and what was changed."""
    changed = [f"{k} {v!r}" for k, v in p.to_dict().items() if v != base.to_dict()[k] and k != "metric"]
    if where and Path(where).is_relative_to(REPO):
        where = str(Path(where).relative_to(REPO))
    origin = (
        f"fixed for this group before its runs ({where})" if where else "dstab's defaults (the pre-registered ones)"
    )
    return origin + (f", changed for this report: {', '.join(changed)}" if changed else "")


def _states(notes) -> str:
    counts = {}
    for n in notes:
        counts[n["state"]] = counts.get(n["state"], 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _ladder(curves: dict, labels: dict, p: Protocol, higher: bool) -> dict:
    """Levels from the pooled curves: the top is the geometric mean of every smoothed run at
    `ladder_top_at` of its length; the bottom the worst of the variants' mean final levels."""
    tops = [
        ro.value_at(p.ladder_top_at * labels[lab][s].config["steps"], c.steps, ro.smooth(c.values, p.smooth_window))
        for lab, seeds in curves.items()
        for s, c in seeds.items()
    ]
    top = float(np.exp(np.mean(np.log(tops))))
    finals = {
        lab: float(np.mean([ro.final_level(c.values, p.final_k) for c in s.values()])) for lab, s in curves.items()
    }
    bottom = min(finals.values()) if higher else max(finals.values())
    falls = bottom > top if higher else bottom < top
    return {
        "top": top,
        "bottom": bottom,
        "levels": ro.ladder_levels(top, bottom, p.ladder_fractions) if falls else [],
        "why_none": None if falls else "the pooled curve does not improve from the ladder's top to its bottom",
    }


def _summary(per_seed: dict[int, float | None], p: Protocol) -> dict:
    d = np.array([v for v in per_seed.values() if v is not None], dtype=np.float64)
    out = {"per_seed": {str(s): v for s, v in per_seed.items()}, "n": len(d), "mean_log": None, "ratio": None}
    out.update(low=None, high=None, method=None, p=None, p_holm=None, p_sign=None, p_floor=None)
    if len(d):
        out.update(mean_log=float(d.mean()), ratio=float(np.exp(d.mean())))
    if len(d) >= 2:
        lo, hi, method = stats.interval(d, p.level, p.bca_min_n)
        out.update(low=float(np.exp(lo)), high=float(np.exp(hi)), method=method)
        out.update(p=stats.t_test_p(d), p_sign=stats.sign_flip_p(d), p_floor=stats.p_floor(len(d)))
    return out


def _compare_pair(labels, curves, lab: str, ref: str, levels, band, p: Protocol) -> dict:
    seeds = sorted(set(labels[lab]) & set(labels[ref]))
    per = {k: {} for k in ro.READOUTS}
    crossings, plateaus = {}, {}
    for s in seeds:
        rc, vc = curves[ref][s], curves[lab][s]
        rx, vx = ro.ladder_crossings(rc, levels, p.smooth_window), ro.ladder_crossings(vc, levels, p.smooth_window)
        rp = ro.plateau_x(rc.steps, rc.values, p.plateau_window, p.plateau_alpha, rc.higher)
        vp = ro.plateau_x(vc.steps, vc.values, p.plateau_window, p.plateau_alpha, vc.higher)
        crossings[s], plateaus[s] = (rx, vx), (rp, vp)
        per["ladder"][s] = ro.ladder_readout(rx, vx)
        per["area"][s] = ro.area_readout(rc, vc)
        per["final"][s] = ro.final_readout(rc, vc, p.final_k)
        per["plateau"][s] = ro.plateau_readout(rp, vp)
    out = {k: _summary(per[k], p) for k in ro.READOUTS}
    out["ladder"]["crossings"] = {str(s): {"reference": r, "variant": v} for s, (r, v) in crossings.items()}
    out["plateau"]["reached"] = {str(s): {"reference": r, "variant": v} for s, (r, v) in plateaus.items()}
    out["plateau"]["not_reached"] = {
        "reference": [s for s in seeds if plateaus[s][0] is None],
        "variant": [s for s in seeds if plateaus[s][1] is None],
    }
    if not levels:
        out["ladder"]["unreadable"] = "no ladder: the pooled curve does not improve"
    top = band.get("top") if band else None
    if top is not None:
        finals = [
            float(np.mean([ro.final_level(curves[arm][s].values, p.final_k) for s in seeds])) for arm in (ref, lab)
        ]
        inside = all(f <= top for f in finals) if not curves[ref][seeds[0]].higher else False
        if inside:
            out["final"]["undetectable"] = (
                f"both final levels ({finals[0]:.3g}, {finals[1]:.3g}) lie inside the metric's floor band "
                f"(real data against the reference: up to {top:.3g})"
            )
    return {
        "variant": lab,
        "reference": ref,
        "seeds": seeds,
        "readouts": out,
        "time": _time(labels, lab, ref, seeds, crossings, plateaus, p),
    }


def _time(labels, lab, ref, seeds, crossings, plateaus, p: Protocol) -> dict:
    pairs = [(labels[ref][s], labels[lab][s]) for s in seeds]
    check = timing.load_check(pairs)
    out = {"load": check}
    for kind in timing.CLOCKS:
        out[kind] = {}
        for name, steps in (("ladder", crossings), ("plateau", plateaus)):
            per = {}
            for s, (r, v) in zip(seeds, pairs):
                rx, vx = steps[s]
                rx, vx = (rx, vx) if name == "ladder" else ([rx], [vx])
                per[s] = timing.log_ratio(r, v, kind, rx, vx)
            summary = _summary(per, p)
            if not check[kind]["interval"]:
                summary.update(low=None, high=None, p=None, p_sign=None, p_floor=None, method=None)
            out[kind][name] = summary
    return out


def _holm(comparisons: list[dict]) -> None:
    """Holm's adjustment of the t-test p across every comparison and readout of the report, in place."""
    cells = [r for c in comparisons for r in c["readouts"].values() if r["p"] is not None]
    for r, adj in zip(cells, stats.holm([r["p"] for r in cells])):
        r["p_holm"] = adj


def _noise(labels, curves, metric: str, p: Protocol) -> dict:
    """The metric's own noise: log differences between evaluations of the same model with other noise
    seeds (`#2` rows), and the reference's scatter over its last final_k evaluations."""
    diffs = []
    for seeds in labels.values():
        for r in seeds.values():
            a, b = r.series(metric), r.series(repeat_name(metric))
            if a is None or b is None:
                continue
            _, i, j = np.intersect1d(a[0], b[0], return_indices=True)
            ok = (a[1][i] > 0) & (b[1][j] > 0)
            diffs += list(np.log(a[1][i][ok] / b[1][j][ok]))
    raw = [r.series(metric)[1][-p.final_k :] for r in labels[p.reference].values()]
    scatter = [float(np.std(v, ddof=1) / abs(np.mean(v))) for v in raw if len(v) >= 2 and np.mean(v) != 0]
    return {
        "repeat_pairs": len(diffs),
        "repeat_sd_log": float(np.sqrt(np.mean(np.square(diffs)) / 2)) if diffs else None,
        "reference_last_k_cv": scatter,
    }


def _geo_band(values: np.ndarray, level: float):
    mean, lo, hi = stats.mean_band(np.log(values), level)
    return np.exp(mean), np.exp(lo), np.exp(hi)


def _variant(seeds: dict[int, GroupRun], curves: dict[int, ro.Curve], metric: str, p: Protocol) -> dict:
    order = sorted(seeds)
    n = min(len(curves[s].values) for s in order)
    steps = curves[order[0]].steps[:n]
    require(all(np.array_equal(curves[s].steps[:n], steps) for s in order), "seeds evaluated at different steps")
    vals = np.stack([curves[s].values[:n] for s in order])
    mean, lo, hi = _geo_band(vals, p.level)
    cfg = seeds[order[0]].config
    cpu = [seeds[s].cpu_at(steps) for s in order]
    repeats = {}
    for s in order:
        rep = seeds[s].series(repeat_name(metric))
        if rep is not None:
            repeats[str(s)] = [[float(a), float(b)] for a, b in zip(rep[0], rep[1])]
    return {
        "seeds": order,
        "runs": [seeds[s].name for s in order],
        "sources": sorted({seeds[s].source.split(" ")[0] for s in order}),
        "steps": steps.tolist(),
        "images": (steps * cfg["batch_size"]).tolist(),
        "cpu": None if any(c is None for c in cpu) else np.mean(cpu, axis=0).tolist(),
        "wall": np.mean([seeds[s].wall_at(steps) for s in order], axis=0).tolist(),
        "per_seed": {str(s): curves[s].values[:n].tolist() for s in order},
        "repeats": repeats,
        "mean": mean.tolist(),
        "low": lo.tolist(),
        "high": hi.tolist(),
        "final": float(np.mean([ro.final_level(curves[s].values, p.final_k) for s in order])),
        "final_raw": float(np.mean([ro.final_level(seeds[s].series(metric)[1], p.final_k) for s in order])),
        "side": _side(seeds, metric, p),
        "schedule": schedule_label(cfg),
        "timesteps": cfg["timesteps"],
        "diffusion": cfg["diffusion"],
        "noise_pairing": cfg.get("noise_pairing", "independent"),
        "vs_paper": cifar10.departures(cfg),
    }


def _side(seeds: dict[int, GroupRun], metric: str, p: Protocol) -> dict:
    """KID (with its standard error) and precision / recall / density / coverage beside the primary
    metric: the mean over seeds of each one's mean over the last final_k evaluations."""
    tail = metric.partition("@")[2]
    out = {}
    for name in sorted(set.intersection(*(set(r.metrics) for r in seeds.values()))):
        base, _, rest = name.partition("@")
        if rest != tail or not base.startswith(SIDE) or base.endswith("_se"):
            continue
        out[base] = float(np.mean([ro.final_level(r.series(name)[1], p.final_k) for r in seeds.values()]))
        se = seeds[next(iter(seeds))].series(f"{base}_se@{tail}")
        if se is not None:
            out[f"{base}_se"] = float(
                np.mean([ro.final_level(r.series(f"{base}_se@{tail}")[1], p.final_k) for r in seeds.values()])
            )
    return out


def schedule_label(cfg: dict) -> str:
    m, lr, t = cfg["momentum"], cfg.get("lr_schedule", {"name": "constant"}), cfg["timesteps"]
    beta = f"beta1 {cfg['beta1']:g}" + (
        f" {m['name']} (floor {m.get('floor', paper.FLOOR):g})" if m["name"] != "constant" else ""
    )
    lr_text = f"lr {cfg['lr']:g}" + ("" if lr["name"] == "constant" else f" x {lr['name']}")
    return f"{beta}, {lr_text}, t ~ {t['name']}"


def setup_labels(found: list[GroupRun]) -> dict:
    """Dataset, width, batch, lr, EMA, steps, evaluation: one value, or every value the group holds."""

    def values(fn):
        vs = sorted({json.dumps(fn(r.config)) for r in found})
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
        "seeds": sorted({r.seed for r in found}),
    }


def exploration_protocol(p: Protocol) -> Protocol:
    """The confirmation's protocol applied to exploration runs, which were evaluated otherwise: their
    own default metric, every other definition the same."""
    return replace(p, metric=None)
