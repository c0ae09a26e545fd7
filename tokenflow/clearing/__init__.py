"""The market: the persistent engine (Market), the one-shot entry points (solve, ...), results,
alternative optima and statistics over the optimal face.

See ARCHITECTURE.md for the layers and what each may import."""
