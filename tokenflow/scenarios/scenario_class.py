"""The :class:`Scenario`: the inputs of one token-flow market, immutable, with the copies that
vary them (:meth:`Scenario.replace`, :meth:`Scenario.with_choices`), and :func:`link_weights_gb`,
the bytes a token of each workload puts on the links under the modelling choices.

Built by the file loader (:func:`tokenflow.scenarios.scenario.load_scenario`) or directly; either
way the choices are resolved (:mod:`tokenflow.scenarios.choice_resolution`) and every check of
:mod:`tokenflow.scenarios.scenario_checks` runs.

Units: electricity $/kWh, capacity MW (IT), demand M tokens/h, energy intensity
kWh (IT) per M tokens, payload bytes/token, latency ms, bandwidth Gbps per
direction, transfer cost $/GB per link crossed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..core.errors import ScenarioError
from .choice_resolution import _resolve_energy, resolve_choices
from .choices import ENERGY_RAW_COLUMN, RESOLVED_NODE_FIELDS, check_choices
from .payload import _resplit_payload, _set_cell
from .scenario_checks import _check_frames, _cross_problems, _value_problems
from .scenario_fields import _BASE_FIELD, _NUMERIC, PARAMETER_FIELDS, value_problem


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
