"""The fields of a scenario and the rules of their values.

The tables of the numeric inputs per section with their units (:data:`PARAMETER_FIELDS`,
:data:`WORKLOAD_FIELDS`, :data:`NODE_FIELDS`, :data:`OPTIONAL_NODE_FIELDS`, :data:`LINK_FIELDS`), which
may be zero, the keys of a ``{value: ..., source: ...}`` mapping, the columns of the provenance table
(:data:`PROVENANCE_COLUMNS`), and the one rule table of a valid value (:func:`value_problem`) and of
a valid id (:func:`_id_problem`), shared by the file loader, the constructor and
:meth:`~tokenflow.scenarios.scenario_class.Scenario.replace`.

Units: electricity $/kWh, capacity MW (IT), demand M tokens/h, energy intensity
kWh (IT) per M tokens, payload bytes/token, latency ms, bandwidth Gbps per
direction, transfer cost $/GB per link crossed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .choices import RESOLVED_NODE_FIELDS
from .datafiles import YAML11_BOOLS

WORKLOAD_FIELDS = {
    "energy_kwh_per_mtok": "kWh/M tokens",
    "payload_bytes_per_token": "B/token",
    "request_bytes_per_token": "B/token",
    "response_bytes_per_token": "B/token",
    "latency_limit_ms": "ms",
    "demand_mtok_per_h_per_mpeople": "M tokens/h per million people",
}
# Tokens per generated 1024x1024 image (2x2 patches of a 128x128 latent): the one definition,
# used by tools/build_scenarios.py for the image workload's per-token figures.
IMAGE_TOKENS_PER_IMAGE = 4096
PARAMETER_FIELDS = {
    "route_factor": "-",
    "fiber_delay_us_per_km": "us/km",
    "pue": "-",
    "ai_share": "-",
    "other_opex_usd_per_kwh": "$/kWh",
    "transfer_cost_usd_per_gb": "$/GB",
    "link_bandwidth_gbps": "Gbps",
    "reference_payload_bytes_per_token": "B/token",
    "paths_per_pair": "-",
}
NODE_FIELDS = {
    "lat": "deg",
    "lon": "deg",
    "population": "people",
    "electricity_usd_per_kwh": "$/kWh",
    "capacity_mw": "MW",
}
OPTIONAL_NODE_FIELDS = {"pue": "-"}
LINK_FIELDS = {"bandwidth_gbps": "Gbps", "transfer_cost_usd_per_gb": "$/GB"}
# fields that may be zero; all others must be strictly positive
MAY_BE_ZERO = {"capacity_mw", "population", "other_opex_usd_per_kwh", "transfer_cost_usd_per_gb",
               "demand_mtok_per_h_per_mpeople", "demand", "request_bytes_per_token",
               "response_bytes_per_token"}

SIGNED = {"lat", "lon"}
VALUE_KEYS = {"value", "source", "assumption", "note", "unit", "range", "a_priori"}
# raw per-choice node columns -> the field whose rules they follow (NaN allowed: checked when chosen)
_BASE_FIELD = {raw: resolved for resolved, (_, cols) in RESOLVED_NODE_FIELDS.items() for raw in cols.values()}
_NUMERIC = {"workloads": WORKLOAD_FIELDS, "nodes": {**NODE_FIELDS, **OPTIONAL_NODE_FIELDS, **_BASE_FIELD},
            "links": LINK_FIELDS}


def value_problem(fieldname: str, v: Any) -> str | None:
    """Why ``v`` is not a valid value of the input ``fieldname`` (None if it is).

    The one rule table used by the file loader, the constructor and :meth:`Scenario.replace`.
    """
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return f"expected a number, got {v!r}"
    try:
        val = float(v)
    except OverflowError:
        return f"must be a finite number, got an integer of about {int(int(v).bit_length() * math.log10(2)) + 1} digits"
    if not math.isfinite(val):
        return f"must be a finite number, got {v!r}"
    if fieldname == "lat" and not -90 <= val <= 90:
        return f"outside -90..90, got {v!r}"
    if fieldname == "lon" and not -180 <= val <= 180:
        return f"outside -180..180, got {v!r}"
    if fieldname in SIGNED:
        return None
    if val < 0 or (val == 0 and fieldname not in MAY_BE_ZERO):
        return f"must be {'non-negative' if fieldname in MAY_BE_ZERO else 'positive'}, got {v!r}"
    if fieldname == "pue" and val < 1:
        return f"must be at least 1 (PUE = facility power / IT power), got {v!r}"
    if fieldname == "ai_share" and val > 1:
        return f"must be a share in (0, 1], got {v!r}"
    if fieldname == "route_factor" and val < 1:
        return f"must be at least 1 (a fibre route is not shorter than the great circle), got {v!r}"
    if fieldname == "paths_per_pair" and val != int(val):
        return f"must be a whole number >= 1, got {v!r}"
    return None


def _id_problem(v: Any, what: str) -> str | None:
    """Why ``v`` is not usable as an id (node, workload); ids are text."""
    if isinstance(v, str):
        return None if v.strip() else f"{what} must be non-empty text, got {v!r}"
    if isinstance(v, bool):
        return (f"{what} was read as the boolean {v} (YAML 1.1 reads {YAML11_BOOLS} as booleans); "
                "put the id in quotes, e.g. 'no'")
    if isinstance(v, numbers.Number):
        return f"{what} was read as the number {v!r}; ids are text: put it in quotes, e.g. '{v}'"
    return f"{what} must be text, got {v!r}"


PROVENANCE_COLUMNS = ["item", "value", "unit", "kind", "reference", "range", "a_priori"]
