"""Scenario files: load, validate, and hold the inputs of one market.

A scenario is one YAML file (or a folder holding ``scenario.yaml``) with the
sections ``parameters``, ``workloads``, ``nodes`` and ``links``.  Every numeric
input is either a bare number or a mapping ``{value: ..., source: URL}`` /
``{value: ..., assumption: reason}``; the provenance table keeps which.
Loading reports *all* problems at once, each naming the file and the field.

Units: electricity $/kWh, capacity MW (IT), demand M tokens/h, energy intensity
kWh (IT) per M tokens, payload bytes/token, latency ms, bandwidth Gbps per
direction, transfer cost $/GB per link crossed.

The modelling choices (names, allowed values, the node columns they select) are in
:mod:`tokenflow.scenarios.choices`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..core.errors import ScenarioError
from .choice_resolution import _resolve_energy, resolve_choices  # noqa: F401
from .choices import (  # noqa: F401  (re-exported: callers import them from here)
    ALTERNATIVE_NODE_FIELDS,
    CHOICE_DOCS,
    CHOICES,
    ENERGY_RAW_COLUMN,
    RESOLVED_NODE_FIELDS,
    check_choices,
)
from .datafiles import (  # noqa: F401  (the limits re-exported: the scenario loader's rules)
    MAX_FILE_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_VALUES,
    YAML11_BOOLS,
    parse_yaml,
    read_text_file,
)
from .payload import PAYLOAD_SPLIT_TOL, _resplit_payload, _set_cell, split_payload  # noqa: F401
from .scenario_checks import _check_frames, _cross_problems, _value_problems
from .scenario_fields import (  # noqa: F401  (re-exported: callers import them from here)
    _BASE_FIELD,
    _NUMERIC,
    IMAGE_TOKENS_PER_IMAGE,
    LINK_FIELDS,
    MAY_BE_ZERO,
    NODE_FIELDS,
    OPTIONAL_NODE_FIELDS,
    PARAMETER_FIELDS,
    PROVENANCE_COLUMNS,
    SIGNED,
    VALUE_KEYS,
    WORKLOAD_FIELDS,
    _id_problem,
    value_problem,
)


@dataclass(frozen=True)
class Scenario:
    """Inputs of one token-flow market (immutable; use :meth:`replace` to vary them).

    ``nodes`` (index ``node``), ``workloads`` (index ``workload``) and ``links``
    (index ``link``, undirected, columns ``a``, ``b``) are DataFrames in the
    units of the module docstring; ``params`` holds the scenario-wide numbers.
    ``demand_override`` (node x workload, M tokens/h at scale 1) replaces the
    population-based demand where given.
    """

    name: str
    title: str
    nodes: pd.DataFrame
    workloads: pd.DataFrame
    links: pd.DataFrame
    params: dict[str, float]
    provenance: pd.DataFrame = field(repr=False)
    demand_override: pd.DataFrame | None = field(default=None, repr=False)
    modelling_choices: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Resolve the modelling choices, then validate exactly as the file loader does.
        Either every check passes and the choices are resolved, or :class:`ScenarioError`."""
        label = f"scenario {self.name!r}"
        if all(isinstance(getattr(self, f), pd.DataFrame) for f in ("nodes", "workloads", "provenance")):
            try:
                wl, nodes, prov, choices = resolve_choices(self.nodes, self.workloads, self.provenance,
                                                           self.modelling_choices, label)
            except ScenarioError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # structural problems (missing columns, wrong types): report them, never a half-built object
                raise ScenarioError(_check_frames(self, label)
                                    or [f"{label}: cannot resolve the modelling choices: {exc!r}"]) from None
            object.__setattr__(self, "workloads", wl)
            object.__setattr__(self, "nodes", nodes)
            object.__setattr__(self, "provenance", prov)
            object.__setattr__(self, "modelling_choices", choices)
        problems = _check_frames(self, label)
        if problems:
            raise ScenarioError(problems)

    @property
    def choices(self) -> dict[str, str]:
        """The modelling choices in force, every name of :data:`CHOICES` (defaults filled in)."""
        return dict(self.modelling_choices)

    def with_choices(self, **choices: str) -> Scenario:
        """A copy with some modelling choices changed, e.g. ``with_choices(payload_direction="both")``.
        A bad name or value raises :class:`ScenarioError` listing the allowed ones."""
        check_choices(choices)
        return dataclasses.replace(self, modelling_choices={**self.modelling_choices, **choices})

    @property
    def node_ids(self) -> list[str]:
        return list(self.nodes.index)

    @property
    def workload_ids(self) -> list[str]:
        return list(self.workloads.index)

    @property
    def demand(self) -> xr.DataArray:
        """Base demand D[node, workload] at demand scale 1, M tokens/h."""
        rate = self.workloads["demand_mtok_per_h_per_mpeople"]
        pop = self.nodes["population"] / 1e6
        d = pd.DataFrame(np.outer(pop, rate), index=self.nodes.index, columns=self.workloads.index)
        if self.demand_override is not None:
            d = self.demand_override.reindex(index=d.index, columns=d.columns).fillna(d)
        da = xr.DataArray(d.values.astype(float), coords={"node": d.index, "workload": d.columns},
                          dims=("node", "workload"), name="demand")
        da.attrs["unit"] = "M tokens/h"
        return da

    @property
    def compute_capacity_kw(self) -> pd.Series:
        """AI compute capacity per node, kW of IT power (capacity_mw x ai_share x 1000)."""
        return self.nodes["capacity_mw"] * self.params["ai_share"] * 1000.0

    @property
    def link_bandwidth_gbps(self) -> pd.Series:
        """Capacity of each fibre link per direction, Gbps (link value or the parameter)."""
        return self.links["bandwidth_gbps"].astype(float).fillna(self.params["link_bandwidth_gbps"])

    @property
    def link_transfer_cost(self) -> pd.Series:
        """Transfer cost of each fibre link, $/GB (link value or the parameter)."""
        return self.links["transfer_cost_usd_per_gb"].astype(float).fillna(
            self.params["transfer_cost_usd_per_gb"])

    @property
    def node_pue(self) -> pd.Series:
        pue = self.nodes["pue"] if "pue" in self.nodes else pd.Series(np.nan, index=self.nodes.index)
        return pue.fillna(self.params["pue"])

    def replace(self, *, params: dict[str, float] | None = None, workloads: dict[str, dict[str, float]] | None = None,
                nodes: dict[str, dict[str, float]] | None = None,
                links: dict[str, dict[str, float]] | None = None,
                demand: dict[str, dict[str, float]] | None = None) -> Scenario:
        """A copy with some inputs changed, e.g. ``replace(params={"ai_share": 0.2})``,
        ``replace(workloads={"image": {"payload_bytes_per_token": 500}})``,
        ``replace(demand={"dallas": {"chat": 1200.0}})`` (base demand, M tokens/h).
        Every value goes through the same checks as the file loader; all problems are
        reported at once as a :class:`ScenarioError`."""
        problems: list[str] = []
        for argname, arg in (("params", params), ("workloads", workloads), ("nodes", nodes),
                             ("links", links), ("demand", demand)):
            if arg is not None and not isinstance(arg, Mapping):
                problems.append(f"replace: {argname} must be a mapping, got {type(arg).__name__}")
        if problems:
            raise ScenarioError(problems)
        new_params = dict(self.params)
        for k, v in (params or {}).items():
            if k not in PARAMETER_FIELDS:
                problems.append(f"replace: unknown parameter {k!r}")
            elif (why := value_problem(k, v)) is not None:
                problems.append(f"replace: parameters.{k}: {why}")
            else:
                new_params[k] = float(v)
        frames = {}
        # number-only changes to existing, resolved columns need no new choice resolution nor a
        # re-check of what did not change (see _replace_numbers); anything else takes the full path
        numbers_only = True
        for label, frame, changes in [("workloads", self.workloads, workloads),
                                      ("nodes", self.nodes, nodes), ("links", self.links, links)]:
            if not changes:
                continue
            frame = frame.copy()
            for row, cols in (changes or {}).items():
                if row not in frame.index:
                    problems.append(f"replace: unknown {label[:-1]} {row!r}")
                    continue
                if not isinstance(cols, Mapping):
                    problems.append(f"replace: {label}.{row} must be a mapping of field to value, got {cols!r}")
                    continue
                for col, v in cols.items():
                    if col not in frame.columns or col in _BASE_FIELD or \
                            (label == "nodes" and col in ("name", "state")):
                        numbers_only = False
                    if col in ("name", "state") and label == "nodes":
                        if not isinstance(v, str):
                            problems.append(f"replace: nodes.{row}.{col}: must be text, got {v!r}")
                        else:
                            _set_cell(frame, row, col, v)
                        continue
                    if col not in _NUMERIC[label] or (col not in frame.columns and col != "pue"):
                        problems.append(f"replace: unknown {label[:-1]} field {col!r}")
                    elif (why := value_problem(_BASE_FIELD.get(col, col), v)) is not None:
                        problems.append(f"replace: {label}.{row}.{col}: {why}")
                    else:
                        _set_cell(frame, row, col, float(v))
                        if label == "nodes" and col in RESOLVED_NODE_FIELDS:
                            # the value in force is the one of the current choice
                            name, raw_cols = RESOLVED_NODE_FIELDS[col]
                            _set_cell(frame, row, raw_cols[self.choices[name]], float(v))
                        if label == "workloads" and col == "energy_kwh_per_mtok" and ENERGY_RAW_COLUMN in frame:
                            _set_cell(frame, row, ENERGY_RAW_COLUMN, float(v))  # the decode figure (see CHOICE_DOCS)
                if label == "workloads" and isinstance(cols, Mapping):
                    try:
                        _resplit_payload(frame, row, cols, f"replace: workloads.{row}")
                    except ScenarioError as exc:
                        problems += exc.problems
            frames[label] = frame
        # only the cells given are fixed; the others stay population x rate (NaN = not overridden),
        # so a later change of population or demand rate still moves them
        override = None
        if demand:  # the override table is built only when demand changes (replace() is called per draw)
            override = pd.DataFrame(np.nan, index=pd.Index(self.node_ids, name="node"),
                                    columns=pd.Index(self.workload_ids, name="workload"))
            if self.demand_override is not None:
                override = self.demand_override.reindex(index=override.index,
                                                        columns=override.columns).astype(float)
        for node, cols in (demand or {}).items():
            if not isinstance(cols, Mapping):
                problems.append(f"replace: demand.{node} must be a mapping of workload to M tokens/h, got {cols!r}")
                continue
            for wk, v in cols.items():
                if node not in override.index or wk not in override.columns:
                    problems.append(f"replace: unknown demand entry {node!r}/{wk!r}")
                elif (why := value_problem("demand", v)) is not None:
                    problems.append(f"replace: demand.{node}.{wk}: {why}")
                else:
                    override.loc[node, wk] = float(v)
        if problems:
            raise ScenarioError(problems)
        new_override = override if demand else self.demand_override
        if numbers_only:
            return self._replace_numbers(new_params, frames, new_override,
                                         {label: {r: set(cols) for r, cols in ch.items()}
                                          for label, ch in (("workloads", workloads), ("nodes", nodes),
                                                            ("links", links)) if ch})
        return dataclasses.replace(self, params=new_params, **frames, demand_override=new_override)

    def _replace_numbers(self, params: dict[str, float], frames: dict[str, pd.DataFrame],
                         demand_override: pd.DataFrame | None, rows: dict[str, set]) -> Scenario:
        """The copy :meth:`replace` returns when only numbers of existing resolved columns
        changed (every changed value already passed :func:`value_problem`): the same object
        the constructor would build, without resolving the choices of unchanged frames again.
        Re-checks every value of each changed row (derived ones included: payload split,
        energy under the chosen accounting) and the cross-field rules; ``rows`` is
        {frame: {row: changed fields}}."""
        label = f"scenario {self.name!r}"
        if any("energy_kwh_per_mtok" in cols for cols in rows.get("workloads", {}).values()):
            _resolve_energy(frames["workloads"], self.modelling_choices["energy_accounting"])
        new = object.__new__(Scenario)
        for f in dataclasses.fields(self):
            object.__setattr__(new, f.name, getattr(self, f.name))
        for name, value in (("params", params), ("demand_override", demand_override), *frames.items()):
            object.__setattr__(new, name, value)
        problems = _value_problems(new, label, rows) + _cross_problems(new, label, rows)
        if problems:
            raise ScenarioError(problems)
        return new

    def provenance_table(self) -> pd.DataFrame:
        """Every input with its value, unit and its source URL or assumption; the modelling
        choices in force are rows of kind ``"choice"``."""
        return self.provenance.copy()


def link_weights_gb(s: Scenario, transfer_aware: bool) -> tuple[np.ndarray, np.ndarray]:
    """GB per M tokens (= B/token / 1000) counted on links, per workload in scenario order:
    ``(forward, reverse)``, on the arcs of a route origin -> processing node (forward) and on
    the opposite directed arcs of the same route (reverse).

    * transfer-aware, ``payload_direction="request"``: forward = request + response, reverse = 0;
    * transfer-aware, ``"both"``: forward = request, reverse = response;
    * token-equivalent baseline: forward = the baseline's bytes per token for every workload
      (``baseline_payload="text_token"``: ``reference_payload_bytes_per_token``;
      ``"mean_payload"``: demand-weighted mean of request + response), reverse = 0.  The
      baseline counts tokens, not directions, so ``payload_direction`` does not change it.
    """
    wl = s.workloads
    K = len(wl)
    req = wl["request_bytes_per_token"].to_numpy(dtype=float) / 1000.0
    resp = wl["response_bytes_per_token"].to_numpy(dtype=float) / 1000.0
    if transfer_aware:
        if s.choices["payload_direction"] == "both":
            return req, resp
        return req + resp, np.zeros(K)
    if s.choices["baseline_payload"] == "mean_payload":
        w = s.demand.sum("node").to_numpy()
        total = req + resp
        b = float((w * total).sum() / w.sum()) if w.sum() > 0 else float(total.mean())
    else:
        b = s.params["reference_payload_bytes_per_token"] / 1000.0
    return np.full(K, b), np.zeros(K)


# --------------------------------------------------------------------------- loading

def available_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    files = resources.files("tokenflow") / "data"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load ``"us5"``, ``"us20"`` or a YAML file / folder holding ``scenario.yaml``.

    Raises :class:`ScenarioError` listing every problem (file and field) found.
    """
    text, label = _read_source(name_or_path)
    doc, problems = parse_yaml(text, label)
    scenario, more = _parse(doc, label)
    problems += more
    if problems or scenario is None:
        raise ScenarioError(problems)
    return scenario


def _read_source(name_or_path: str | Path) -> tuple[str, str]:
    if isinstance(name_or_path, Scenario):
        raise ScenarioError("load_scenario: got a Scenario object; it is loaded already")
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise ScenarioError(f"load_scenario: expected a scenario name ({', '.join(available_scenarios())}) "
                            f"or a path to a YAML file, got {name_or_path!r}")
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in available_scenarios():
        res = resources.files("tokenflow") / "data" / f"{name_or_path}.yaml"
        return res.read_text(encoding="utf-8"), f"{name_or_path}.yaml"
    if path.is_dir():
        path = path / "scenario.yaml"
    if not path.exists():
        if path.suffix in {".yaml", ".yml"} or len(path.parts) > 1:
            raise ScenarioError(f"scenario file not found: {path}")
        raise ScenarioError(
            f"unknown scenario {str(name_or_path)!r}: packaged scenarios are "
            f"{', '.join(available_scenarios())}, or give a path to a YAML file"
        )
    return read_text_file(path), str(path)


def _finite(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _number(raw: Any, where: str, problems: list[str], prov: list[dict], unit: str, fieldname: str) -> float:
    """Parse a bare number or ``{value, source|assumption}``; record provenance."""
    kind, ref, rng, a_priori = "unsourced", "", None, math.nan
    if isinstance(raw, dict):
        if "a_priori" in raw:  # value before calibration (calibrated inputs only)
            ap = raw["a_priori"]
            if isinstance(ap, bool) or not isinstance(ap, (int, float)) or not math.isfinite(ap):
                problems.append(f"{where}.a_priori: expected a finite number, got {ap!r}")
            else:
                a_priori = float(ap)
        if "value" not in raw:
            problems.append(f"{where}: mapping has no 'value'")
            return math.nan
        for key in raw:
            if key not in VALUE_KEYS:
                problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(VALUE_KEYS))})")
        for key in ("source", "assumption", "note", "unit"):
            if key in raw and not isinstance(raw[key], (str, int, float)):
                problems.append(f"{where}.{key}: must be text, got a {type(raw[key]).__name__}")
                return math.nan
        if "source" in raw:
            kind, ref = "source", str(raw["source"])
        elif "assumption" in raw:
            kind, ref = "assumption", str(raw["assumption"])
        if raw.get("note"):
            ref = f"{ref} ({raw['note']})" if ref else str(raw["note"])
        rng = raw.get("range")
        if rng is not None and not (isinstance(rng, list) and len(rng) == 2 and all(map(_finite, rng))
                                    and rng[0] <= rng[1]):
            problems.append(f"{where}.range: must be [low, high], two numbers with low <= high, got {rng!r}")
            rng = None
        raw = raw["value"]
    why = value_problem(fieldname, raw)
    if why is not None:
        problems.append(f"{where}: {why}")
        if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
            return math.nan
    try:
        val = float(raw)
    except OverflowError:
        return math.nan
    prov.append({"item": where.split(": ", 1)[-1], "value": val, "unit": unit, "kind": kind,
                 "reference": ref, "range": "" if rng is None else f"{rng[0]} - {rng[1]}",
                 "a_priori": a_priori})
    return val


def _parse(doc: Any, label: str) -> tuple[Scenario | None, list[str]]:
    problems: list[str] = []
    prov: list[dict] = []
    if not isinstance(doc, dict):
        return None, [f"{label}: top level must be a mapping with parameters, workloads, nodes, links"]
    for section in ("parameters", "workloads", "nodes", "links"):
        if section not in doc:
            problems.append(f"{label}: missing section '{section}'")
    known = {"name", "title", "description", "parameters", "workloads", "nodes", "links", "links_note",
             "choices"}
    for key in doc:
        if key not in known:
            problems.append(f"{label}: unknown section {key!r}")
    for key in ("name", "title", "description", "links_note"):
        if key in doc and not isinstance(doc[key], str):
            problems.append(f"{label}: {key}: must be text, got a {type(doc[key]).__name__}")
    if problems:
        return None, problems

    params: dict[str, float] = {}
    praw = doc["parameters"] or {}
    if not isinstance(praw, dict):
        return None, [f"{label}: parameters must be a mapping"]
    for key in praw:
        if key not in PARAMETER_FIELDS:
            problems.append(f"{label}: parameters.{key}: unknown parameter")
    for key, unit in PARAMETER_FIELDS.items():
        if key not in praw:
            problems.append(f"{label}: parameters.{key}: missing")
            continue
        params[key] = _number(praw[key], f"{label}: parameters.{key}", problems, prov, unit, key)

    wl_rows = {}
    wraw = doc["workloads"] or {}
    if not isinstance(wraw, dict) or not wraw:
        problems.append(f"{label}: workloads must be a non-empty mapping of workload id to fields")
        wraw = {}
    for wid, fields in wraw.items():
        if not isinstance(fields, dict):
            problems.append(f"{label}: workloads.{wid}: must be a mapping")
            continue
        row = {}
        for key in fields:
            if key not in WORKLOAD_FIELDS:
                problems.append(f"{label}: workloads.{wid}.{key}: unknown field")
        split = {"request_bytes_per_token", "response_bytes_per_token"}
        payload_keys = {"payload_bytes_per_token", *split}
        given = payload_keys & set(fields)
        for key, unit in WORKLOAD_FIELDS.items():
            if key in payload_keys and key not in fields and (
                    "payload_bytes_per_token" in given or split <= given):
                continue  # derived from the others below (split_payload)
            if key not in fields:
                what = "no latency limit" if key == "latency_limit_ms" else "missing"
                problems.append(f"{label}: workloads.{wid}.{key}: {what}")
                row[key] = math.nan
                continue
            row[key] = _number(fields[key], f"{label}: workloads.{wid}.{key}", problems, prov, unit, key)
        if "payload_bytes_per_token" in given or split <= given:
            try:
                row.update(split_payload({k: row[k] for k in given}, f"{label}: workloads.{wid}"))
            except ScenarioError as exc:
                problems += exc.problems
        wl_rows[str(wid)] = row

    node_rows, overrides = {}, {}
    nraw = doc["nodes"] or {}
    if not isinstance(nraw, dict) or not nraw:
        problems.append(f"{label}: nodes must be a non-empty mapping of node id to fields")
        nraw = {}
    for nid, fields in nraw.items():
        if not isinstance(fields, dict):
            problems.append(f"{label}: nodes.{nid}: must be a mapping")
            continue
        for key in ("name", "state"):
            if key in fields and not isinstance(fields[key], str):
                problems.append(f"{label}: nodes.{nid}.{key}: must be text, got {fields[key]!r}")
        row: dict[str, Any] = {"name": str(fields.get("name", nid)), "state": str(fields.get("state", ""))}
        allowed = {"name", "state", "demand_mtok_per_h", *NODE_FIELDS, *OPTIONAL_NODE_FIELDS,
                   *ALTERNATIVE_NODE_FIELDS}
        for key in fields:
            if key not in allowed:
                problems.append(f"{label}: nodes.{nid}.{key}: unknown field")
        for key, unit in NODE_FIELDS.items():
            if key == "population" and "demand_mtok_per_h" in fields and key not in fields:
                row[key] = 0.0
                continue
            if key not in fields:
                problems.append(f"{label}: nodes.{nid}.{key}: missing")
                row[key] = math.nan
                continue
            row[key] = _number(fields[key], f"{label}: nodes.{nid}.{key}", problems, prov, unit, key)
        if "pue" in fields:
            row["pue"] = _number(fields["pue"], f"{label}: nodes.{nid}.pue", problems, prov, "-", "pue")
        for key, (unit, resolved) in ALTERNATIVE_NODE_FIELDS.items():
            if key in fields:
                row[key] = _number(fields[key], f"{label}: nodes.{nid}.{key}", problems, prov, unit, resolved)
        if "demand_mtok_per_h" in fields:
            dm = fields["demand_mtok_per_h"]
            if not isinstance(dm, dict):
                problems.append(f"{label}: nodes.{nid}.demand_mtok_per_h: must map workload to M tokens/h")
            else:
                overrides[str(nid)] = {}
                for wid, v in dm.items():
                    if str(wid) not in wl_rows:
                        problems.append(f"{label}: nodes.{nid}.demand_mtok_per_h.{wid}: unknown workload")
                    overrides[str(nid)][str(wid)] = _number(
                        v, f"{label}: nodes.{nid}.demand_mtok_per_h.{wid}", problems, prov,
                        "M tokens/h", "demand")
        node_rows[str(nid)] = row

    link_rows = {}
    lraw = doc["links"] or []
    if not isinstance(lraw, list):
        problems.append(f"{label}: links must be a list of {{a, b}} entries")
        lraw = []
    for i, item in enumerate(lraw):
        where = f"{label}: links[{i}]"
        if not isinstance(item, dict) or "a" not in item or "b" not in item:
            problems.append(f"{where}: needs fields 'a' and 'b' (node ids)")
            continue
        bad_end = False
        for end in ("a", "b"):
            if (why := _id_problem(item[end], "the node id")) is not None:
                problems.append(f"{where}.{end}: {why}")
                bad_end = True
        if bad_end:
            continue
        a, b = item["a"], item["b"]
        for key in item:
            if key not in {"a", "b", *LINK_FIELDS}:
                problems.append(f"{where}.{key}: unknown field")
        for end in (a, b):
            if end not in node_rows:
                problems.append(f"{where}: unknown node {end!r} (link {a}--{b})")
        if a == b:
            problems.append(f"{where}: link joins node {a!r} to itself")
        lid = "--".join(sorted((a, b)))
        if lid in link_rows:
            problems.append(f"{where}: duplicate link {lid}")
        row = {"a": a, "b": b}
        for key, unit in LINK_FIELDS.items():
            if key in item:
                row[key] = _number(item[key], f"{where}.{key} ({lid})", problems, prov, unit, key)
            else:
                row[key] = math.nan  # scenario-wide parameter applies
        if row["bandwidth_gbps"] == 0:
            problems.remove(f"{where}.bandwidth_gbps ({lid}): must be positive, got {item['bandwidth_gbps']!r}")
            problems.append(f"{where}.bandwidth_gbps ({lid}): zero bandwidth on a link the market "
                            "may use; remove the link instead")
        link_rows[lid] = row

    if not link_rows and len(node_rows) > 1:
        problems.append(f"{label}: links: no links between {len(node_rows)} nodes")
    if link_rows:  # the backbone topology is a chosen input, not data: one provenance row says so
        prov.append({"item": "links", "value": f"{len(link_rows)} links between {len(node_rows)} nodes",
                     "unit": "-", "kind": "assumption",
                     "reference": "backbone topology (which metro pairs have a link; decides which links can "
                                  "saturate): " + str(doc.get("links_note") or "as listed in the file, not sourced"),
                     "range": "", "a_priori": math.nan})
    choices: dict[str, str] = {}
    if doc.get("choices") is not None:
        try:
            choices = check_choices(doc["choices"], f"{label}: choices")
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        return None, problems

    nodes = pd.DataFrame.from_dict(node_rows, orient="index")
    nodes.index.name = "node"
    workloads = pd.DataFrame.from_dict(wl_rows, orient="index")
    workloads.index.name = "workload"
    links = pd.DataFrame.from_dict(link_rows, orient="index",
                                   columns=["a", "b", *LINK_FIELDS]) if link_rows else \
        pd.DataFrame(columns=["a", "b", *LINK_FIELDS])
    links.index.name = "link"
    demand_override = None
    if overrides:
        demand_override = pd.DataFrame.from_dict(overrides, orient="index").reindex(columns=workloads.index)
    fields = dict(
        name=str(doc.get("name", Path(label).stem)), title=str(doc.get("title", doc.get("name", label))),
        nodes=nodes, workloads=workloads, links=links, params=params,
        provenance=pd.DataFrame(prov, columns=PROVENANCE_COLUMNS),
        demand_override=demand_override, modelling_choices=choices,
    )
    # the constructor runs the same checks; run them here first so problems name the file
    resolved = {**fields, "modelling_choices": {**{k: v[0] for k, v in CHOICES.items()}, **choices}}
    problems = _check_frames(types.SimpleNamespace(**resolved), label)
    if not problems:
        try:
            resolve_choices(nodes, workloads, fields["provenance"], choices, label)
        except ScenarioError as exc:
            problems = exc.problems
    if problems:
        return None, problems
    return Scenario(**fields), []
