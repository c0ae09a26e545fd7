"""Bottom layer: the exception types, output files that appear whole or not at all, argument checks.
Imports nothing else from tokenflow.

See ARCHITECTURE.md for the layers and what each may import."""
