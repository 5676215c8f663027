"""Analyses of checkpoints through Probes: loss surfaces, interpolation, Hessian spectra, consistency."""
