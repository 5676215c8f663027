"""The zoo's headline numbers as `dstab report` shipped them, found without loading a model.

The home page draws from here on a server's first run, before anything
imports PyTorch: the manifest names the checkpoints (sha256) and the
settings live in `dstab.defaults`, so the stored results are found by
`cache.lookup` (consistency: the whole key is known) or `cache.find`
(Hessian: the probe's description also holds what only the loaded model
knows, its parameter count; the checkpoint's sha256 pins that).
"""

from __future__ import annotations

from dstab import cache, zooindex
from dstab.defaults import CONSISTENCY_PARAMS, CONSISTENCY_SETTINGS, HESSIAN_PROBE, HESSIAN_SETTINGS, hessian_timesteps


def final_sha(entry: dict) -> str:
    return entry["checkpoints"]["final"]["sha256"]


def consistency(family: str, kind: str, entries: dict) -> cache.Result | None:
    """The shipped consistency of a kind's init group (DDPM for DMs), or None. Never computes."""
    ids = zooindex.group_ids(entries, family, f"{kind}-init")
    if len(ids) < 2:
        return None
    params = {**CONSISTENCY_PARAMS, **CONSISTENCY_SETTINGS}  # DDPM over all T steps
    return cache.lookup("consistency", params, [final_sha(entries[i]) for i in ids])


def hessian_where(entry: dict, role: str = "g") -> dict | None:
    """What the report's Hessian of a zoo entry is known by, short of the loaded model (see
    `report.default_probe`): DMs at the quartile midpoints of [0, T), GANs by role (default the generator)."""
    probe = {"batch_size": HESSIAN_PROBE["batch_size"], "seed": HESSIAN_PROBE["seed"], "dataset": entry["dataset"]}
    if entry["kind"] == "dm":
        T = entry.get("train_config", {}).get("diffusion", {}).get("T")
        if not T:
            return None
        probe.update(kind="dm", timesteps=hessian_timesteps(T))
    else:
        probe.update(kind=f"gan-{role}", role=role)
    return {"engine": "dstab", **HESSIAN_SETTINGS, "probe": probe}


def hessian_claims(family: str, entries: dict) -> list:
    """The report's Hessian verdicts (`dstab.verdicts.hessian_claims`) over every init seed of dm-init and
    gan-init, from the shipped results alone; seeds without a unique stored result are left out."""
    from dstab import verdicts

    rows = []
    for group, roles in (("dm-init", ("g",)), ("gan-init", ("g", "d"))):
        for eid in zooindex.group_ids(entries, family, group):
            for role in roles:
                where = hessian_where(entries[eid], role)
                found = cache.find("hessian", [final_sha(entries[eid])], where) if where else None
                if found and len(found) == 1:
                    rows.append({"id": eid, "probe": where["probe"]["kind"], **found[0].meta})
    collapsed = {e for e, v in entries.items() if zooindex.is_collapsed(v)}
    return verdicts.hessian_claims(rows, collapsed)


def hessian(entry: dict) -> list[cache.Result] | None:
    """The stored results that fit the report's Hessian of a zoo entry: one when it was computed, none
    when not; several only if someone stored variants the description cannot tell apart. None when the
    manifest lacks what the search needs (a DM's T). In those two cases the caller asks
    `dashboard.analyses.default_hessian` with the loaded model for the exact key."""
    where = hessian_where(entry)
    return None if where is None else cache.find("hessian", [final_sha(entry)], where)
