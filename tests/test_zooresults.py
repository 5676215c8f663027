"""The zoo's shipped results are found through their specs, the precompute table needs no other import,
and the CLI's defaults are the report's."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dstab import cache, cli, report, zoo, zooresults
from dstab.analysis import consistency as cons
from dstab.analysis.results import Plan

REPO = Path(__file__).resolve().parents[1]


def _shipped_keys(name: str) -> set[str]:
    return {p.stem for p in (cache.shipped_dir() / name).glob("*.json")}


def _plans():
    entries = zoo.read_manifest()["entries"]
    for eid, entry in sorted(entries.items()):
        final, early = zoo.load_checkpoint(eid), zoo.load_checkpoint(eid, "early")
        for probe in zooresults.landscape_probes(entry["kind"], timesteps=zooresults.SURFACE_TIMESTEPS):
            yield Plan(replace(zooresults.SURFACE, probe=probe), [final])
        for probe in zooresults.landscape_probes(entry["kind"]):
            yield Plan(replace(zooresults.CURVE, probe=probe), [final, early])
        if {"dm-init", "gan-init"} & set(entry["groups"]):  # the report's Hessian rows: every init seed
            for probe in zooresults.hessian_probes(entry["kind"]):
                yield Plan(replace(zooresults.HESSIAN, probe=probe), [final])
    for family in report.families():
        groups = [cons.group_ids(family, g) for g, _ in report.TABLE1]
        groups.append([f"{family}/dm-eps-s0", f"{family}/dm-x0-s0"])  # the x0 stand-in pair
        x0 = cons.group_ids(family, "x0-init")
        groups += [x0] if len(x0) >= 2 else []  # the paper's x0 test
        for ids in groups:
            bundles = [zoo.load_checkpoint(i) for i in ids]
            for spec in zooresults.CONSISTENCY_BY_SAMPLER:
                yield Plan(spec.for_kind(bundles[0].kind), bundles)


def _sample_keys(plans) -> set[str]:
    """The consistency engine's per-model sample caches behind the consistency plans."""
    keys = set()
    for plan in plans:
        if plan.spec.name == "consistency":
            s = plan.spec
            for b in plan.bundles:
                params = cons.sample_params(b.kind, s.num, s.seed, s.sampler, s.steps, s.eta)
                keys.add(cache.result_key("samples", params, [b.sha256]))
    return keys


SHIPPED = pytest.mark.skipif(not (zoo.zoo_root() / "results").is_dir(), reason="no shipped results in this zoo")


@SHIPPED
def test_every_shipped_result_is_found_through_its_spec():
    wanted: dict[str, set[str]] = {}
    plans = list(_plans())
    for plan in plans:
        assert plan.lookup() is not None and plan.lookup().source == "shipped", (plan.spec, plan.bundles[0].name)
        wanted.setdefault(plan.spec.name, set()).add(plan.key)
    wanted["samples"] = _sample_keys(plans)
    for name, keys in wanted.items():
        assert keys == _shipped_keys(name), name  # and nothing shipped that no spec names
    assert {p.name for p in cache.shipped_dir().iterdir()} == {*wanted, "census"}
    # surfaces: 14 DMs at the landscape page's 9 timesteps and 8 GANs for G and D; interpolations at 3 / 2
    # timesteps (14 * 3 + 8 * 2); consistency: per family and sampler 5 groups (eps, GAN, 2 structure,
    # x0 group) + the eps/x0 pair, where the GAN groups' DDIM row reuses DDPM's (2 * 2 * 6 - 4); samples:
    # every model of those groups once per sampler (DMs 2 x 7 per family, GANs once: 2 * (14 + 4))
    assert {n: len(k) for n, k in wanted.items()} == {
        "surface": 14 * 9 + 8 * 2,
        "interpolate": 14 * 3 + 8 * 2,
        "hessian": 18,
        "consistency": 20,
        "samples": 2 * (2 * 7 + 4),
    }
    for plan in plans:  # every record says the schema it is keyed by
        assert json.loads(plan.lookup().path.read_text())["key_schema"] == cache.KEY_SCHEMA


@SHIPPED
def test_a_changed_prose_constant_still_finds_every_shipped_result_through_the_cli_and_the_page(
    monkeypatch, tmp_path, capsys
):
    """The keys hold no prose: one trailing space added to the BN wording (once in the Hessian's key)
    and every shipped result is still found, by the CLI's route (results.get) and the pages' (Home from
    the manifest; an analysis page through the same Plans)."""
    from dstab import probes

    monkeypatch.setattr(probes, "BN_MODE", probes.BN_MODE + " ")
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "empty"))
    entries = zoo.read_manifest()["entries"]
    for plan in _plans():
        assert plan.lookup().source == "shipped", (plan.spec, plan.bundles[0].name)
        if plan.spec.name == "hessian" and plan.spec.probe.role in (None, "g"):
            assert zooresults.shipped_hessian(plan.bundles[0].name.split("@")[0], entries).key == plan.key
    assert cli.main(["hessian", "toy2d/gan-s1", "-o", str(tmp_path / "h"), "--device", "cpu"]) == 0
    assert "shipped" in capsys.readouterr().out


def test_home_finds_the_shipped_numbers_from_the_manifest_alone():
    entries = zoo.read_manifest()["entries"]
    for eid in ("digits/dm-eps-s0", "digits/gan-s0"):
        exact = zooresults.report_hessian(zoo.load_checkpoint(eid))
        assert zooresults.shipped_hessian(eid, entries).key == exact.key and exact.source == "shipped"
    c = zooresults.shipped_consistency("digits", "dm", entries)
    assert c.source == "shipped" and c.meta["settings"] == {
        "num": 32,
        "seed": 0,
        "sampler": "ddpm",
        "steps": None,
        "eta": 0.0,
    }


FRESH = r"""
import sys
from dstab import zooresults
from dstab.errors import DstabError
try:
    zooresults.run(["hessian"], entries="no-such-entry")
except DstabError as exc:
    print(exc)
print(sorted(m for m in sys.modules if m in ("dstab.report", "torch")))
"""


def test_precompute_tasks_are_known_in_a_fresh_process():
    """The task table is static: `run(only=['hessian'])` accepts the task without dstab.report imported first
    (it used to raise "unknown precompute task(s) ['hessian']"), and listing the tasks imports no PyTorch."""
    out = subprocess.run(
        [sys.executable, "-c", FRESH], capture_output=True, text=True, check=True, cwd=REPO, timeout=600
    ).stdout.splitlines()
    assert out[0] == "no zoo entry matches 'no-such-entry'"
    assert out[1] == "[]"


def test_cli_hessian_defaults_find_the_shipped_result(tmp_path, monkeypatch, capsys):
    """The README's `python -m dstab hessian digits/dm-eps-s0` with no options is the report's Hessian."""
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "empty"))
    assert cli.main(["hessian", "digits/dm-eps-s0", "-o", str(tmp_path / "h"), "--device", "cpu"]) == 0
    meta = json.loads((tmp_path / "h" / "hessian_digits-dm-eps-s0_t125-375-625-875.json").read_text())
    assert meta["source"] == "shipped"
    assert meta["probe"]["timesteps"] == [125, 375, 625, 875] and meta["probe"]["batch_size"] == 16
    assert "shipped" in capsys.readouterr().out
