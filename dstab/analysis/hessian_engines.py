"""A Hessian spectrum by the chosen engine, through the results cache.

The engines: dstab's own (`hessian`) and PyHessian as the paper used it
(`hessian_ref`, which imports `hessian`'s result type and density). Choosing
between them lives here, above both, so the imports run one way.
"""

from __future__ import annotations

from .. import cache
from . import hessian, hessian_ref


def analyse(probe, engine: str = "dstab", progress=None, **settings) -> hessian.HessianSpectrum:
    """The spectrum by the named engine: dstab's own, or PyHessian as the paper used it."""
    if hessian.check_engine(engine) == "pyhessian":
        return hessian_ref.spectrum(probe, progress=progress, **settings)
    return hessian.spectrum(probe, progress=progress, **settings)


def cached(
    probe, engine: str = "dstab", refresh: bool = False, progress=None, root=None, **settings
) -> tuple[hessian.HessianSpectrum, str]:
    """(spectrum, where it came from: "shipped", "user" or "computed") through the results cache,
    keyed by the probe's checkpoint sha256 and every setting;
    computed results go to `root` (default: the user cache)."""
    params = hessian.hessian_params(probe, engine, **settings)
    sha = probe.describe().get("checkpoint_sha256")
    found = cache.get_or_compute(
        "hessian",
        params,
        [sha] if sha else [],
        lambda: analyse(probe, engine, progress, **settings).to_record(),
        refresh,
        root,
    )
    return hessian.HessianSpectrum.from_record(found.meta, found.arrays), found.source
