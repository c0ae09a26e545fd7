"""Scenario files: the entry points :func:`load_scenario` and :func:`available_scenarios`, and the
reader and parser of one scenario file.

A scenario is one YAML file (or a folder holding ``scenario.yaml``) with the
sections ``parameters``, ``workloads``, ``nodes`` and ``links``.  Every numeric
input is either a bare number or a mapping ``{value: ..., source: URL}`` /
``{value: ..., assumption: reason}``; the provenance table keeps which.
Loading reports *all* problems at once, each naming the file and the field.

Units: electricity $/kWh, capacity MW (IT), demand M tokens/h, energy intensity
kWh (IT) per M tokens, payload bytes/token, latency ms, bandwidth Gbps per
direction, transfer cost $/GB per link crossed.

The rest of the scenario lives next door: the :class:`Scenario` class and :func:`link_weights_gb`
in :mod:`~tokenflow.scenarios.scenario_class`, the field tables and value rules in
:mod:`~tokenflow.scenarios.scenario_fields`, the modelling choices in
:mod:`~tokenflow.scenarios.choices` and their resolution in :mod:`~tokenflow.scenarios.choice_resolution`,
the payload split in :mod:`~tokenflow.scenarios.payload`, the checks on a built scenario in
:mod:`~tokenflow.scenarios.scenario_checks`.  The public names they define are re-exported here.
"""

from __future__ import annotations

import math
import numbers
import os
import types
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import ScenarioError
from .choice_resolution import resolve_choices
from .choices import (  # noqa: F401  (CHOICE_DOCS, ENERGY_RAW_COLUMN, RESOLVED_NODE_FIELDS re-exported)
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
from .payload import PAYLOAD_SPLIT_TOL, split_payload  # noqa: F401  (PAYLOAD_SPLIT_TOL re-exported)
from .scenario_checks import _check_frames
from .scenario_class import Scenario, link_weights_gb  # noqa: F401  (link_weights_gb re-exported)
from .scenario_fields import (  # noqa: F401  (IMAGE_TOKENS_PER_IMAGE, MAY_BE_ZERO, SIGNED re-exported)
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
