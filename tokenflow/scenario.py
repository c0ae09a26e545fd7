"""Scenario files: load, validate, and hold the inputs of one market.

A scenario is one YAML file (or a folder holding ``scenario.yaml``) with the
sections ``parameters``, ``workloads``, ``nodes`` and ``links``.  Every numeric
input is either a bare number or a mapping ``{value: ..., source: URL}`` /
``{value: ..., assumption: reason}``; the provenance table keeps which.
Loading reports *all* problems at once, each naming the file and the field.

Units: electricity $/kWh, capacity MW (IT), demand M tokens/h, energy intensity
kWh (IT) per M tokens, payload bytes/token, latency ms, bandwidth Gbps per
direction, transfer cost $/GB per link crossed.

Modelling choices (:data:`CHOICES`) are scenario-level settings where the paper is
silent; the first value of each is the default (today's behaviour).  A YAML file may
carry a top-level ``choices:`` mapping; :meth:`Scenario.with_choices` changes them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from .errors import ScenarioError

WORKLOAD_FIELDS = {
    "energy_kwh_per_mtok": "kWh/M tokens",
    "payload_bytes_per_token": "B/token",
    "request_bytes_per_token": "B/token",
    "response_bytes_per_token": "B/token",
    "latency_limit_ms": "ms",
    "demand_mtok_per_h_per_mpeople": "M tokens/h per million people",
}
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

# --------------------------------------------------------------------------- modelling choices
# name -> allowed values, DEFAULT FIRST (the default is today's behaviour).
CHOICES: dict[str, tuple[str, ...]] = {
    "payload_direction": ("request", "both"),
    "electricity_sector": ("commercial", "industrial"),
    "baseline_payload": ("text_token", "mean_payload"),
    "capacity_measure": ("as_published", "cbre_colocation", "cushman_wakefield"),
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
}
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
SIGNED = {"lat", "lon"}


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
        """Fill the request/response split and the per-choice node columns, resolve the
        node inputs the choices select, and record the choices in the provenance table."""
        choices = {k: v[0] for k, v in CHOICES.items()}
        choices.update(check_choices(dict(self.modelling_choices)))
        wl = self.workloads.copy()
        if "request_bytes_per_token" not in wl:
            wl["request_bytes_per_token"] = wl["payload_bytes_per_token"].astype(float)
        if "response_bytes_per_token" not in wl:
            wl["response_bytes_per_token"] = 0.0
        if "payload_bytes_per_token" not in wl:
            wl["payload_bytes_per_token"] = wl["request_bytes_per_token"] + wl["response_bytes_per_token"]
        nodes = self.nodes.copy()
        problems = []
        for resolved, (name, raw_cols) in RESOLVED_NODE_FIELDS.items():
            default_col = raw_cols[CHOICES[name][0]]
            if default_col not in nodes:
                nodes[default_col] = nodes[resolved].astype(float)
            col = raw_cols[choices[name]]
            values = nodes[col] if col in nodes else pd.Series(np.nan, index=nodes.index)
            missing = [str(n) for n, v in values.items() if not np.isfinite(v)]
            if missing:
                problems.append(f"scenario {self.name!r}: choice {name}={choices[name]!r} needs "
                                f"nodes.<id>.{col}, missing for {', '.join(missing)}")
                continue
            nodes[resolved] = values.astype(float)
        if problems:
            raise ScenarioError(problems)
        prov = self.provenance
        prov = prov[prov["kind"] != "choice"] if "kind" in prov else prov
        rows = [{"item": f"choices.{k}", "value": v, "unit": "", "kind": "choice",
                 "reference": ("default: " if v == CHOICES[k][0] else "alternative: ") + CHOICE_DOCS[k][v],
                 "range": ""} for k, v in choices.items()]
        prov = pd.concat([prov.astype({"value": object}), pd.DataFrame(rows, columns=prov.columns)],
                         ignore_index=True)
        object.__setattr__(self, "workloads", wl)
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "provenance", prov)
        object.__setattr__(self, "modelling_choices", choices)

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
        The changed scenario is validated again."""
        new_params = dict(self.params)
        for k, v in (params or {}).items():
            if k not in PARAMETER_FIELDS:
                raise ScenarioError(f"replace: unknown parameter {k!r}")
            new_params[k] = float(v)
        frames = {}
        for label, frame, changes in [("workloads", self.workloads, workloads),
                                      ("nodes", self.nodes, nodes), ("links", self.links, links)]:
            frame = frame.copy()
            for row, cols in (changes or {}).items():
                if row not in frame.index:
                    raise ScenarioError(f"replace: unknown {label[:-1]} {row!r}")
                for col, v in cols.items():
                    if col not in frame.columns and not (label == "nodes" and col == "pue"):
                        raise ScenarioError(f"replace: unknown {label[:-1]} field {col!r}")
                    frame.loc[row, col] = v
                    if label == "nodes" and col in RESOLVED_NODE_FIELDS:
                        # the value in force is the one of the current choice
                        name, raw_cols = RESOLVED_NODE_FIELDS[col]
                        frame.loc[row, raw_cols[self.choices[name]]] = v
                if label == "workloads":
                    _resplit_payload(frame, row, cols)
            frames[label] = frame
        override = self.demand.to_pandas()
        for node, cols in (demand or {}).items():
            for wk, v in cols.items():
                if node not in override.index or wk not in override.columns:
                    raise ScenarioError(f"replace: unknown demand entry {node!r}/{wk!r}")
                if not np.isfinite(v) or v < 0:
                    raise ScenarioError(f"replace: demand {node}/{wk} must be finite and >= 0, got {v!r}")
                override.loc[node, wk] = float(v)
        new = dataclasses.replace(self, params=new_params, **frames,
                                  demand_override=override if demand else self.demand_override)
        problems = _check_frames(new, f"<{self.name} modified>")
        if problems:
            raise ScenarioError(problems)
        return new

    def provenance_table(self) -> pd.DataFrame:
        """Every input with its value, unit and its source URL or assumption; the modelling
        choices in force are rows of kind ``"choice"``."""
        return self.provenance.copy()


def _resplit_payload(frame: pd.DataFrame, row: str, cols: dict[str, Any]) -> None:
    """Keep payload = request + response after a change of one workload's fields: a new
    total scales both parts (the split is kept); a new part sets the total."""
    parts = {"request_bytes_per_token", "response_bytes_per_token"}
    if parts & set(cols):
        frame.loc[row, "payload_bytes_per_token"] = (frame.loc[row, "request_bytes_per_token"]
                                                     + frame.loc[row, "response_bytes_per_token"])
    elif "payload_bytes_per_token" in cols:
        total = float(frame.loc[row, "payload_bytes_per_token"])
        old = float(frame.loc[row, "request_bytes_per_token"] + frame.loc[row, "response_bytes_per_token"])
        share = float(frame.loc[row, "request_bytes_per_token"]) / old if old > 0 else 1.0
        frame.loc[row, "request_bytes_per_token"] = total * share
        frame.loc[row, "response_bytes_per_token"] = total * (1.0 - share)


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

class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys instead of silently overwriting."""

    duplicates: list[str]


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            loader.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def available_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    files = resources.files("tokenflow") / "data"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load ``"us5"``, ``"us20"`` or a YAML file / folder holding ``scenario.yaml``.

    Raises :class:`ScenarioError` listing every problem (file and field) found.
    """
    text, label = _read_source(name_or_path)
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{label}: not valid YAML: {exc}".replace("\n", " ")) from None
    finally:
        loader.dispose()
    problems = [f"{label}: {d}" for d in loader.duplicates]
    scenario, more = _parse(doc, label)
    problems += more
    if problems or scenario is None:
        raise ScenarioError(problems)
    return scenario


def _read_source(name_or_path: str | Path) -> tuple[str, str]:
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
    return path.read_text(encoding="utf-8"), str(path)


def _number(raw: Any, where: str, problems: list[str], prov: list[dict], unit: str,
            fieldname: str, strict_sign: bool = True) -> float:
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
        if "source" in raw:
            kind, ref = "source", str(raw["source"])
        elif "assumption" in raw:
            kind, ref = "assumption", str(raw["assumption"])
        if raw.get("note"):
            ref = f"{ref} ({raw['note']})" if ref else str(raw["note"])
        rng = raw.get("range")
        raw = raw["value"]
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        problems.append(f"{where}: expected a number, got {raw!r}")
        return math.nan
    val = float(raw)
    if not math.isfinite(val):
        problems.append(f"{where}: must be a finite number, got {raw!r}")
    elif fieldname not in SIGNED and strict_sign:
        if val < 0 or (val == 0 and fieldname not in MAY_BE_ZERO):
            need = "non-negative" if fieldname in MAY_BE_ZERO else "positive"
            problems.append(f"{where}: must be {need}, got {raw!r}")
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
        for key, unit in WORKLOAD_FIELDS.items():
            if key in split and key not in fields and "payload_bytes_per_token" in fields:
                continue  # only a total given: all of it is request (the default direction)
            if key == "payload_bytes_per_token" and key not in fields and split <= set(fields):
                continue  # the total is request + response
            if key not in fields:
                what = "no latency limit" if key == "latency_limit_ms" else "missing"
                problems.append(f"{label}: workloads.{wid}.{key}: {what}")
                row[key] = math.nan
                continue
            row[key] = _number(fields[key], f"{label}: workloads.{wid}.{key}", problems, prov, unit, key)
        if "payload_bytes_per_token" not in row:
            row["payload_bytes_per_token"] = row["request_bytes_per_token"] + row["response_bytes_per_token"]
        if "request_bytes_per_token" not in row:
            row["request_bytes_per_token"], row["response_bytes_per_token"] = row["payload_bytes_per_token"], 0.0
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
        if row.get("lat") is not None and not (-90 <= row.get("lat", 0) <= 90):
            problems.append(f"{label}: nodes.{nid}.lat: outside -90..90")
        if row.get("lon") is not None and not (-180 <= row.get("lon", 0) <= 180):
            problems.append(f"{label}: nodes.{nid}.lon: outside -180..180")
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
        a, b = str(item["a"]), str(item["b"])
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
            problems[-1] = (f"{where}.bandwidth_gbps ({lid}): zero bandwidth on a link the market "
                            "may use; remove the link instead")
        link_rows[lid] = row

    if not link_rows and len(node_rows) > 1:
        problems.append(f"{label}: links: no links between {len(node_rows)} nodes")
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
    scen = Scenario(
        name=str(doc.get("name", Path(label).stem)), title=str(doc.get("title", doc.get("name", label))),
        nodes=nodes, workloads=workloads, links=links, params=params,
        provenance=pd.DataFrame(prov, columns=["item", "value", "unit", "kind", "reference", "range", "a_priori"]),
        demand_override=demand_override, modelling_choices=choices,
    )
    return scen, _check_frames(scen, label)


def _check_frames(s: Scenario, label: str) -> list[str]:
    """Cross-field checks shared by loading and :meth:`Scenario.replace`."""
    problems = []
    num_checks = [("nodes", s.nodes, list(NODE_FIELDS)), ("workloads", s.workloads, list(WORKLOAD_FIELDS)),
                  ("links", s.links, list(LINK_FIELDS))]
    for section, frame, cols in num_checks:
        for col in cols:
            if col not in frame:
                continue
            for idx, v in frame[col].items():
                if section == "links" and np.isnan(v):
                    continue  # the scenario-wide parameter applies
                if not np.isfinite(v) or (col not in SIGNED and v < 0):
                    problems.append(f"{label}: {section}.{idx}.{col}: invalid value {v!r}")
                elif col not in SIGNED and col not in MAY_BE_ZERO and v == 0:
                    problems.append(f"{label}: {section}.{idx}.{col}: must be positive, got 0")
    for k, v in s.params.items():
        if not np.isfinite(v) or v < 0 or (v == 0 and k not in MAY_BE_ZERO):
            problems.append(f"{label}: parameters.{k}: invalid value {v!r}")
    wl = s.workloads
    if {"request_bytes_per_token", "response_bytes_per_token"} <= set(wl.columns):
        for idx in wl.index:
            total, parts = wl.loc[idx, "payload_bytes_per_token"], (
                wl.loc[idx, "request_bytes_per_token"] + wl.loc[idx, "response_bytes_per_token"])
            if np.isfinite(total) and np.isfinite(parts) and abs(total - parts) > 1e-6 * max(1.0, abs(total)):
                problems.append(f"{label}: workloads.{idx}.payload_bytes_per_token: {total:g} is not "
                                f"request + response = {parts:g} B/token")
    k = s.params.get("paths_per_pair", 1)
    if np.isfinite(k) and (k < 1 or k != int(k)):
        problems.append(f"{label}: parameters.paths_per_pair: must be a whole number >= 1")
    if (s.nodes["capacity_mw"] > 0).sum() == 0:
        problems.append(f"{label}: nodes: no node has compute capacity")
    return problems
