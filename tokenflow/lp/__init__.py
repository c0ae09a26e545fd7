"""The market LP: inputs as arrays, routes and exact pricing, the path and arc formulations,
the live HiGHS instance, the linopy view.

See ARCHITECTURE.md for the layers and what each may import."""
