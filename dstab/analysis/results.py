"""`get(spec, bundles)`: an analysis's result, looked up first and computed only when missing.

Lookup goes to the shipped zoo results, then the user cache (dstab.cache),
by the spec's parameters and the checkpoints' sha256s. On a miss the spec's
inputs (its probes) are built once, one unit of its work is timed once
(dstab.analysis.cost), and the engine runs with a progress callback
`progress(stage, done, total)`. Under torchrun every rank computes its share
and only rank 0 writes. A `Plan` holds those steps apart for a caller that
estimates first and computes later (a dashboard page); `get` runs them in one go.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import cache
from . import cost

Progress = Callable[[str, int, int], object]


class Plan:
    """One analysis of some checkpoints on a device: its key, and its inputs built at most once."""

    def __init__(self, spec, bundles, device="cpu"):
        import torch

        from .. import distributed

        self.spec, self.bundles = spec, list(bundles)
        spec.check(self.bundles)
        self.device = distributed.device_for(distributed.from_env(), torch.device(device))
        self._inputs, self._per_unit = None, None
        self.builds = 0  # how often the inputs were built (a page must build them once per miss)
        self.params = spec.params(self.bundles)
        self.shas = [b.sha256 for b in self.bundles]
        self.identified = bool(self.shas) and all(isinstance(s, str) and s for s in self.shas)
        self.key = cache.result_key(spec.name, self.params, self.shas) if self.identified else ""

    def inputs(self):
        if self._inputs is None:
            self._inputs = self.spec.build(self.bundles, self.device)
            self.builds += 1
        return self._inputs

    def lookup(self) -> cache.Result | None:
        return cache.read_key(self.spec.name, self.key) if self.identified else None

    def stored(self) -> bool:
        """Whether the result is on disk, without reading it."""
        return self.identified and cache.stored_key(self.spec.name, self.key)

    def seconds_per_unit(self) -> float:
        if self._per_unit is None:
            key = self.spec.unit_key(self.bundles, self.device)
            self._per_unit = cost.seconds_per_call(self.spec.unit(self.inputs(), self.device), key)
        return self._per_unit

    def estimate_s(self) -> float:
        return self.spec.units(self.bundles) * self.seconds_per_unit()

    def compute(self, progress: Progress | None = None, root: Path | None = None, **runtime) -> tuple[dict, dict]:
        """(meta, arrays) from the engine, nothing stored; the unit timing is reused when known."""
        return self.spec.compute(
            self.inputs(), progress=progress, per_unit=self._per_unit, device=self.device, root=root, **runtime
        )

    def get(
        self, progress: Progress | None = None, refresh: bool = False, root: Path | None = None, **runtime
    ) -> cache.Result:
        """The stored result, or the computed one, stored under `root` (default: the user cache), through
        `cache.get_or_compute` (the one lookup -> compute -> store path). With `root` (the shipped cache,
        when precomputing) a result only the user cache holds is copied there. Under torchrun only rank 0
        writes."""
        from ..distributed import from_env

        shas = self.shas if self.identified else []
        compute = lambda: self.compute(progress, root, **runtime)  # noqa: E731
        return cache.get_or_compute(self.spec.name, self.params, shas, compute, refresh, root, from_env().main)


def get(
    spec,
    bundles,
    progress: Progress | None = None,
    device="cpu",
    refresh: bool = False,
    root: Path | None = None,
    **runtime,
) -> cache.Result:
    """The result of `spec` for `bundles` (see the module docstring); `runtime` goes to the engine
    (a surface's `strategy`, a consistency group's display `names`)."""
    return Plan(spec, bundles, device).get(progress, refresh, root, **runtime)
