"""Analyses built on the models: the paper's cases and claims, calibration, the consistent unit,
sweeps, identifiability, the citable record.

See ARCHITECTURE.md for the layers and what each may import."""
