"""Resolving the modelling choices into a scenario's frames.

:func:`resolve_choices` fills the request/response split and the per-choice node columns, sets the
node inputs the choices select (electricity price, capacity) and the energy per token under the
energy accounting (:func:`_resolve_energy`), and records the choices in the provenance table.  The
choices themselves are :mod:`tokenflow.scenarios.choices`; how they weigh the links is
:func:`tokenflow.scenarios.scenario_class.link_weights_gb`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..core.errors import ScenarioError
from .choices import CHOICE_DOCS, CHOICES, ENERGY_RAW_COLUMN, RESOLVED_NODE_FIELDS, check_choices
from .payload import split_payload
from .scenario_fields import PROVENANCE_COLUMNS


def _resolve_energy(wl: pd.DataFrame, accounting: str) -> None:
    """Set ``wl.energy_kwh_per_mtok`` (kWh/M tokens) in place from the generated-only figure
    under the ``energy_accounting`` choice ``accounting``."""
    if accounting == "generated_only":
        wl["energy_kwh_per_mtok"] = wl[ENERGY_RAW_COLUMN].astype(float)
    else:
        from .serving import consistent_energy
        wl["energy_kwh_per_mtok"] = consistent_energy(wl[ENERGY_RAW_COLUMN].astype(float))


def resolve_choices(nodes: pd.DataFrame, workloads: pd.DataFrame, provenance: pd.DataFrame,
                    modelling_choices: Mapping[str, str], label: str
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Fill the request/response split (:func:`split_payload`) and the per-choice node
    columns, resolve the node inputs the choices select, and record the choices in the
    provenance table (reindexed to :data:`PROVENANCE_COLUMNS`).  Returns
    ``(workloads, nodes, provenance, choices)``; a choice whose node inputs are missing is a
    :class:`ScenarioError` naming ``label``."""
    choices = {k: v[0] for k, v in CHOICES.items()}
    choices.update(check_choices(dict(modelling_choices), f"{label}: choices"))
    wl = workloads.copy()
    keys = ["payload_bytes_per_token", "request_bytes_per_token", "response_bytes_per_token"]
    present = [k for k in keys if k in wl]
    if present != keys:
        rows, problems = {}, []
        for idx in wl.index:
            given = {k: wl.loc[idx, k] for k in present
                     if not (isinstance(wl.loc[idx, k], float) and math.isnan(wl.loc[idx, k]))}
            try:
                rows[idx] = split_payload(given, f"{label}: workloads.{idx}")
            except ScenarioError as exc:
                problems += exc.problems
        if problems:
            raise ScenarioError(problems)
        for k in keys:
            wl[k] = pd.Series({i: r[k] for i, r in rows.items()}, dtype=float).reindex(wl.index)
    if ENERGY_RAW_COLUMN not in wl:
        wl[ENERGY_RAW_COLUMN] = wl["energy_kwh_per_mtok"].astype(float)
    _resolve_energy(wl, choices["energy_accounting"])
    nodes = nodes.copy()
    problems = []
    for resolved, (name, raw_cols) in RESOLVED_NODE_FIELDS.items():
        default_col = raw_cols[CHOICES[name][0]]
        if default_col not in nodes:
            nodes[default_col] = nodes[resolved].astype(float)
        col = raw_cols[choices[name]]
        values = nodes[col] if col in nodes else pd.Series(np.nan, index=nodes.index)
        missing = [str(n) for n, v in values.items() if not np.isfinite(v)]
        if missing:
            problems.append(f"{label}: choice {name}={choices[name]!r} needs "
                            f"nodes.<id>.{col}, missing for {', '.join(missing)}")
            continue
        nodes[resolved] = values.astype(float)
    if problems:
        raise ScenarioError(problems)
    items = [f"choices.{k}" for k in choices]
    if list(provenance.columns) == PROVENANCE_COLUMNS and len(provenance) >= len(items):
        tail = provenance.iloc[len(provenance) - len(items):]
        if tail["item"].tolist() == items and tail["value"].tolist() == list(choices.values()) \
                and (tail["kind"] == "choice").all() and (provenance["kind"] == "choice").sum() == len(items):
            return wl, nodes, provenance, choices  # already recorded (a copy made by replace)
    prov = provenance.reindex(columns=PROVENANCE_COLUMNS)
    prov["range"] = prov["range"].fillna("")
    prov = prov[prov["kind"] != "choice"]
    rows = [{"item": f"choices.{k}", "value": v, "unit": "", "kind": "choice",
             "reference": ("default: " if v == CHOICES[k][0] else "alternative: ") + CHOICE_DOCS[k][v],
             "range": ""} for k, v in choices.items()]
    prov = pd.concat([prov.astype({"value": object}), pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)],
                     ignore_index=True)
    return wl, nodes, prov, choices
