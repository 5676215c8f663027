"""The runs of one group, from a live workspace and from run summary files alike.

A group's runs are the run folders of the workspace whose launch.json names the group, and the
summary files (`speedup.save_run_summaries`: name, launch, status, config and every metric row)
of that group in a folder such as results/speedup-runs, whose run folders may no longer exist.
A run in both is read from the workspace. A report may read several runs roots (`root` a list: e.g.
the confirmation's arms in one workspace and the head-to-head's in another, trained side by side as
one group); each is only read, and a run name found in two of them is refused. Only finished runs
are complete; the others are listed with their state, so a report over them is marked partial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import runs
from ..errors import DstabError, require
from ..runs import rundir
from ..runs.runmetrics import RunMetrics

Series = tuple[np.ndarray, np.ndarray, np.ndarray]  # steps, values, walls (unix seconds)


@dataclass
class GroupRun:
    name: str
    label: str
    variant: str
    seed: int
    config: dict = field(repr=False)
    metrics: dict[str, Series] = field(repr=False)
    source: str = "workspace"

    def series(self, name: str) -> Series | None:
        s = self.metrics.get(name)
        return s if s is not None and len(s[0]) else None

    @property
    def first_wall(self) -> float:
        return min(float(w.min()) for _, _, w in self.metrics.values() if len(w))

    @property
    def last_wall(self) -> float:
        return max(float(w.max()) for _, _, w in self.metrics.values() if len(w))

    def at_steps(self, name: str, steps, start: float = 0.0) -> np.ndarray | None:
        """A logged series (e.g. cpu_s) read at `steps`, linear between its rows, `start` at step 0."""
        s = self.series(name)
        if s is None:
            return None
        return np.interp(np.asarray(steps, dtype=np.float64), np.r_[0.0, s[0]], np.r_[start, s[1]])

    def cpu_at(self, steps) -> np.ndarray | None:
        """Process CPU seconds in training steps, cumulative, at `steps` (None: the run did not record it)."""
        return self.at_steps("cpu_s", steps)

    def wall_at(self, steps) -> np.ndarray:
        """Seconds since the run's first logged row, at `steps` (from every row's timestamp)."""
        rows = sorted({(int(st), float(w)) for s, _, ws in self.metrics.values() for st, w in zip(s, ws)})
        st, w = np.array([r[0] for r in rows], dtype=np.float64), np.array([r[1] for r in rows])
        return np.interp(np.asarray(steps, dtype=np.float64), st, w - w.min())

    def throughput(self) -> float | None:
        """The run's median samples per second over its log rows."""
        s = self.series("samples_per_s")
        return None if s is None else float(np.median(s[1]))


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _config(path: Path) -> dict | None:
    for p in (path / runs.RUN / rundir.CONFIG, path / "request.json"):
        cfg = _read_json(p)
        if cfg is not None:
            return cfg
    return None


def _identity(launch: dict, cfg: dict) -> tuple[str, str, int]:
    variant = launch.get("variant") or launch.get("preset") or "custom"
    return launch.get("label") or variant, variant, int(cfg["seed"])


def statuses(group: str, root) -> list[runs.RunStatus]:
    """The group's runs in the workspace, read without scheduling: a report starts nothing, even in a
    workspace whose queue another process drives."""
    root = runs.workspace_root(root)
    if not root.is_dir():
        return []
    found = [runs.status(n, root) for n in runs.run_names(root)]
    return sorted((s for s in found if s.group == group), key=lambda s: (s.created, s.name))


def roots(root) -> list:
    """The runs roots `root` stands for: several (a list or tuple, the same folder named twice counted
    once; each must exist, as a report only reads them), else one (None: the default workspace)."""
    if not isinstance(root, (list, tuple)):
        return [root]
    require(root, "no runs root given; name at least one")
    out, seen = [], set()
    for r in root:
        if r is None:
            out.append(r)
            continue
        require(Path(r).is_dir(), f"the runs root {r} is not a folder; give the runs folder of a workspace")
        if Path(r).resolve() not in seen:
            seen.add(Path(r).resolve())
            out.append(r)
    return out


def first_root(root):
    """The root a launch writes to and a group's stored protocol is read from: the first named."""
    return roots(root)[0]


def _workspace(group: str, root) -> tuple[list[GroupRun], list[dict]]:
    complete, notes, where = [], [], {}
    for one in roots(root):
        base = runs.workspace_root(one)
        for st in statuses(group, base):
            if st.name in where:
                raise DstabError(
                    f"run {st.name} of group {group!r} is in two runs roots ({where[st.name]} and {base}); "
                    "name roots that hold different runs"
                )
            where[st.name] = base
            path = base / st.name
            cfg = _config(path)
            launch = _read_json(path / "launch.json") or {}
            if st.state != "finished" or cfg is None:
                variant = launch.get("variant") or launch.get("preset")
                notes.append(
                    {"run": st.name, "state": st.state, "reason": st.reason or "", "step": st.step, "variant": variant}
                )
                continue
            m = RunMetrics.read(path / runs.RUN / rundir.METRICS)
            label, variant, seed = _identity(launch, cfg)
            complete.append(GroupRun(st.name, label, variant, seed, cfg, {n: m.series(n) for n in m.names()}))
    return complete, notes


def _summaries(group: str, folder: Path | None, skip: set[str]) -> tuple[list[GroupRun], list[dict]]:
    complete, notes = [], []
    for path in sorted(Path(folder).glob("*.json")) if folder and Path(folder).is_dir() else ():
        d = _read_json(path)
        if not d or d.get("launch", {}).get("group") != group or d.get("name") in skip:
            continue
        state = d.get("status", {}).get("state")
        if state != "finished" or not d.get("config"):
            variant = d.get("launch", {}).get("variant")
            notes.append(
                {"run": d.get("name"), "state": state, "reason": "summary file", "step": 0, "variant": variant}
            )
            continue
        metrics = {
            n: tuple(np.asarray(col, dtype=np.float64) for col in zip(*rows)) if rows else (np.array([]),) * 3
            for n, rows in d.get("metrics", {}).items()
        }
        metrics = {n: (s.astype(np.int64), v, w) for n, (s, v, w) in metrics.items()}
        label, variant, seed = _identity(d["launch"], d["config"])
        complete.append(GroupRun(d["name"], label, variant, seed, d["config"], metrics, f"summary {path.name}"))
    return complete, notes


def load(group: str, root=None, summaries: Path | None = None) -> tuple[list[GroupRun], list[dict]]:
    """(complete runs, notes on the runs that are not), from the workspace and the summary folder."""
    live, notes = _workspace(group, root)
    seen = {r.name for r in live} | {n["run"] for n in notes}
    kept, more = _summaries(group, summaries, seen)
    found = live + kept
    require(
        found or notes,
        f"no runs in group {group!r} in {', '.join(str(runs.workspace_root(r)) for r in roots(root))}"
        + (f" or {summaries}" if summaries else "")
        + "; `dstab runs list` shows the groups",
    )
    return found, notes + more


def seeds_of(group: str, root=None, summaries: Path | None = None) -> set[int]:
    """Every seed any run of `group` used or will use (queued, running, finished or failed)."""
    out = set()
    for one in roots(root):
        rootp = runs.workspace_root(one)
        for st in statuses(group, rootp):
            cfg = _config(rootp / st.name) or {}
            seed = cfg.get("seed", (_read_json(rootp / st.name / "launch.json") or {}).get("seed"))
            if seed is not None:
                out.add(int(seed))
    for path in sorted(Path(summaries).glob("*.json")) if summaries and Path(summaries).is_dir() else ():
        d = _read_json(path)
        if d and d.get("launch", {}).get("group") == group:
            out.add(int((d.get("config") or {}).get("seed", d["launch"].get("seed"))))
    return out
