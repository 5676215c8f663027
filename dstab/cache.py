"""Analysis results on disk, keyed by what they depend on.

key = sha256 of the canonical JSON of {analysis name, parameters, checkpoint
sha256s, dstab version, key schema}. The parameters are a spec's `params()`
(dstab.analysis.specs): every field spelled, whatever its value, and nothing
derived from the loaded model (that goes to the result's meta). KEY_SCHEMA
names that spelling: changing it (one bump, every shipped result re-keyed)
is how a new spelling replaces the old without compatibility rules. A result is a JSON file (its metadata, plus the
sha256 of its arrays) and an NPZ file (its arrays), both written atomically
(temporary file + os.replace), arrays first. A reader that finds the JSON
loads the NPZ and checks its hash, so it never trusts half a result: a
missing or mismatching NPZ is a cache miss, never an error.

Two places are consulted, in order:
1. the read-only shipped cache `<zoo root>/results/` (DSTAB_ZOO moves it),
   where `python -m dstab precompute` puts the zoo's default results;
2. the writable user cache (`user_dir`): $DSTAB_CACHE, else the user's cache
   directory ($XDG_CACHE_HOME/dstab, default ~/.cache/dstab), never inside the
   installed package, so a read-only or shared install works and users never mix.

A result that cannot be written (a full disk, no permission) is still returned,
with a `StoreWarning` naming the path and why (`Result.note`): a finished
computation is never thrown away for want of a cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .errors import DstabError, DstabWarning
from .fileio import atomic_write_bytes, user_cache_dir
from .zooindex import zoo_root

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# 2: keys from specs only (every field spelled; the probe by its spec, not by the built probe's description)
KEY_SCHEMA = 2


@dataclass
class Result:
    meta: dict  # JSON-able
    arrays: dict[str, np.ndarray]
    key: str
    source: str  # "computed", "user" or "shipped"
    path: Path | None = None
    params: dict | None = None  # what it was keyed by (None for results nothing identifies)
    note: str = ""  # why a computed result was not stored, when it could not be


class StoreWarning(DstabWarning):
    """A finished result could not be written to the cache; it is returned all the same."""


def user_dir() -> Path:
    """The writable cache: the user's (`fileio.user_cache_dir`: $DSTAB_CACHE, else $XDG_CACHE_HOME/dstab,
    else ~/.cache/dstab)."""
    return user_cache_dir()


def shipped_dir() -> Path:
    return zoo_root() / "results"


def canonical_json(value) -> str:
    """One spelling per value: sorted keys, no spaces; NaN is refused (it is not a parameter)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DstabError(f"analysis parameters must be plain JSON values (numbers, strings, lists): {exc}") from None


def result_key(name: str, params: dict, shas: list[str] | tuple[str, ...] | str) -> str:
    if not NAME_RE.match(name):
        raise DstabError(f"cache entry name {name!r} must be lower-case letters, digits, '-' or '_'")
    shas = [shas] if isinstance(shas, str) else list(shas)
    identity = {
        "analysis": name,
        "params": params,
        "checkpoints": shas,
        "dstab_version": __version__,
        "key_schema": KEY_SCHEMA,
    }
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def _paths(root: Path, name: str, key: str) -> tuple[Path, Path]:
    return root / name / f"{key}.json", root / name / f"{key}.npz"


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _read(root: Path, name: str, key: str, source: str) -> Result | None:
    jpath, npath = _paths(root, name, key)
    try:
        record = json.loads(jpath.read_text())
        raw = npath.read_bytes()
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("key") != key or hashlib.sha256(raw).hexdigest() != record.get("arrays_sha256"):
        return None
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return Result(record["meta"], arrays, key, source, jpath, record.get("params"))


def _roots(roots: list[tuple[Path, str]] | None = None) -> list[tuple[Path, str]]:
    return roots or [(shipped_dir(), "shipped"), (user_dir(), "user")]


def stored_key(name: str, key: str) -> bool:
    """Whether a result is on disk (shipped or user cache), without reading it."""
    return any(_paths(root, name, key)[0].exists() for root, _ in _roots())


def read_key(name: str, key: str, roots: list[tuple[Path, str]] | None = None) -> Result | None:
    """The stored result under `key`, shipped cache first, or None."""
    for root, source in _roots(roots):
        found = _read(root, name, key, source)
        if found is not None:
            return found
    return None


def lookup(name: str, params: dict, shas, roots: list[tuple[Path, str]] | None = None) -> Result | None:
    """The stored result, shipped cache first, or None."""
    return read_key(name, result_key(name, params, shas), roots)


def store(name: str, params: dict, shas, meta: dict, arrays: dict, root: Path | None = None) -> Result:
    """Write a result under `root` (the user cache by default); arrays first, the JSON last."""
    key = result_key(name, params, shas)
    root = Path(root or user_dir())
    jpath, npath = _paths(root, name, key)
    raw = _npz_bytes(arrays)
    record = {
        "key": key,
        "analysis": name,
        "params": params,
        "checkpoints": [shas] if isinstance(shas, str) else list(shas),
        "dstab_version": __version__,
        "key_schema": KEY_SCHEMA,
        "arrays_sha256": hashlib.sha256(raw).hexdigest(),
        "meta": meta,
    }
    text = json.dumps(record, indent=1, sort_keys=True)  # NaN in meta stays readable by json.loads
    atomic_write_bytes(npath, raw)
    atomic_write_bytes(jpath, text.encode())
    return Result(meta, {k: np.asarray(v) for k, v in arrays.items()}, key, "computed", jpath, params)


def store_or_keep(name: str, params: dict, shas, meta: dict, arrays: dict, root: Path | None = None) -> Result:
    """`store`, or, when the disk refuses (full, read-only), the result unstored with a StoreWarning
    naming the path: the computation is kept (nothing half-written stays behind: writes are atomic)."""
    try:
        return store(name, params, shas, meta, arrays, root)
    except OSError as exc:
        where = exc.filename or Path(root or user_dir()) / name
        note = (
            f"the {name} result was computed but could not be stored at {where} ({exc.strerror or exc}); "
            "it is returned unstored: free space there or set DSTAB_CACHE to another folder"
        )
        warnings.warn(note, StoreWarning, stacklevel=3)
        keyed = result_key(name, params, shas)
        return Result(meta, {k: np.asarray(v) for k, v in arrays.items()}, keyed, "computed", None, params, note)


def get_or_compute(
    name: str,
    params: dict,
    shas,
    compute_fn: Callable[[], tuple[dict, dict]],
    refresh: bool = False,
    root: Path | None = None,
    write: bool = True,
) -> Result:
    """A stored result, or compute_fn() -> (meta, arrays) stored and returned: the one lookup -> compute
    -> store path (`dstab.analysis.results.Plan.get` goes through it too).

    `refresh` recomputes even when a result exists. Results of custom probes
    (no checkpoint sha256) are computed but never stored: nothing identifies them.
    With `root` (the shipped cache, when precomputing) a result only the user cache
    holds is copied there too, so the shipped cache ends up complete. `write=False`
    (a torchrun rank other than 0) computes and stores nothing."""
    shas_list = [shas] if isinstance(shas, str) else list(shas)
    identified = bool(shas_list) and all(isinstance(s, str) and s for s in shas_list)
    if identified and not refresh:
        found = lookup(name, params, shas_list)
        if found is not None and root is not None and found.source == "user" and write:
            store(name, params, shas_list, found.meta, found.arrays, root)
        if found is not None:
            return found
    meta, arrays = compute_fn()
    if not identified or not write:
        return Result(meta, {k: np.asarray(v) for k, v in arrays.items()}, "", "computed", None, params)
    return store_or_keep(name, params, shas_list, meta, arrays, root)
