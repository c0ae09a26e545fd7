"""The checks on a built scenario, shared by the file loader, the constructor and
:meth:`~tokenflow.scenarios.scenario_class.Scenario.replace`.

:func:`_check_frames` runs them all: structure (frames, ids, columns, link ends), every value by the
rule table (:func:`_value_problems`, :func:`tokenflow.scenarios.scenario_fields.value_problem`),
cross-field rules (:func:`_cross_problems`) and the modelling choices in force.  Each returns the
list of problems found (empty if none); a scenario is recognised by its attributes, so the loader
can check one before it is built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import ScenarioError
from .choices import CHOICES, check_choices
from .scenario_fields import (
    _BASE_FIELD,
    _NUMERIC,
    LINK_FIELDS,
    NODE_FIELDS,
    PARAMETER_FIELDS,
    PROVENANCE_COLUMNS,
    WORKLOAD_FIELDS,
    _id_problem,
    value_problem,
)


def _value_problems(s: Any, label: str, rows: Mapping[str, set] | None = None) -> list[str]:
    """Every numeric value of the frames by the rule table :func:`value_problem`; only the
    rows named in ``rows`` ({frame: row ids}) when given (a frame not named is skipped)."""
    problems = []
    for section in ("nodes", "workloads", "links"):
        frame = getattr(s, section)
        if rows is not None:
            if section not in rows:
                continue
            cols = [c for c in _NUMERIC[section] if c in frame.columns]
            for idx in (i for i in frame.index if i in rows[section]):
                for col in cols:
                    v = frame.at[idx, col]
                    if isinstance(v, np.generic):
                        v = v.item()
                    if (section == "links" or col == "pue" or col in _BASE_FIELD) and isinstance(v, float) \
                            and math.isnan(v):
                        continue  # as below
                    if (why := value_problem(_BASE_FIELD.get(col, col), v)) is not None:
                        problems.append(f"{label}: {section}.{idx}.{col}: {why}")
            continue
        for col in _NUMERIC[section]:
            if col not in frame.columns:
                continue
            for idx, v in frame[col].items():
                if isinstance(v, np.generic):
                    v = v.item()
                if (section == "links" or col == "pue" or col in _BASE_FIELD) and isinstance(v, float) \
                        and math.isnan(v):
                    continue  # the scenario-wide parameter applies (alternatives: checked when chosen)
                if (why := value_problem(_BASE_FIELD.get(col, col), v)) is not None:
                    problems.append(f"{label}: {section}.{idx}.{col}: {why}")
    return problems


def _cross_problems(s: Any, label: str, rows: Mapping[str, set] | None = None, *,
                    capacity: bool = True) -> list[str]:
    """Cross-field rules: payload = request + response per workload (only the workloads in
    ``rows["workloads"]`` when ``rows`` is given), and (``capacity``) some node with compute
    capacity."""
    problems = []
    wl = s.workloads
    if {"request_bytes_per_token", "response_bytes_per_token", "payload_bytes_per_token"} <= set(wl.columns):
        for idx in wl.index:
            if rows is not None and idx not in rows.get("workloads", ()):
                continue
            total, parts = wl.at[idx, "payload_bytes_per_token"], (
                wl.at[idx, "request_bytes_per_token"] + wl.at[idx, "response_bytes_per_token"])
            if np.isfinite(total) and np.isfinite(parts) and abs(total - parts) > 1e-6 * max(1.0, abs(total)):
                problems.append(f"{label}: workloads.{idx}.payload_bytes_per_token: {total:g} is not "
                                f"request + response = {parts:g} B/token")
    if capacity and not problems and not (s.nodes["capacity_mw"].to_numpy() > 0).any():
        problems.append(f"{label}: nodes: no node has compute capacity")
    return problems


def _check_frames(s: Any, label: str) -> list[str]:
    """Every check on a built scenario, shared by the loader, the constructor and
    :meth:`Scenario.replace`: structure (frames, ids, columns, link ends), every value
    by the rule table :func:`value_problem`, and cross-field checks."""
    problems: list[str] = []
    for what in ("name", "title"):
        if not isinstance(getattr(s, what), str):
            problems.append(f"{label}: {what} must be text, got {getattr(s, what)!r}")
    if not isinstance(s.params, Mapping):
        return problems + [f"{label}: params must be a mapping of parameter name to number"]
    prov = s.provenance
    if not isinstance(prov, pd.DataFrame):
        problems.append(f"{label}: provenance must be a pandas DataFrame, got {type(prov).__name__}")
    elif (missing := [c for c in PROVENANCE_COLUMNS if c not in prov.columns]):
        problems.append(f"{label}: provenance: missing columns {missing}")
    frames = {"nodes": s.nodes, "workloads": s.workloads, "links": s.links}
    required = {"nodes": list(NODE_FIELDS), "workloads": list(WORKLOAD_FIELDS), "links": ["a", "b", *LINK_FIELDS]}
    for section, frame in frames.items():
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"{label}: {section} must be a pandas DataFrame, got {type(frame).__name__}")
            continue
        missing = [c for c in required[section] if c not in frame.columns]
        if missing:
            problems.append(f"{label}: {section}: missing columns {missing}")
        if frame.index.has_duplicates:
            dup = sorted({str(i) for i in frame.index[frame.index.duplicated()]})
            problems.append(f"{label}: {section}: duplicate ids {dup}")
        for idx in frame.index:
            if (why := _id_problem(idx, f"{section[:-1]} id")) is not None:
                problems.append(f"{label}: {section}: {why}")
    if problems:
        return problems
    if len(s.nodes) == 0 or len(s.workloads) == 0:
        problems.append(f"{label}: needs at least one node and one workload")
    problems += _value_problems(s, label)
    for k in PARAMETER_FIELDS:
        if k not in s.params:
            problems.append(f"{label}: parameters.{k}: missing")
    for k, v in s.params.items():
        if k not in PARAMETER_FIELDS:
            problems.append(f"{label}: parameters.{k}: unknown parameter")
        elif (why := value_problem(k, v)) is not None:
            problems.append(f"{label}: parameters.{k}: {why}")
    nodes = set(s.nodes.index)
    for lid, a, b in zip(s.links.index, s.links["a"], s.links["b"]):
        for end in (a, b):
            if end not in nodes:
                problems.append(f"{label}: links.{lid}: unknown node {end!r}")
        if a == b:
            problems.append(f"{label}: links.{lid}: link joins node {a!r} to itself")
    if s.demand_override is not None:
        d = s.demand_override
        if not isinstance(d, pd.DataFrame):
            problems.append(f"{label}: demand_override must be a DataFrame (node x workload)")
        else:
            for idx in d.index:
                if idx not in nodes:
                    problems.append(f"{label}: demand: unknown node {idx!r}")
            for col in d.columns:
                if col not in set(s.workloads.index):
                    problems.append(f"{label}: demand: unknown workload {col!r}")
                    continue
                for idx, v in d[col].items():
                    v = v.item() if isinstance(v, np.generic) else v
                    if isinstance(v, float) and math.isnan(v):
                        continue  # the population-based demand applies
                    if (why := value_problem("demand", v)) is not None:
                        problems.append(f"{label}: demand.{idx}.{col}: {why}")
    problems += _cross_problems(s, label, capacity=not problems)
    if not problems:  # a built scenario has every choice resolved
        mc = s.modelling_choices
        if not isinstance(mc, Mapping) or set(mc) != set(CHOICES):
            problems.append(f"{label}: modelling_choices must name every choice {sorted(CHOICES)} "
                            f"(unresolved), got {sorted(mc) if isinstance(mc, Mapping) else mc!r}")
        else:
            try:
                check_choices(dict(mc), f"{label}: choices")
            except ScenarioError as exc:
                problems += exc.problems
    return problems
