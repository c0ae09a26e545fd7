"""How a :class:`~tokenflow.clearing.engine.Market` takes changes: the keywords of
:meth:`~tokenflow.clearing.engine.Market.solve` (:data:`CHANGES`), number changes written straight
into the LP's arrays, other changes by rebuilding the inputs, and the check that demand still
reaches compute within its latency limit.  A mixin of ``Market``; the state it changes is the
market's (see ``Market._STATE``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping

import numpy as np

from ..core.errors import ScenarioError
from ..lp.arc import ArcStructure
from ..lp.inputs import (
    GBPS_TO_GB_PER_H,
    build_inputs,
    check_bool,
    check_number,
    check_scenario,
    derived_from_demand,
    per_workload,
)
from ..lp.routes import LAT_TOL, shared_graph
from ..scenarios.scenario_class import Scenario

#: keyword -> what it changes (all persistent); see :meth:`Market.solve`
CHANGES = {
    "demand_scale": "multiplier on base demand",
    "demand": "base demand {node: {workload: M tokens/h}}",
    "electricity_usd_per_kwh": "{node: $/kWh}",
    "capacity_mw": "{node: MW}",
    "other_opex_usd_per_kwh": "$/kWh, every node",
    "link_bandwidth_gbps": "Gbps per direction: one number (every link) or {link: Gbps}",
    "transfer_cost_usd_per_gb": "$/GB: one number (every link) or {link: $/GB}",
    "latency_limits_ms": "{workload: ms} (merged with earlier overrides)",
    "value_of_lost_load": "None, one number or {workload: $/M tokens}",
    "transfer_aware": "True / False",
    "scenario": "a Scenario with the same nodes, workloads and links",
}


_FAST = {"demand", "electricity_usd_per_kwh", "capacity_mw", "other_opex_usd_per_kwh", "link_bandwidth_gbps",
         "transfer_cost_usd_per_gb"}


def _same_voll(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values are different
        return False


_STRUCTURES: dict[int, tuple[Scenario, tuple]] = {}
_STRUCTURES_LOCK = threading.Lock()


def _structure(s: Scenario) -> tuple:
    """Nodes, workloads and links of ``s`` (remembered per scenario object: a Scenario is
    immutable, and the entry holds ``s`` so that its ``id`` cannot be reused meanwhile)."""
    hit = _STRUCTURES.get(id(s))
    if hit is not None and hit[0] is s:
        return hit[1]
    out = (tuple(s.node_ids), tuple(s.workload_ids), tuple(zip(s.links["a"], s.links["b"])))
    with _STRUCTURES_LOCK:  # (threads share the memo)
        _STRUCTURES[id(s)] = (s, out)
        while len(_STRUCTURES) > 64:
            _STRUCTURES.pop(next(iter(_STRUCTURES)))
    return out

class Changes:
    """Mixin of :class:`~tokenflow.clearing.engine.Market`: applying changes."""

    def _apply(self, changes: dict) -> None:
        unknown = sorted(set(changes) - set(CHANGES))
        if unknown:
            raise ScenarioError(f"Market.solve: unknown change {', '.join(map(repr, unknown))}; "
                                f"allowed: {', '.join(CHANGES)}")
        if "demand_scale" in changes:
            self.demand_scale = check_number(changes["demand_scale"], "demand_scale", "(multiplier)")
        if self._fast_numbers(changes):
            return
        s = self.scenario
        rebuild = False
        if "scenario" in changes:
            new = check_scenario(changes["scenario"])
            if _structure(new) != _structure(s):
                raise ScenarioError("scenario: a structural change (other nodes, workloads or links) needs a new "
                                    "Market; only numbers can change in place")
            s, rebuild = new, new is not self._scenario
        rep = self._replace_kwargs(s, changes)
        if rep:
            s, rebuild = s.replace(**rep), True
        if "transfer_aware" in changes:
            ta = check_bool(changes["transfer_aware"], "transfer_aware")
            rebuild |= ta != self._ta
            self._ta = ta
        if "latency_limits_ms" in changes:
            more = per_workload(s, changes["latency_limits_ms"], "latency_limits_ms", "ms", allow_zero=True)
            self._lat = {**self._lat, **more}
            rebuild = True
        if "value_of_lost_load" in changes:
            self._voll = changes["value_of_lost_load"]
            rebuild = True
        if rebuild:
            old = self.inp
            inp = build_inputs(s, transfer_aware=self._ta, latency_limits_ms=self._lat,
                               value_of_lost_load=self._voll)
            self._scenario, self.inp = s, inp
            self._limit_cache = None
            self._arr_cache = {}
            lat_changed = not np.array_equal(old.arc_latency_ms, inp.arc_latency_ms)
            if lat_changed:
                self._graph = shared_graph(inp)
            if self.formulation == "arc":
                new_arc = ArcStructure(inp)
                if new_arc.key() != self.arc.key():
                    self.arc = new_arc
            if lat_changed or not np.array_equal(old.latency_ms, inp.latency_ms) or \
                    not np.array_equal(old.base_demand, inp.base_demand) or \
                    not np.array_equal(old.capacity_kw > 0, inp.capacity_kw > 0) or \
                    not np.array_equal(np.isnan(old.voll), np.isnan(inp.voll)):
                self._check_reachable()

    def _fast_numbers(self, changes: dict) -> bool:
        """Number changes (prices, opex, capacities, bandwidths, transfer costs, demand) go
        straight into the arrays; the Scenario catches up only when asked for."""
        keys = set(changes) - {"demand_scale"}
        if not keys:
            return True
        if not keys <= _FAST:
            return False
        s, inp = self._scenario, self.inp
        if "demand" in keys and derived_from_demand(inp):
            return False  # inputs computed from demand (e.g. the baseline's mean payload): rebuild them
        rep = self._replace_kwargs(s, changes)
        npos = {n: i for i, n in enumerate(inp.node_ids)}
        lpos = {lk: i for i, lk in enumerate(s.links.index)}
        wpos = {w: i for i, w in enumerate(inp.workload_ids)}
        upd: dict = {}
        for n, fields in rep.get("nodes", {}).items():
            if n not in npos:
                raise ScenarioError(f"unknown node {n!r} (nodes: {', '.join(inp.node_ids)})")
            i = npos[n]
            if "electricity_usd_per_kwh" in fields:
                upd.setdefault("elec_price", inp.elec_price.copy())[i] = fields["electricity_usd_per_kwh"]
            if "capacity_mw" in fields:
                upd.setdefault("capacity_kw", inp.capacity_kw.copy())[i] = \
                    fields["capacity_mw"] * inp.ai_share * 1000.0
        for lk, fields in rep.get("links", {}).items():
            if lk not in lpos:
                raise ScenarioError(f"unknown link {lk!r} (links: {', '.join(map(str, s.links.index))})")
            i = lpos[lk]
            if "bandwidth_gbps" in fields:
                upd.setdefault("arc_capacity_gbh", inp.arc_capacity_gbh.copy())[2 * i:2 * i + 2] = \
                    fields["bandwidth_gbps"] * GBPS_TO_GB_PER_H
            if "transfer_cost_usd_per_gb" in fields:
                upd.setdefault("arc_cost", inp.arc_cost.copy())[2 * i:2 * i + 2] = fields["transfer_cost_usd_per_gb"]
        if "other_opex_usd_per_kwh" in rep.get("params", {}):
            upd["opex"] = rep["params"]["other_opex_usd_per_kwh"]
        for n, row in rep.get("demand", {}).items():
            if n not in npos:
                raise ScenarioError(f"demand: unknown node {n!r} (nodes: {', '.join(inp.node_ids)})")
            for w, v in row.items():
                if w not in wpos:
                    raise ScenarioError(f"demand.{n}: unknown workload {w!r}")
                upd.setdefault("base_demand", inp.base_demand.copy())[npos[n], wpos[w]] = v
        if "capacity_kw" in upd and not (upd["capacity_kw"] > 0).any():
            raise ScenarioError("capacity_mw: no node would have compute capacity")
        if "elec_price" in upd or "opex" in upd:
            elec = inp.pue * upd.get("elec_price", inp.elec_price)
            upd["proc_cost"] = np.outer(elec + upd.get("opex", inp.opex), inp.intensity)
            upd["energy_cost"] = np.outer(elec, inp.intensity)
        old = inp
        self.inp = dataclasses.replace(inp, **upd)
        self._pending.append(rep)
        self._limit_cache = None
        self._arr_cache = {}
        if self.formulation == "arc" and not np.array_equal(old.capacity_kw > 0, self.inp.capacity_kw > 0):
            new_arc = ArcStructure(self.inp)  # which nodes may process is part of the arc layout
            if new_arc.key() != self.arc.key():
                self.arc = new_arc
        if "base_demand" in upd or ("capacity_kw" in upd and
                                    not np.array_equal(old.capacity_kw > 0, upd["capacity_kw"] > 0)):
            self._check_reachable()
        return True

    @staticmethod
    def _replace_kwargs(s: Scenario, ch: dict) -> dict:
        """Scenario.replace arguments for the number changes (validated by the scenario)."""
        nodes: dict = {}
        links: dict = {}
        params: dict = {}
        for key, field in (("electricity_usd_per_kwh", "electricity_usd_per_kwh"), ("capacity_mw", "capacity_mw")):
            if key in ch:
                v = ch[key]
                if not isinstance(v, Mapping):
                    raise ScenarioError(f"{key}: expected a mapping node -> value, got {v!r:.60}")
                for n, x in v.items():
                    nodes.setdefault(n, {})[field] = check_number(x, f"{key}.{n}", CHANGES[key],
                                                                  allow_zero=field == "capacity_mw")
        for key, field in (("link_bandwidth_gbps", "bandwidth_gbps"), ("transfer_cost_usd_per_gb",
                                                                       "transfer_cost_usd_per_gb")):
            if key in ch:
                v = ch[key]
                items = v.items() if isinstance(v, Mapping) else ((lk, v) for lk in s.links.index)
                for lk, x in items:
                    links.setdefault(lk, {})[field] = check_number(x, f"{key}.{lk}", CHANGES[key],
                                                                   allow_zero=field != "bandwidth_gbps")
        if "other_opex_usd_per_kwh" in ch:
            params["other_opex_usd_per_kwh"] = check_number(ch["other_opex_usd_per_kwh"], "other_opex_usd_per_kwh",
                                                            "$/kWh")
        out = {k: v for k, v in (("nodes", nodes), ("links", links), ("params", params)) if v}
        if "demand" in ch:
            d = ch["demand"]
            if not isinstance(d, Mapping) or not all(isinstance(v, Mapping) for v in d.values()):
                raise ScenarioError(f"demand: expected {{node: {{workload: M tokens/h}}}}, got {d!r:.60}")
            out["demand"] = {n: {k: check_number(x, f"demand.{n}.{k}", "M tokens/h") for k, x in v.items()}
                             for n, v in d.items()}
        return out

    def _check_reachable(self) -> None:
        """Positive demand without VoLL must reach compute within its latency limit."""
        problems = self._unreachable(with_voll=False)
        if problems:
            raise ScenarioError(problems)

    def _unreachable(self, with_voll: bool) -> list[str]:
        """Demand cells that cannot reach compute within their latency limit (those with a
        VoLL too when ``with_voll``)."""
        inp, G = self.inp, self._graph
        cap = inp.capacity_kw > 0
        problems = []
        rows = inp.base_demand > 0
        if not with_voll:
            rows &= np.isnan(inp.voll)[None, :]
        # round trip to the nearest node with compute, per origin (inf: none connected); a
        # demand cell is reachable iff that is within its latency limit
        # demand cell is reachable iff that is within its latency limit (no compute: none is)
        if cap.any():
            nearest_rtt = (2.0 * G.latdist[:, cap]).min(axis=1)
            rows &= ~(nearest_rtt[:, None] <= inp.latency_ms[None, :] + LAT_TOL)
        else:
            nearest_rtt = np.full(len(cap), np.inf)
        for o, k in np.argwhere(rows):
            fin = nearest_rtt[o]
            nearest = f"; nearest compute is {fin:.1f} ms away" if np.isfinite(fin) else \
                "; no node with compute capacity is connected to it"
            problems.append(f"unreachable demand: {inp.workload_ids[k]} at node {inp.node_ids[o]!r} cannot "
                            f"reach any node with compute capacity within its {inp.latency_ms[k]:g} ms "
                            f"latency limit{nearest}")
        return problems
