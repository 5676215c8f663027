"""The results cache: round trip, what the key depends on, shipped-first lookup, torn writes."""

from __future__ import annotations

import hashlib
import json
import threading

import numpy as np
import pytest

import dstab
from dstab import cache
from dstab.errors import DstabError

SHA = "ab" * 32


@pytest.fixture(autouse=True)
def _dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DSTAB_CACHE", str(tmp_path / "user"))
    monkeypatch.setenv("DSTAB_ZOO", str(tmp_path / "zoo"))


def _compute(counter, value=1.0):
    def fn():
        counter.append(1)
        return {"value": value, "nested": {"a": [1, 2]}}, {"grid": np.arange(6.0).reshape(2, 3) * value}

    return fn


def test_round_trip_computes_once():
    calls = []
    first = cache.get_or_compute("surface", {"grid": 3, "radius": 1.0}, [SHA], _compute(calls))
    second = cache.get_or_compute("surface", {"radius": 1.0, "grid": 3}, [SHA], _compute(calls))
    assert len(calls) == 1
    assert (first.source, second.source) == ("computed", "user")
    assert first.params == second.params == {"grid": 3, "radius": 1.0}  # what it was keyed by, both ways
    assert second.meta == {"value": 1.0, "nested": {"a": [1, 2]}}
    np.testing.assert_array_equal(second.arrays["grid"], np.arange(6.0).reshape(2, 3))
    assert second.arrays["grid"].dtype == np.float64
    cache.get_or_compute("surface", {"grid": 3, "radius": 1.0}, [SHA], _compute(calls), refresh=True)
    assert len(calls) == 2


def test_key_depends_on_every_part(monkeypatch):
    base = cache.result_key("surface", {"grid": 21, "radius": 1.0}, [SHA])
    assert cache.result_key("surface", {"radius": 1.0, "grid": 21}, [SHA]) == base
    others = {
        cache.result_key("interpolate", {"grid": 21, "radius": 1.0}, [SHA]),
        cache.result_key("surface", {"grid": 21, "radius": 1.0000001}, [SHA]),
        cache.result_key("surface", {"grid": 21, "radius": 1.0, "seed": 0}, [SHA]),
        cache.result_key("surface", {"grid": 21, "radius": 1.0}, ["cd" * 32]),
        cache.result_key("surface", {"grid": 21, "radius": 1.0}, [SHA, "cd" * 32]),
    }
    monkeypatch.setattr(cache, "__version__", "9.9.9")
    others.add(cache.result_key("surface", {"grid": 21, "radius": 1.0}, [SHA]))
    assert base not in others and len(others) == 6


def test_shipped_results_are_consulted_first(tmp_path):
    calls = []
    cache.get_or_compute("surface", {"g": 1}, [SHA], _compute(calls, 2.0))
    cache.store("surface", {"g": 1}, [SHA], {"value": 3.0}, {"grid": np.ones(2)}, root=cache.shipped_dir())
    found = cache.lookup("surface", {"g": 1}, [SHA])
    assert found.source == "shipped" and found.meta["value"] == 3.0
    assert cache.shipped_dir() == tmp_path / "zoo" / "results"


def test_damaged_or_half_written_results_are_misses():
    calls = []
    stored = cache.get_or_compute("surface", {"g": 2}, [SHA], _compute(calls))
    npz = stored.path.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:-10])
    assert cache.lookup("surface", {"g": 2}, [SHA]) is None
    npz.unlink()
    assert cache.lookup("surface", {"g": 2}, [SHA]) is None
    again = cache.get_or_compute("surface", {"g": 2}, [SHA], _compute(calls))
    assert again.source == "computed" and len(calls) == 2
    assert not list(stored.path.parent.glob("*.tmp"))


def test_concurrent_readers_see_whole_results_or_nothing():
    seen, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            r = cache.lookup("surface", {"g": 3}, [SHA])
            if r is not None:
                seen.append(float(r.arrays["grid"].sum()) == 15.0 * r.meta["value"])

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(30):
        value = float(i % 2 + 1)
        cache.store("surface", {"g": 3}, [SHA], {"value": value}, {"grid": np.arange(6.0) * value})
    stop.set()
    for t in readers:
        t.join()
    last = cache.lookup("surface", {"g": 3}, [SHA])
    seen.append(float(last.arrays["grid"].sum()) == 15.0 * last.meta["value"])
    # a reader may pair a JSON with the other writer's arrays only if the hashes agree, i.e. never
    assert seen and all(seen)


def test_unidentified_results_are_not_stored_and_bad_names_refused():
    calls = []
    r = cache.get_or_compute("surface", {"g": 4}, [None], _compute(calls))
    r2 = cache.get_or_compute("surface", {"g": 4}, [None], _compute(calls))
    assert r.source == r2.source == "computed" and len(calls) == 2
    with pytest.raises(DstabError, match="name"):
        cache.result_key("../etc", {}, [SHA])
    with pytest.raises(DstabError, match="JSON"):
        cache.result_key("surface", {"r": float("nan")}, [SHA])


def test_a_user_cache_hit_is_copied_into_the_shipped_root(tmp_path):
    calls = []
    cache.get_or_compute("surface", {"g": 9}, [SHA], _compute(calls, 3.0))  # lands in the user cache
    shipped = tmp_path / "zoo" / "results"
    found = cache.get_or_compute("surface", {"g": 9}, [SHA], _compute(calls, 3.0), root=shipped)
    assert calls == [1] and found.source == "user"
    again = cache.lookup("surface", {"g": 9}, [SHA])
    assert again.source == "shipped" and np.array_equal(again.arrays["grid"], np.arange(6.0).reshape(2, 3) * 3.0)


def test_the_key_names_its_schema_and_the_record_says_it():
    """A result stored under an older spelling of the keys is a miss, never a stale hit: the schema
    is part of every key (one bump re-keys everything; no compatibility rules)."""
    stored = cache.store("surface", {"g": 1}, [SHA], {"v": 1}, {"x": np.zeros(1)})
    record = json.loads(stored.path.read_text())
    assert record["key_schema"] == cache.KEY_SCHEMA and record["key"] == stored.key
    identity = {"analysis": "surface", "params": {"g": 1}, "checkpoints": [SHA], "dstab_version": dstab.__version__}
    older = hashlib.sha256(cache.canonical_json(identity).encode()).hexdigest()  # the schema-1 key
    newer = hashlib.sha256(cache.canonical_json({**identity, "key_schema": cache.KEY_SCHEMA}).encode()).hexdigest()
    assert stored.key == newer != older
    assert cache.stored_key("surface", stored.key) and not cache.stored_key("surface", older)
    assert cache.read_key("surface", stored.key).meta == {"v": 1} and cache.read_key("surface", older) is None
