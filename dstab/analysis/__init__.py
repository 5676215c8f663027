"""Analyses of Probes: loss surfaces, interpolation curves and their smoothness numbers,
Hessian spectra; and the consistency of groups of generative models (which samples, not probes).

Each analysis receives only a `dstab.probes.Probe` (or two, for interpolation)
and returns a result object with `to_record() -> (meta, arrays)` for the
results cache and `from_record(meta, arrays)` to rebuild it.
"""
