"""Long-run questions on top of the market: value of upgrades, the planning LP, clearing
against bids and offers.  Independent of tokenflow.latency.

See ARCHITECTURE.md for the layers and what each may import."""
