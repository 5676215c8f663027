"""A Hessian spectrum by the chosen engine.

The engines: dstab's own (`hessian`), scipy ARPACK on dstab's products (`hessian` with
`hessian_arpack`'s top-k) and PyHessian as the paper used it (`hessian_ref`, which imports
`hessian`'s result type and density). Choosing
between them lives here, above both, so the imports run one way; the results
cache is reached through `dstab.analysis.results.get(HessianSpec(...), ...)`.
"""

from __future__ import annotations

from . import hessian, hessian_ref


def analyse(probe, engine: str = "dstab", progress=None, seconds_per_hvp=None, **settings) -> hessian.HessianSpectrum:
    """The spectrum by the named engine: dstab's own, or PyHessian as the paper used it; `seconds_per_hvp`
    (dstab's engine) spares timing a Hessian-vector product when the caller knows it."""
    if hessian.check_engine(engine) == "pyhessian":
        return hessian_ref.spectrum(probe, progress=progress, **settings)
    return hessian.spectrum(probe, progress=progress, seconds_per_hvp=seconds_per_hvp, engine=engine, **settings)
