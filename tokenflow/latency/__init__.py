"""The serving model on top of the market: batching and queueing, the discrete-event check,
latency-consistent clearing.  Independent of tokenflow.planning.

See ARCHITECTURE.md for the layers and what each may import."""
