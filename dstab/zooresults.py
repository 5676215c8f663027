"""The results shipped with the zoo (<zoo>/results/): which specs, and the tasks that compute them.

Pages open on these without computing anything; `dstab report` reads the
Hessian and consistency ones; the home page finds them before anything
imports PyTorch (this module imports none). `python -m dstab precompute
--only surface,interpolate` runs the chosen TASKS; results already present
are skipped, so an interrupted run resumes where it stopped.

Settings (the shipped JSON records are the truth; tests/test_zooresults.py
finds every one through these specs):
- landscapes: 21 x 21 over [-1, 1]^2, probe batch 64 with seed 0, DMs at
  t = 50, 500, 900 of T = 1000 (low, middle and high noise), GANs for both
  roles; interpolation over [-0.5, 1.5] at 20 points per unit;
- Hessians (the report's): a batch of 16, DMs averaged over the quartile
  midpoints of [0, T), GANs for both roles, top-3, 20 Hutchinson probes,
  2 SLQ runs of 40 steps;
- consistency: M = 32 samples from seed 0 (the paper's Table 1), DDPM over
  all T steps and DDIM with 50 steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from . import cache, zooindex
from .analysis.specs import GAN_ROLES, ConsistencySpec, CurveSpec, HessianSpec, ProbeSpec, SurfaceSpec, probe_kind
from .errors import DstabError
from .modelconfig import DDIM_STEPS, DIFFUSION_DEFAULTS

DM_TIMESTEPS = (50, 500, 900)  # the landscapes' precomputed DM timesteps (T = 1000)
# the landscape page's timestep choices: every zoo DM's surface is shipped at each (instant slider, small multiples)
SURFACE_TIMESTEPS = (1, 10, 50, 100, 250, 500, 750, 900, 999)
SURFACE = SurfaceSpec()
CURVE = CurveSpec()
HESSIAN = HessianSpec()  # the report's
CONSISTENCY = ConsistencySpec()
REPORT_SAMPLERS = (("ddpm", None), ("ddim", DDIM_STEPS))  # the report's consistency rows
CONSISTENCY_BY_SAMPLER = [replace(CONSISTENCY, sampler=s, steps=n) for s, n in REPORT_SAMPLERS]


def landscape_probes(kind: str, batch_size: int = SURFACE.probe.batch_size, timesteps=None) -> list[ProbeSpec]:
    """The probes every zoo entry's interpolations (DM_TIMESTEPS) and surfaces (SURFACE_TIMESTEPS) are
    shipped for."""
    if kind == "dm":
        return [ProbeSpec(timesteps=(t,), batch_size=batch_size) for t in timesteps or DM_TIMESTEPS]
    return [ProbeSpec(role=r, batch_size=batch_size) for r in GAN_ROLES]


def hessian_probes(kind: str) -> list[ProbeSpec]:
    """The report's Hessian probes of an entry: a DM once, a GAN for both roles."""
    roles = [None] if kind == "dm" else list(GAN_ROLES)
    return [replace(HESSIAN.probe, role=r) for r in roles]


# consistency groups in the shape of the paper's Table 1: (zoo group, label)
TABLE1 = [
    ("dm-init", "DM, inits"),
    ("gan-init", "GAN, inits"),
    ("dm-structure", "DM, structures"),
    ("gan-structure", "GAN, structures"),
]


def families(root: Path | None = None) -> list[str]:
    return sorted({eid.split("/")[0] for eid in zooindex.read_manifest(root)["entries"]})


def _cons():
    from .analysis import consistency

    return consistency


def _results():
    from .analysis import results

    return results


def consistency_rows(root, num: int, samplers, device, store, log, only: list[str] | None = None) -> list[dict]:
    """Per dataset and sampler: C of every Table-1 group ('values'), each group's ids and mean-PSNR
    matrix ('groups', for the verdicts over seeds) and the x0 counterexample ('x0': a list of tests)."""
    rows = []
    for family in only or families(root):
        for sampler, steps in samplers:
            row = {"family": family, "sampler": sampler, "values": {}, "groups": {}}
            for group, _ in TABLE1:
                found = _group_score(root, family, group, num, sampler, steps, device, store, log)
                row["values"][group] = found["C"] if found else None
                if found:
                    row["groups"][group] = found
            row["x0"] = x0_counterexample(root, family, num, sampler, steps, device, store, log)
            rows.append(row)
    return rows


def _group_score(root, family, group, num, sampler, steps, device, store, log) -> dict | None:
    try:
        ids = _cons().group_ids(family, group, root)
    except DstabError:
        return None
    if len(ids) < 2:
        return None
    return _score(root, ids, num, sampler, steps, device, store, log)


def _score(root, ids, num, sampler, steps, device, store, log) -> dict:
    """{'ids', 'C' (dB), 'matrix' ((N, N) mean PSNR dB)} of a group, through the cache."""
    from . import checkpoints as _checkpoints

    bundles = [_checkpoints.load(zooindex.checkpoint_path(i, root=root)) for i in ids]
    spec = replace(CONSISTENCY, num=num, sampler=sampler, steps=steps).for_kind(bundles[0].kind)  # GANs: one key
    found = _results().get(spec, bundles, device=device, root=store, names=ids)
    score = spec.read(found).score
    log(f"consistency {', '.join(ids)} [{spec.sampler}]: {score:.2f} dB ({found.source})")
    return {"ids": list(ids), "C": score, "matrix": found.meta["psnr_matrix_db"]}


def x0_counterexample(root, family, num, sampler, steps, device, store, log) -> list[dict]:
    """The paper's test, C of x0-prediction DMs of different inits (group x0-init, when it has >= 2
    models), and the older stand-in, the pair (eps model, x0 model) of init seed 0, as an extra row."""
    out = []
    try:
        eps_ids = _cons().group_ids(family, "dm-init", root)
    except DstabError:
        return out
    for group in ("x0-init", "dm-x0"):
        try:
            ids = _cons().group_ids(family, group, root)
        except DstabError:
            continue
        if group == "x0-init" and len(ids) >= 2:
            out.append({"kind": "x0 group", **_score(root, ids, num, sampler, steps, device, store, log)})
        elif group == "dm-x0":
            pair = [eps_ids[0], ids[0]]
            out.append({"kind": "eps vs x0 pair", **_score(root, pair, num, sampler, steps, device, store, log)})
    return out


# --- found without PyTorch (the home page) -------------------------------------------------------------


def final_sha(entry: dict) -> str:
    return entry["checkpoints"]["final"]["sha256"]


class EntryCheckpoint:
    """A zoo entry's final checkpoint as its manifest entry describes it: what the specs' `check` and
    `params` read of a checkpoint (kind, name, sha256, the header's dataset, a DM's T), so that a
    result's exact key is spelled by the same spec code without loading the checkpoint (PyTorch).
    `complete`: whether the entry tells all of it (a manifest without the dataset or a DM's train config
    does not: then the checkpoint must be loaded for the key)."""

    def __init__(self, entry_id: str, entry: dict):
        self.name, self.kind, self.sha256 = entry_id, entry["kind"], final_sha(entry)
        self.header = {"dataset": entry.get("dataset")}
        config = entry.get("train_config")
        T = (config or {}).get("diffusion", {}).get("T", DIFFUSION_DEFAULTS["T"])  # the trainer's default
        self.diffusion = SimpleNamespace(T=int(T)) if self.kind == "dm" else None
        self.complete = bool(self.header["dataset"]) and (self.kind != "dm" or config is not None)


def _shipped(spec, ids: list[str], entries: dict) -> cache.Result | None:
    """The stored result of `spec` for zoo entries `ids` (final checkpoints), by its exact key. Never
    computes; one lookup."""
    checkpoints = [EntryCheckpoint(i, entries[i]) for i in ids]
    return cache.lookup(spec.name, spec.params(checkpoints), [c.sha256 for c in checkpoints])


def shipped_consistency(family: str, kind: str, entries: dict, group: str | None = None) -> cache.Result | None:
    """The stored consistency of a kind's init group, or of another `group` of that kind (x0-init), at the
    report's settings (DDPM, M = 32), or None. Never computes."""
    ids = zooindex.group_ids(entries, family, group or f"{kind}-init")
    return _shipped(CONSISTENCY.for_kind(kind), ids, entries) if len(ids) >= 2 else None


def keyed_by_manifest(entry_id: str, entries: dict) -> bool:
    """Whether a zoo entry's manifest tells every value a probe's key reads (see `EntryCheckpoint`)."""
    return entry_id in entries and EntryCheckpoint(entry_id, entries[entry_id]).complete


def shipped_hessian(entry_id: str, entries: dict) -> cache.Result | None:
    """The report's Hessian (generator role for GANs) of a zoo entry whose manifest spells its key
    (`keyed_by_manifest`), or None. Never computes."""
    return _shipped(HESSIAN, [entry_id], entries)


def shipped_hessian_claims(family: str, entries: dict) -> list:
    """The report's Hessian verdicts (`dstab.verdicts.hessian_claims`) over every init seed of dm-init and
    gan-init, from the stored results alone; a model without a stored result is left out."""
    from . import verdicts

    rows = []
    for group, roles in (("dm-init", (None,)), ("gan-init", GAN_ROLES)):
        for eid in zooindex.group_ids(entries, family, group):
            for role in roles if keyed_by_manifest(eid, entries) else ():
                spec = replace(HESSIAN, probe=replace(HESSIAN.probe, role=role))
                found = _shipped(spec, [eid], entries)
                if found is not None:
                    rows.append({**found.meta, "id": eid, "probe": probe_kind(found.params["probe"])})
    collapsed = {e for e, v in entries.items() if zooindex.is_collapsed(v)}
    return verdicts.hessian_claims(rows, collapsed)


def shipped_consistency_claims(family: str, entries: dict) -> list:
    """The report's consistency verdicts (`dstab.verdicts.consistency_claims`) for the DDPM row of a dataset,
    from the stored results alone (the report's M and sampler): DMs above GANs over inits and structures,
    x0 DMs below eps DMs. A group without a stored result is left out."""
    from . import verdicts

    def stored(ids: list[str]) -> dict | None:
        if len(ids) < 2:
            return None
        found = _shipped(CONSISTENCY.for_kind(entries[ids[0]]["kind"]), ids, entries)
        return None if found is None else {"ids": ids, "C": found.meta["C_db"], "matrix": found.meta["psnr_matrix_db"]}

    row = {"family": family, "sampler": CONSISTENCY.sampler, "groups": {}, "x0": []}
    for group, _ in TABLE1:
        found = stored(zooindex.group_ids(entries, family, group))
        if found:
            row["groups"][group] = found
    eps = zooindex.group_ids(entries, family, "dm-init")
    x0_group = stored(zooindex.group_ids(entries, family, "x0-init"))
    if x0_group:
        row["x0"].append({"kind": "x0 group", **x0_group})
    pair = zooindex.group_ids(entries, family, "dm-x0")
    if eps and pair and (found := stored([eps[0], pair[0]])):
        row["x0"].append({"kind": "eps vs x0 pair", **found})
    collapsed = {e for e, v in entries.items() if zooindex.is_collapsed(v)}
    return verdicts.consistency_claims(row, collapsed)


# --- needing the loaded checkpoints ------------------------------------------------------------------


def report_hessian(bundle) -> cache.Result | None:
    """The report's Hessian (generator role for GANs) of a loaded checkpoint by its exact key, or None."""
    from .analysis.results import Plan

    return Plan(HESSIAN, [bundle]).lookup()


def load(entry_id: str, stage: str = "final"):
    from .zoo import load_checkpoint

    return load_checkpoint(entry_id, stage)


def _surfaces(entry_id: str, entry: dict, root: Path, device, log) -> int:
    from .analysis import results

    bundle = load(entry_id)
    probes = landscape_probes(entry["kind"], SURFACE.probe.batch_size, SURFACE_TIMESTEPS)
    for probe in probes:
        spec = replace(SURFACE, probe=probe)
        found = results.get(spec, [bundle], device=device, root=root)
        log(
            f"surface {entry_id} {spec.probe.params(bundle)}: centre {found.meta['centre_loss']:.4g} "
            f"({found.source}, {found.meta['seconds']:.1f} s)"
        )
    return len(probes)


def _interpolations(entry_id: str, entry: dict, root: Path, device, log) -> int:
    from .analysis import results

    if not {"early", "final"} <= set(entry["checkpoints"]):
        return 0
    a, b = load(entry_id, "final"), load(entry_id, "early")
    probes = landscape_probes(entry["kind"], SURFACE.probe.batch_size)
    for probe in probes:
        found = results.get(replace(CURVE, probe=probe), [a, b], device=device, root=root)
        log(
            f"interpolate {entry_id} {probe.params(a)}: roughness {found.meta['metrics']['roughness']:.3g} "
            f"({found.source})"
        )
    return len(probes)


def _hessians(entry_id: str, entry: dict, root: Path, device, log) -> int:
    """The report's Hessian of every zoo entry (DMs; GANs for both roles)."""
    bundle = load(entry_id)
    probes = hessian_probes(entry["kind"])
    for probe in probes:
        found = _results().get(replace(HESSIAN, probe=probe), [bundle], device=device, root=root)
        log(
            f"hessian {entry_id} {probe_kind(found.params['probe'])}: lambda_1 {found.meta['lambda_1']:.4g} "
            f"({found.source})"
        )
    return len(probes)


def _consistency(entry_id: str, entry: dict, root: Path, device, log) -> int:
    """Every consistency group of a dataset, run once, at its first entry."""
    family = entry_id.split("/")[0]
    if entry_id != min(e for e in zooindex.read_manifest()["entries"] if e.startswith(f"{family}/")):
        return 0
    rows = consistency_rows(None, CONSISTENCY.num, REPORT_SAMPLERS, device, root, log, only=[family])
    return sum(v is not None for r in rows for v in r["values"].values())


Task = Callable[..., int]
# a task is fn(entry_id, manifest entry, shipped root, device, log) -> results written
TASKS: dict[str, Task] = {
    "surface": _surfaces,
    "interpolate": _interpolations,
    "hessian": _hessians,
    "consistency": _consistency,
}


def run(only: list[str] | None = None, entries: str | None = None, device="cpu", log=print) -> int:
    """Run the chosen tasks (all by default) on the zoo entries whose id contains `entries`."""
    names = only or list(TASKS)
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise DstabError(f"unknown precompute task(s) {unknown}; choose from {sorted(TASKS)}")
    manifest = zooindex.read_manifest()
    chosen = {k: v for k, v in manifest["entries"].items() if entries is None or entries in k}
    if not chosen:
        raise DstabError(f"no zoo entry matches {entries!r}")
    root = cache.shipped_dir()
    written = 0
    for name in names:
        for entry_id, entry in sorted(chosen.items()):
            written += TASKS[name](entry_id, entry, root, device, log)
    return written
