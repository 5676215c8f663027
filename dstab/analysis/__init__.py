"""Analyses of checkpoints through Probes: loss surfaces, interpolation, Hessian spectra, consistency.

Each analysis receives only a `dstab.probes.Probe` (or two, for interpolation)
and returns a result object with `to_record() -> (meta, arrays)` for the
results cache and `from_record(meta, arrays)` to rebuild it.
"""
