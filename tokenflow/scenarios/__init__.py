"""Data layer: scenario files (parse, validate, choices, resolution), the network and backbones,
request traces, serving measurements and values of lost load as data, synthetic networks.
Knows no model: imports only tokenflow.core.

See ARCHITECTURE.md for the layers and what each may import."""
