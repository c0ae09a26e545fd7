"""Modelling choices: scenario-level settings where the paper is silent.

:data:`CHOICES` names each choice and its allowed values, the first being the default (today's
behaviour), and :data:`CHOICE_DOCS` says what each value means; :data:`RESOLVED_NODE_FIELDS` and
:data:`ALTERNATIVE_NODE_FIELDS` are the node columns a choice selects, :data:`ENERGY_RAW_COLUMN` the
raw energy column kept next to the resolved one; :func:`check_choices` validates a mapping of
choices.  A YAML file may carry a top-level ``choices:`` mapping;
:meth:`~tokenflow.scenarios.scenario_class.Scenario.with_choices` changes them.  Resolving the
choices into a scenario's frames is :mod:`tokenflow.scenarios.choice_resolution`.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ScenarioError

# name -> allowed values, DEFAULT FIRST (the default is today's behaviour).
CHOICES: dict[str, tuple[str, ...]] = {
    "payload_direction": ("request", "both"),
    "electricity_sector": ("commercial", "industrial"),
    "baseline_payload": ("text_token", "mean_payload"),
    "capacity_measure": ("as_published", "cbre_colocation", "cushman_wakefield"),
    "energy_accounting": ("generated_only", "prefill_and_decode"),
}
CHOICE_DOCS: dict[str, dict[str, str]] = {
    "payload_direction": {
        "request": "every byte of a token (request + response) is charged on the arcs from the "
                   "origin to the processing node (the paper's reading: one flow, one direction)",
        "both": "request bytes on the arcs origin -> processing node, response bytes back on the "
                "opposite directed arcs of the same route (full-duplex links)",
    },
    "electricity_sector": {
        "commercial": "EIA average commercial retail price of the node's state, 2023",
        "industrial": "EIA average industrial retail price of the node's state, 2023 (the closer "
                      "proxy for hyperscale loads, per the reference notes)",
    },
    "baseline_payload": {
        "text_token": "the token-equivalent baseline counts every token as one text token "
                      "(parameters.reference_payload_bytes_per_token) on the forward arcs",
        "mean_payload": "the baseline counts every token at the demand-weighted mean payload "
                        "(request + response) of all workloads, on the forward arcs",
    },
    "capacity_measure": {
        "as_published": "each metro's primary published figure (mostly CBRE colocation inventory, "
                        "otherwise the best other measure), measures mixed across metros",
        "cbre_colocation": "CBRE colocation inventory everywhere; a metro with only a Cushman & "
                           "Wakefield figure is converted with the median C&W/CBRE ratio; other "
                           "figures kept",
        "cushman_wakefield": "Cushman & Wakefield MW in operation (hyperscale + colo) everywhere; a "
                             "metro without one is converted from CBRE (or the other figure) with the "
                             "median C&W/CBRE ratio",
    },
    "energy_accounting": {
        "generated_only": "energy (and compute use) per token is the scenario's figure per generated token, "
                          "from benchmarks with their own prompt mix (the paper's reading)",
        "prefill_and_decode": "energy (and compute use) per generated token = the scenario's figure (decode) + "
                              "prompt tokens per generated token (Azure traces) x prefill energy per prompt "
                              "token (tokenflow/data/serving_measurements.csv, tokenflow.scenarios.serving); workloads "
                              "without a prompt trace (image, batch training) unchanged; a replaced "
                              "energy_kwh_per_mtok sets the decode figure",
    },
}
# the raw (generated-only) energy column kept next to the resolved one
ENERGY_RAW_COLUMN = "energy_kwh_per_mtok_generated_only"
# node fields resolved by a choice: resolved column -> (choice, {value: raw column})
RESOLVED_NODE_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "electricity_usd_per_kwh": ("electricity_sector", {
        v: f"electricity_usd_per_kwh_{v}" for v in CHOICES["electricity_sector"]}),
    "capacity_mw": ("capacity_measure", {v: f"capacity_mw_{v}" for v in CHOICES["capacity_measure"]}),
}
# optional alternative node inputs in a scenario file (the default value is the plain field)
ALTERNATIVE_NODE_FIELDS = {
    raw: ("$/kWh" if resolved.startswith("electricity") else "MW", resolved)
    for resolved, (name, cols) in RESOLVED_NODE_FIELDS.items()
    for value, raw in cols.items() if value != CHOICES[name][0]
}


def check_choices(choices: dict[str, Any], where: str = "choices") -> dict[str, str]:
    """Validate ``choices`` (name -> value); raise :class:`ScenarioError` listing every bad
    name or value together with the allowed ones."""
    if not isinstance(choices, dict):
        raise ScenarioError(f"{where}: must be a mapping of choice name to value; choices are "
                            + "; ".join(f"{k}: {', '.join(v)}" for k, v in CHOICES.items()))
    problems = []
    for k, v in choices.items():
        if k not in CHOICES:
            problems.append(f"{where}: unknown modelling choice {k!r}; choices are "
                            + ", ".join(CHOICES))
        elif not isinstance(v, str) or v not in CHOICES[k]:
            problems.append(f"{where}.{k}: {v!r} is not allowed; allowed values: "
                            + ", ".join(CHOICES[k]) + f" (default {CHOICES[k][0]})")
    if problems:
        raise ScenarioError(problems)
    return {str(k): str(v) for k, v in choices.items()}
