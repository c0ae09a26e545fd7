"""The persistent market engine: build the LP once, change numbers in place, re-solve warm.

``Market(scenario, ...)`` keeps one live HiGHS instance for the market LP and one for the
max-scale LP (s*).  ``market.solve(**changes)`` applies the changes, updates only the
numbers that differ (costs, bounds, right-hand sides; new columns from exact column
generation) and re-solves from the previous basis.  Changes persist: the market's
``scenario`` and ``settings`` always describe what it solves, and a fresh
``tokenflow.solve(market.scenario, **market.settings)`` gives the same result.

Imports point down only: ``inputs -> routes -> model/arc -> solver -> engine -> results``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..core.errors import InfeasibleMarketError, ScenarioError, SolverError
from ..lp.arc import ArcStructure
from ..lp.inputs import (
    GBPS_TO_GB_PER_H,
    Inputs,
    build_inputs,
    check_bool,
    check_formulation,
    check_number,
    check_scenario,
    derived_from_demand,
    per_workload,
)
from ..lp.model import LARGE, SMALL, LPArrays, PathColumns, check_magnitudes, path_lp, row_layout
from ..lp.routes import LAT_TOL, Graph, arc_lengths, cheapest, price, shared_graph
from ..lp.solver import LiveLP, verify
from ..scenarios.scenario_class import Scenario

MAX_CG_ROUNDS = 500
#: path formulation, networks of at least this many nodes: s* column generation starts from
#: the routes of the arc formulation's max-scale solution (see :meth:`Market._arc_seed`)
ARC_SEED_MIN_NODES = 100
#: M tokens/h (one token per hour): demand below this is below what the solver resolves
#: (its primal tolerance is 1e-9); such a row is priced as a row without demand, at the
#: marginal cost of its first token
DEMAND_RESOLUTION = 1e-6
_MISSING = object()

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


@dataclass
class ScaleLimit:
    """Largest feasible demand scale s* and what binds there."""

    max_scale: float
    aggregate_bound: float
    binding: str
    saturated_nodes: list[str]
    binding_links: list[str]


@dataclass
class Solution:
    """Everything a :class:`~tokenflow.clearing.results.MarketResult` is made of (numpy only)."""

    inp: Inputs
    formulation: str
    scale: float
    x: np.ndarray  # all LP columns
    lam: np.ndarray  # N x K
    mu: np.ndarray  # N
    rho: np.ndarray  # L
    objective: float
    info: dict
    # path formulation
    col_route: np.ndarray | None = None
    col_k: np.ndarray | None = None
    routes: tuple | None = None  # (origin, target, ptr, flat)
    first_token: dict | None = None  # (o, k) -> (cost, n, arcs) for rows at zero demand
    # arc formulation
    arc: ArcStructure | None = None


_FAST = {"demand", "electricity_usd_per_kwh", "capacity_mw", "other_opex_usd_per_kwh", "link_bandwidth_gbps",
         "transfer_cost_usd_per_gb"}


def _same_voll(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values are different
        return False


def _price_inputs(inp: Inputs) -> tuple:
    """Every input :func:`~tokenflow.lp.routes.price` reads besides the duals and the graph."""
    return (inp.proc_cost, inp.intensity, inp.capacity_kw > 0, inp.arc_cost, inp.fwd_gb, inp.rev_gb,
            inp.rev_arc, inp.latency_ms)


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


class Market:
    """A token-flow market kept live for fast re-solves.

    ``Market(scenario, transfer_aware=True, formulation="path", latency_limits_ms=None,
    value_of_lost_load=None)`` checks its arguments (each error names the argument),
    builds the LP once and keeps the HiGHS instance.  :meth:`solve` changes numbers in
    place (keywords in :data:`CHANGES`) and re-solves from the previous basis.

    Structural changes - other nodes, workloads or links - raise :class:`ScenarioError`;
    build a new ``Market`` for them.  In the arc formulation a latency change that
    alters which commodities exist re-passes the model to HiGHS (same numbers, new
    layout); everything else is in place.

    Every call is a transaction.  A call of :meth:`solve`, :meth:`scale_limit`,
    :meth:`resolve` or :meth:`link_load_range` that raises leaves the market exactly as it
    was (:meth:`linopy_model` and the block of :meth:`what_if` leave it so however they end):
    scenario, settings,
    overrides, pending changes, the live LPs' numbers and bases.  The one exception is
    :class:`InfeasibleMarketError`: the change was valid and the error is the answer
    about the changed market (demand beyond s*), so the change is kept - the next
    ``solve()`` raises it again, as a fresh ``tokenflow.solve(m.scenario, **m.settings)``
    does.  Routes that column generation found during a refused call stay in the route
    pool (a cache of routes of the network: they change no optimum).  Inputs derived
    from others (the token-equivalent baseline's demand-weighted mean payload, the arc
    formulation's commodities) are recomputed whenever their source changes.
    """

    #: attributes that make up the market's state (restored when a call is refused)
    _STATE = ("_scenario", "_pending", "_ta", "_lat", "_voll", "inp", "demand_scale", "_graph", "_limit_cache",
              "_arr_cache", "_pre", "n_solves", "arc", "_ent", "_ent_rev")

    def __init__(self, scenario: Scenario, *, transfer_aware: bool = True, formulation: str = "path",
                 latency_limits_ms: Mapping[str, float] | None = None,
                 value_of_lost_load: float | Mapping[str, float] | None = None) -> None:
        t0 = time.perf_counter()
        self._scenario = check_scenario(scenario)
        self.formulation = check_formulation(formulation)
        self._ta = check_bool(transfer_aware, "transfer_aware")
        self._lat = per_workload(self._scenario, latency_limits_ms, "latency_limits_ms", "ms", allow_zero=True)
        self._voll = value_of_lost_load
        self.inp = build_inputs(self._scenario, transfer_aware=self._ta, latency_limits_ms=self._lat,
                                value_of_lost_load=value_of_lost_load)
        self.demand_scale = 1.0
        self._main, self._smax = LiveLP(), LiveLP()
        self._graph = shared_graph(self.inp)
        self._limit_cache: ScaleLimit | None = None
        self._arr_cache: dict = {}
        self._pre: tuple | None = None
        self._pending: list[dict] = []  # number changes applied to the arrays, not yet to the Scenario
        self.n_solves = 0
        self._price_memo: tuple | None = None  # see _price
        self.price_skips = 0
        if self.formulation == "path":
            self.cols = PathColumns()
            self._ent: tuple | None = None
            self._ent_rev = None
        else:
            self.arc = ArcStructure(self.inp)
        self._check_reachable()
        if self.formulation == "path":
            self._seed(np.ones((self.inp.N, self.inp.K), dtype=bool))
        self.build_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ state
    @contextlib.contextmanager
    def _transaction(self, *, keep: bool = True) -> Iterator[None]:
        """Run a call as a whole: on any exception but :class:`InfeasibleMarketError`
        every attribute of the state and both live LPs are put back as they were.  With
        ``keep=False`` (a what-if: :func:`tokenflow.planning.upgrades.upgrade_values`) they are put
        back however the call ends, so the market is exactly as found: scenario, pending
        changes (no value written explicitly that was a scenario-wide default), settings,
        the live LPs' numbers and bases."""
        saved = {k: getattr(self, k) for k in self._STATE if hasattr(self, k)}
        saved["_pending"] = list(self._pending)
        saved["_lat"] = dict(self._lat)
        saved["_arr_cache"] = dict(self._arr_cache)
        checkpoints = [(lp, lp.checkpoint()) for lp in (self._main, self._smax)]

        def put_back() -> None:
            for k, v in saved.items():
                setattr(self, k, v)
            for lp, ck in checkpoints:
                lp.restore(ck)

        try:
            yield
        except InfeasibleMarketError:
            if keep:
                for lp, ck in checkpoints:
                    lp.release(ck)
            else:
                put_back()
            raise
        except BaseException:
            put_back()
            raise
        if keep:
            for lp, ck in checkpoints:
                lp.release(ck)
        else:
            put_back()

    @contextlib.contextmanager
    def what_if(self) -> Iterator[Market]:
        """``with m.what_if(): m.solve(...)``: changes made inside the block are undone when
        it ends (normally or by an exception): the market is exactly as found."""
        with self._transaction(keep=False):
            yield self

    @property
    def scenario(self) -> Scenario:
        """The scenario with every change applied so far."""
        if self._pending:
            s = self._scenario
            for rep in self._pending:
                s = s.replace(**rep)
            self._scenario, self._pending = s, []
        return self._scenario

    @property
    def settings(self) -> dict:
        """Keyword arguments of :func:`tokenflow.solve` that reproduce this market."""
        return {"transfer_aware": self._ta, "formulation": self.formulation, "demand_scale": self.demand_scale,
                "latency_limits_ms": dict(self._lat) or None, "value_of_lost_load": self._voll}

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

    def resolve(self, scenario: Scenario, *, demand_scale: float = 1.0, transfer_aware: bool = True,
                latency_limits_ms: Mapping[str, float] | None = None, formulation: str | None = None,
                value_of_lost_load: float | Mapping[str, float] | None = None) -> MarketResult:  # noqa: F821
        """Solve exactly what ``tokenflow.solve(scenario, **kwargs)`` solves (settings replaced,
        not merged), re-using this market's live LP; ``scenario`` must have the same structure.
        A refused call changes nothing (see the class docstring)."""
        with self._transaction():
            return self._resolve(scenario, demand_scale=demand_scale, transfer_aware=transfer_aware,
                                 latency_limits_ms=latency_limits_ms, formulation=formulation,
                                 value_of_lost_load=value_of_lost_load)

    def _resolve(self, scenario: Scenario, *, demand_scale: float, transfer_aware: bool,
                 latency_limits_ms: Mapping[str, float] | None, formulation: str | None,
                 value_of_lost_load: float | Mapping[str, float] | None) -> MarketResult:  # noqa: F821
        if formulation is not None and check_formulation(formulation) != self.formulation:
            raise ScenarioError(f"formulation: this market is {self.formulation!r}, got {formulation!r}")
        scenario = check_scenario(scenario)
        ta = check_bool(transfer_aware, "transfer_aware")
        lat = per_workload(scenario, latency_limits_ms, "latency_limits_ms", "ms", allow_zero=True)
        changes: dict = {"demand_scale": demand_scale}
        if self._pending or scenario is not self._scenario or ta != self._ta or lat != self._lat \
                or not _same_voll(value_of_lost_load, self._voll):
            self._lat = {}
            changes.update(scenario=scenario, transfer_aware=ta, latency_limits_ms=lat,
                           value_of_lost_load=value_of_lost_load)
        return self._solve(**changes)

    # ------------------------------------------------------------------ path columns
    def _seed(self, rows: np.ndarray) -> None:
        """Columns demand needs: local processing and each row's cheapest admissible route."""
        inp = self.inp
        items = []
        for o in np.nonzero(inp.capacity_kw > 0)[0]:
            if rows[o].any():
                items += [(int(o), int(o), (), k) for k in np.nonzero(rows[o])[0]]
        best = cheapest(inp, self._graph, np.zeros(inp.N), np.zeros(inp.L), rows)
        items += [(o, n, arcs, k) for (o, k), (_, n, arcs) in best.items()]
        self.cols.add(items)

    def _entries(self) -> tuple:
        inp = self.inp
        rev = bool(np.any(inp.rev_gb != 0))
        if self._ent is None or self._ent_rev != rev:
            self._ent, self._ent_rev = self.cols.entries(inp), rev
        n_have = int(self._ent[0].max()) + 1 if len(self._ent[0]) else 0
        if len(self.cols) > n_have:
            more = self.cols.entries(inp, start=n_have)
            self._ent = tuple(np.r_[a, b] for a, b in zip(self._ent, more))
        return self._ent

    def _col_on(self) -> np.ndarray:
        inp = self.inp
        return self.cols.rtt_ms(inp) <= inp.latency_ms[self.cols.k] + LAT_TOL

    def _path_arrays(self, scale: float | None) -> tuple[LPArrays, np.ndarray]:
        """The path LP over the current columns; everything but the demand right-hand side is
        cached per (inputs, columns)."""
        inp = self.inp
        key = (len(self.cols), scale is None)  # the cache is cleared whenever the inputs change
        hit = self._arr_cache.get(key)
        if hit is None:
            on = self._col_on()
            if scale is not None:
                # rows with demand but no usable column get their cheapest admissible route first
                o, _ = self.cols.origin_node()
                covered = np.zeros(inp.N * inp.K, dtype=bool)
                covered[(o * inp.K + self.cols.k)[on]] = True
                no_voll = np.broadcast_to(np.isnan(inp.voll)[None, :], inp.base_demand.shape).reshape(-1)
                need = (inp.base_demand.reshape(-1) > 0) & ~covered & no_voll
                if need.any():
                    self._seed(need.reshape(inp.N, inp.K))
                    return self._path_arrays(scale)
            arr = path_lp(inp, self.cols, self._entries(), 1.0 if scale is not None else None, on)
            if len(self._arr_cache) > 8:
                self._arr_cache.clear()
            hit = self._arr_cache[key] = (arr, on)
        arr, on = hit
        if scale is not None and scale != 1.0:
            D = inp.N * inp.K
            lb = arr.row_lb.copy()
            lb[:D] *= scale
            ub = arr.row_ub.copy()
            ub[:D] = lb[:D]
            arr = dataclasses.replace(arr, row_lb=lb, row_ub=ub)
        return arr, on

    def _duals(self, y: np.ndarray, n_first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        inp = self.inp
        N, K, L = inp.N, inp.K, inp.L
        if self.formulation == "path":
            lam = y[:N * K].reshape(N, K)
        else:
            lam = y[self.arc.origin_row.reshape(-1)].reshape(N, K)
        return lam, -y[n_first:n_first + N], -y[n_first + N:n_first + N + L]

    def _elastic(self, arr: LPArrays) -> LPArrays:
        """Phase 1: every demand row without a VoLL may go unserved at a penalty far above any
        route's cost, so the restricted LP is feasible and column generation can proceed."""
        inp = self.inp
        D = inp.N * inp.K
        no_voll = np.broadcast_to(np.isnan(inp.voll)[None, :], (inp.N, inp.K)).reshape(-1)
        penalty = 1e3 * (1.0 + float(np.abs(arr.cost).max(initial=0.0)))
        cost, ub = arr.cost.copy(), arr.col_ub.copy()
        cost[:D][no_voll], ub[:D][no_voll] = penalty, np.inf
        return dataclasses.replace(arr, cost=cost, col_ub=ub)

    def _cg(self, live: LiveLP, scale: float | None, elastic: bool = False) -> tuple[str, int, tuple | None]:
        """Column generation on ``live``: solve, price exactly, add columns, repeat."""
        inp = self.inp
        for rounds in range(1, MAX_CG_ROUNDS + 1):
            arr, _ = self._path_arrays(scale)
            if elastic:
                arr = self._elastic(arr)
            live.sync(arr)
            cond = live.run()
            if cond != "optimal":
                return cond, rounds, None
            x, y, obj = live.solution()
            lam, mu, rho = self._duals(y, inp.N * inp.K)
            new = self._price(lam, mu, rho, scale is not None)
            if not new or not self.cols.add([(o, n, arcs, k) for o, n, arcs, k, _ in new]):
                return "optimal", rounds, (x, y, obj, arr)
        raise SolverError(f"column generation did not converge in {MAX_CG_ROUNDS} rounds")

    def _price(self, lam: np.ndarray, mu: np.ndarray, rho: np.ndarray, with_costs: bool) -> list:
        """:func:`~tokenflow.lp.routes.price`, skipped when it is known to find nothing.

        ``price`` is a deterministic function of the duals (lam, mu, rho), of the inputs it
        reads (:func:`_price_inputs`), of the graph and of the columns the LP already has,
        and a column is priced out iff its reduced cost at these duals is >= -tol.  When the
        last call at exactly these duals, inputs and graph found no column, a new call finds
        none either: the column set only grows, and a larger set only skips more candidates
        (a route that was not in the LP and had negative reduced cost would have been
        returned then).  This is the common warm re-solve where only the demand right-hand
        side moved and the optimal basis, hence the duals, stayed the same."""
        memo, inp = self._price_memo, self.inp
        if memo is not None and memo[0] is self._graph and memo[1] == with_costs and memo[2] is self.cols \
                and np.array_equal(memo[3], lam) and np.array_equal(memo[4], mu) and np.array_equal(memo[5], rho) \
                and (memo[6] is inp or all(np.array_equal(a, b) for a, b in zip(memo[7], _price_inputs(inp)))):
            # (Inputs arrays are never changed in place: a change makes a new Inputs)
            self.price_skips += 1
            return []
        new = price(inp, self._graph, lam, mu, rho, with_costs=with_costs, exists=self.cols.exists)
        if not new:
            self._price_memo = (self._graph, with_costs, self.cols, lam.copy(), mu.copy(), rho.copy(), inp,
                                tuple(np.array(a, copy=True) for a in _price_inputs(inp)))
        return new

    # ------------------------------------------------------------------ names for messages
    def _row_name(self, n_first: int):
        inp = self.inp

        def name(i: int) -> str:
            if i < n_first:
                if self.formulation == "path":
                    return f"demand[{inp.node_ids[i // inp.K]}, {inp.workload_ids[i % inp.K]}]"
                return f"balance[{i}]"
            i -= n_first
            if i < inp.N:
                return f"compute[{inp.node_ids[i]}]"
            return f"bandwidth[{inp.link_ids[i - inp.N]}]"
        return name

    @staticmethod
    def _col_name(j: int) -> str:
        return f"column {j}"

    # ------------------------------------------------------------------ s*
    def _aggregate(self) -> tuple[float, float]:
        inp = self.inp
        total_load = float((inp.base_demand * inp.intensity[None, :]).sum())
        return total_load, (float(inp.capacity_kw.sum() / total_load) if total_load > 0 else math.inf)

    def scale_limit(self, **changes) -> ScaleLimit:
        """The largest demand scale s* at which the market clears (exact: the max-scale LP,
        with column generation in the path formulation) and what binds there.  ``changes``
        as for :meth:`solve` (they persist; a refused call changes nothing)."""
        with self._transaction():
            return self._scale_limit(**changes)

    def _scale_limit(self, **changes) -> ScaleLimit:
        self._apply(changes)
        if self._limit_cache is not None:
            return self._limit_cache
        inp = self.inp
        total_load, agg = self._aggregate()
        if total_load == 0:
            return ScaleLimit(math.inf, math.inf, "no demand", [], [])
        self._check_resolution()
        self._check_demand_span()
        lost = self._unreachable(with_voll=True)
        if lost:  # only possible with a value of lost load: no scale > 0 serves every token
            self._limit_cache = ScaleLimit(0.0, agg, "; ".join(lost) + " (it can only go unserved, at the value of "
                                           "lost load)", [], [])
            return self._limit_cache
        if self.formulation == "path":
            if inp.N >= ARC_SEED_MIN_NODES:
                self._arc_seed()
            cond, _, sol = self._cg(self._smax, None)
            n_first = inp.N * inp.K
        else:
            arr = self.arc.lp(inp, None)
            self._smax.sync(arr)
            cond = self._smax.run()
            sol = (*self._smax.solution(), arr) if cond == "optimal" else None
            n_first = len(self.arc.r_c)
        if cond != "optimal":
            raise SolverError(f"max-scale LP ended with '{cond}'")
        x, y, _, arr = sol
        verify(arr, x, y, self._row_name(n_first), self._col_name)
        dmax = float(inp.base_demand.max())
        s_star = max(float(x[0]), 0.0) / dmax + 0.0  # x[0] = s* x (largest demand cell)
        _, mu, rho = self._duals(y, n_first)
        ytol = 1e-9 * max(1.0, float(np.abs(mu).max(initial=0.0)), float(np.abs(rho).max(initial=0.0)))
        nodes = [inp.node_ids[i] for i in np.nonzero(mu > ytol)[0]]
        links = [inp.link_ids[i] for i in np.nonzero(rho > ytol)[0]]
        if s_star >= agg * (1 - 1e-6):
            binding = f"aggregate compute capacity ({inp.capacity_kw.sum() / 1000:.6g} MW of AI compute)"
        elif links:
            binding = ("bandwidth on links " + ", ".join(links)
                       + (f" (with compute at {', '.join(nodes)})" if nodes else ""))
        elif nodes:
            binding = ("compute reachable within latency limits: nodes " + ", ".join(nodes)
                       + f" are full while aggregate capacity would allow s = {agg:.6g}")
        else:
            binding = (f"compute reachable within latency limits (aggregate capacity would allow "
                       f"s = {agg:.6g}); no single node or link has a positive rent")
        self._limit_cache = ScaleLimit(s_star, agg, binding, nodes, links)
        return self._limit_cache

    def _arc_seed(self) -> int:
        """Path formulation: add the routes of the arc formulation's max-scale solution as
        columns (flow decomposition).  On large sparse networks column generation for s*
        from scratch takes hundreds of rounds of a degenerate LP (a 1,005-node star: ~290 s
        against 2 s for the arc LP); from these routes it needs a few.  The result stays
        the path formulation's exact s*: column generation still prices every route, and a
        route the arc LP found that breaks a latency limit is switched off like any other.
        The arc LP is solved without latency limits (one commodity per workload), so it
        stays small where limits bind.
        Returns the number of columns added."""
        inp = self.inp
        # latency limits left out: one commodity per workload keeps the arc LP small (its
        # routes that break a limit are switched off; column generation finds the others)
        loose = dataclasses.replace(inp, latency_ms=np.full(inp.K, np.inf))
        try:
            st = ArcStructure(loose)
        except ScenarioError:
            return 0
        arr = st.lp(loose, None)
        live = LiveLP()
        live.sync(arr)
        if live.run() != "optimal":
            return 0
        x = live.solution()[0]
        dmax = float(inp.base_demand.max()) or 1.0
        t = max(float(x[0]), 0.0)
        f = x[1:1 + st.n_flow]
        y = x[1 + st.n_flow:1 + st.n_flow + st.n_proc]
        tol = 1e-9 * max(1.0, float(np.abs(x).max(initial=0.0)))
        items = []
        for ci in range(len(st.com_k)):
            k, o = int(st.com_k[ci]), int(st.com_o[ci])
            supply = np.zeros(inp.N)
            if o < 0:
                supply += t * inp.base_demand[:, k] / dmax
            else:
                supply[o] = t * inp.base_demand[o, k] / dmax
            sink = np.zeros(inp.N)
            sel = st.y_c == ci
            np.add.at(sink, st.y_n[sel], y[sel])
            fsel = np.nonzero((st.f_c == ci) & (f > tol))[0]
            items += _decompose(inp, k, supply, sink, st.f_a[fsel], f[fsel].copy(), tol)
        return self.cols.add(items)

    def _check_resolution(self) -> None:
        """:func:`check_resolution` of the market's inputs."""
        check_resolution(self.inp)

    def _check_demand_span(self) -> None:
        """The max-scale LP has one column with the demand cells as coefficients (relative
        to the largest); HiGHS drops coefficients below 1e-9, so cells spanning more than
        nine orders of magnitude would silently drop out of s*: refuse them."""
        d = self.inp.base_demand
        pos = d[d > 0]
        if len(pos) and float(pos.min()) < SMALL * float(pos.max()):
            lo, hi = np.unravel_index(np.argmin(np.where(d > 0, d, np.inf)), d.shape), \
                np.unravel_index(np.argmax(d), d.shape)
            name = self.inp.node_ids
            wl = self.inp.workload_ids
            raise ScenarioError(
                f"demand: the demand cells span more than 9 orders of magnitude ({float(pos.min()):g} M tokens/h "
                f"at {name[lo[0]]}/{wl[lo[1]]} .. {float(pos.max()):g} at {name[hi[0]]}/{wl[hi[1]]}); "
                "the LP solver cannot resolve s* for them (set the negligible cells to 0)")

    def _infeasible(self, scale: float) -> InfeasibleMarketError:
        lim = self._explain_limit(scale)
        return InfeasibleMarketError(scale, lim.max_scale, lim.binding)

    def _explain_limit(self, scale: float) -> ScaleLimit:
        """s* to explain a scale already known not to clear.  Where s* itself cannot be
        resolved (demand cells spanning more than nine orders of magnitude, which
        :meth:`scale_limit` refuses) the market is still infeasible at ``scale``: raise
        :class:`InfeasibleMarketError` with s* = NaN and the reason, not a ScenarioError
        (only for demand this market has cleared before; other demand is refused as such)."""
        try:
            return self._scale_limit()
        except ScenarioError as exc:
            # demand this market has cleared before (at a smaller scale) makes it infeasible
            # here; demand never cleared is refused as such (a refused change is undone)
            cleared = getattr(self, "_cleared_demand", None)
            if "span more than 9 orders" not in str(exc) or cleared is None \
                    or cleared.shape != self.inp.base_demand.shape or not np.array_equal(cleared,
                                                                                       self.inp.base_demand):
                raise
            raise InfeasibleMarketError(scale, math.nan, f"s* not computed: {exc}") from None

    def _precheck(self, scale: float) -> None:
        """Demand beyond aggregate capacity is infeasible whatever its magnitude (no solve
        needed); right-hand sides the solver cannot represent are refused."""
        inp = self.inp
        if self._pre is None or self._pre[0] is not inp:
            no_voll = np.isnan(inp.voll)
            load = float((inp.base_demand[:, no_voll] * inp.intensity[None, no_voll]).sum())
            check_sizes(inp)
            self._pre = (inp, load, float(inp.capacity_kw.sum()), float(inp.base_demand.max(initial=0.0)))
        _, load, cap, dmax = self._pre
        if scale * load > cap * (1 + 1e-9):
            raise self._infeasible(scale)
        if scale * dmax > LARGE:
            check_magnitudes("demand (demand_scale x base demand)", scale * inp.base_demand, "M tokens/h")

    # ------------------------------------------------------------------ solve
    def solve(self, **changes) -> MarketResult:  # noqa: F821 - results imported lazily below
        """Apply ``changes`` (see :data:`CHANGES`; they persist) and clear the market.

        Raises :class:`InfeasibleMarketError` (with s* and what binds) when demand exceeds
        what the network can serve, :class:`ScenarioError` for bad or structural changes,
        :class:`SolverError` when HiGHS fails or its answer does not pass the checks.

        A call that raises changes nothing, except :class:`InfeasibleMarketError`: the
        changes were valid, the market they describe cannot clear, and they are kept
        (see the class docstring)."""
        with self._transaction():
            return self._solve(**changes)

    def _solve(self, **changes) -> MarketResult:  # noqa: F821
        from .results import MarketResult

        t0 = time.perf_counter()
        self._apply(changes)
        scale = self.demand_scale
        self._precheck(scale)
        inp = self.inp
        t1 = time.perf_counter()
        rounds = 1
        if self.formulation == "path":
            cond, rounds, sol = self._cg(self._main, scale)
            if cond == "infeasible":
                # phase 1 (elastic demand rows) generates the columns a feasible dispatch needs
                cond, more, sol = self._cg(self._main, scale, elastic=True)
                rounds += more
                D = inp.N * inp.K
                short = sol is not None and float(sol[0][:D][np.isnan(np.broadcast_to(
                    inp.voll[None, :], (inp.N, inp.K)).reshape(-1))].sum()) > 1e-9 * max(
                    1.0, float(scale * inp.base_demand.sum()))
                if sol is None or short:
                    lim = self._explain_limit(scale)  # exact s*; adds the columns that serve it
                    if scale > lim.max_scale * (1 + 1e-9):
                        raise InfeasibleMarketError(scale, lim.max_scale, lim.binding)
                cond, more, sol = self._cg(self._main, scale)
                rounds += more
            n_first = inp.N * inp.K
        else:
            arr = self.arc.lp(inp, scale)
            self._main.sync(arr)
            cond = self._main.run()
            sol = (*self._main.solution(), arr) if cond == "optimal" else None
            n_first = len(self.arc.r_c)
            if cond == "infeasible":
                lim = self._explain_limit(scale)
                if scale > lim.max_scale * (1 + 1e-9):
                    raise InfeasibleMarketError(scale, lim.max_scale, lim.binding)
        if cond != "optimal":
            raise SolverError(f"HiGHS ended with '{cond}' at demand scale {scale:g}")
        x, y, obj, arr = sol
        verify(arr, x, y, self._row_name(n_first), self._col_name)
        lam, mu, rho = self._duals(y, n_first)
        # rents cannot be negative (verify bounds the solver's noise); no -0 in any output
        lam, mu, rho = lam + 0.0, np.maximum(mu, 0.0) + 0.0, np.maximum(rho, 0.0) + 0.0
        first = self._first_token_prices(lam, mu, rho, scale)
        t2 = time.perf_counter()
        self.n_solves += 1
        self._cleared_demand = inp.base_demand.copy()  # read by _explain_limit
        info = {"objective": obj, "build_s": t1 - t0, "solve_s": t2 - t1, "highs_s": self._main.run_seconds,
                "n_vars": arr.n_cols, "n_cons": arr.n_rows, "cg_rounds": rounds}
        if self.formulation == "path":
            snap = Solution(inp, "path", scale, x, lam, mu, rho, obj, info, col_route=self.cols.route,
                            col_k=self.cols.k, routes=self.cols.pool.arrays(), first_token=first)
        else:
            snap = Solution(inp, "arc", scale, x, lam, mu, rho, obj, info, arc=self.arc)
        return MarketResult.from_solution(snap)

    def _first_token_prices(self, lam: np.ndarray, mu: np.ndarray, rho: np.ndarray, scale: float) -> dict:
        """The engine's rule for prices at zero-demand cells: :func:`first_token_prices`."""
        if self.formulation == "path":
            return first_token_prices(self.inp, lam, mu, rho, scale, graph=self._graph)
        return first_token_prices(self.inp, lam, mu, rho, scale, arc=self.arc)

    # ------------------------------------------------------------------ link load range
    def link_load_range(self, links: list[str] | None = None, *, rel_tol: float = 1e-9, **changes) -> xr.Dataset:
        """With the total cost held at its optimum z (row ``cost <= z + rel_tol max(|z|, 1)``),
        the smallest and largest load of each directed link over all optimal dispatches.

        Returns a Dataset (dim ``link``) with ``min_load``/``max_load`` (GB/h, as the model
        counts traffic), ``min_utilization``/``max_utilization`` and ``unique`` (range within
        1e-6 of capacity).  Exact for the arc formulation and for the path formulation
        where no latency limit binds (then both describe the same dispatches; the range is
        computed on the arc LP).  With binding limits the path formulation's range covers
        the routes column generation has found, stated in ``attrs["exact"]``.

        The cost row keeps the objective's own coefficients up to one common factor chosen
        so that its smallest and largest entries sit symmetrically around 1 (never below the
        solver's small-coefficient threshold ``SMALL``): a cost of 8e-6 $/M tokens must not be
        dropped, or traffic would circulate for free inside the "optimal" face.  Every range
        solution is checked: its cost recomputed as ``cost @ x`` must be within
        ``rel_tol max(|z|, 1)`` plus the solver's feasibility tolerance of z, and its
        column bounds and rows must hold, or the range is refused (``SolverError``).
        ``attrs["max_excess_cost"]`` ($/h) is the largest recomputed excess over z."""
        from ..core import validate as _v

        # the arguments first, then the change and the ranges in one transaction: a refused
        # call (a bad link, a bad rel_tol, a failed range) leaves the market as found
        rel_tol = _v.number(rel_tol, "rel_tol", "link_load_range", lo=0.0, hi=1.0, unit="(relative slack)")
        chosen = list(self.inp.link_ids) if links is None else \
            _v.names(links, "links", "link_load_range", kind="directed links ('a->b')")
        unknown = [lk for lk in chosen if lk not in self.inp.link_ids]
        if unknown:
            raise ScenarioError(f"links: unknown directed link(s) {unknown}; links are named 'a->b'")
        with self._transaction():
            return self._link_load_range(chosen, links, rel_tol, changes)

    def _link_load_range(self, chosen: list[str], links: list[str] | None, rel_tol: float,
                         changes: dict) -> xr.Dataset:
        from scipy.sparse import csc_array

        from ..lp.solver import HIGHS_OPTIONS

        r = self.solve(**changes)
        inp = self.inp
        if self.formulation == "path":
            arc_market = Market(self.scenario, transfer_aware=self._ta, formulation="arc",
                                latency_limits_ms=self._lat or None, value_of_lost_load=self._voll)
            exact = bool(np.all(arc_market.arc.com_o == -1))
            if exact:
                return arc_market.link_load_range(links, rel_tol=rel_tol, demand_scale=self.demand_scale)
            arr, _ = self._path_arrays(self.demand_scale)
        else:
            exact = True
            arr = self.arc.lp(inp, self.demand_scale)
        z = r.objective
        load_rows = arr.row_ub.shape[0] - inp.L + np.arange(inp.L)
        A = csc_array((arr.data, arr.indices, arr.indptr), shape=(arr.n_rows, arr.n_cols)).tocsr()
        obj_row, cscale, slack = optimal_face(arr, z, rel_tol, "link load range")
        live = LiveLP()
        live.sync(obj_row)
        feas = float(HIGHS_OPTIONS["primal_feasibility_tolerance"])
        lo, hi, excess = [], [], 0.0
        for lk in chosen:
            i = load_rows[inp.link_ids.index(lk)]
            cols_i, vals_i = A.indices[A.indptr[i]:A.indptr[i + 1]], A.data[A.indptr[i]:A.indptr[i + 1]]
            vals = []
            for sign in (1.0, -1.0):
                cost = np.zeros(arr.n_cols)
                cost[cols_i] = sign * vals_i
                live.sync(dataclasses.replace(obj_row, cost=cost))
                if live.run() != "optimal":
                    raise SolverError(f"link load range of {lk}: HiGHS did not find an optimum")
                x = np.asarray(live.h.getSolution().col_value)
                true_cost = float(arr.cost @ x)
                # the solver may break the scaled cost row by its feasibility tolerance
                allowed = slack + feas * (1.0 / cscale + float(np.abs(arr.cost) @ np.abs(x)))
                if true_cost - z > allowed:
                    raise SolverError(f"link load range of {lk}: a range solution costs {true_cost - z:.6g} $/h "
                                      f"more than the optimum {z:.6g} $/h (allowed {allowed:.3g}); refused")
                # rows and column bounds of the market itself (primal check only)
                verify(dataclasses.replace(arr, cost=np.zeros(arr.n_cols)), x, np.zeros(arr.n_rows),
                       lambda j, lk=lk: f"range solution of {lk}: row {j}",
                       lambda j, lk=lk: f"range solution of {lk}: column {j}")
                excess = max(excess, true_cost - z)
                vals.append(float(vals_i @ x[cols_i]))
            lo.append(vals[0]), hi.append(vals[1])
        cap = inp.arc_capacity_gbh[[inp.link_ids.index(lk) for lk in chosen]]
        lo, hi = np.maximum(np.array(lo), 0.0), np.array(hi)
        ds = xr.Dataset(
            {"min_load": ("link", lo, {"unit": "GB/h"}), "max_load": ("link", hi, {"unit": "GB/h"}),
             "min_utilization": ("link", lo / cap, {"unit": "1"}),
             "max_utilization": ("link", hi / cap, {"unit": "1"}),
             "unique": ("link", (hi - lo) <= 1e-6 * cap)},
            coords={"link": chosen})
        ds.attrs.update({"exact": int(exact), "objective": z, "rel_tol": rel_tol,
                         "formulation": self.formulation, "demand_scale": self.demand_scale,
                         "max_excess_cost": excess, "cost_row_scale": cscale})
        return ds

    # ------------------------------------------------------------------ linopy view
    def linopy_model(self, demand_scale: float | None = None):
        """The current LP as a linopy model (names ``flow``/``arcflow``/``proc``,
        ``unserved``, ``demand``/``balance``, ``compute``, ``bandwidth``) for export and
        inspection; same columns and numbers as the live HiGHS instance (unscaled)."""
        from ..lp.lp_view import to_linopy

        scale = self.demand_scale if demand_scale is None else \
            check_number(demand_scale, "demand_scale", "(multiplier)")
        with self._transaction(keep=False):  # a view: the market is left as found
            check_sizes(self.inp, scale)
            if self.formulation == "path":
                arr, _ = self._path_arrays(scale)
            else:
                arr = self.arc.lp(self.inp, scale)
            return to_linopy(self.inp, arr, self.formulation, None if self.formulation == "path" else self.arc)

    def describe(self) -> str:
        return json.dumps({"formulation": self.formulation, "columns": len(self.cols) if self.formulation == "path"
                           else self.arc.n_flow + self.arc.n_proc, "solves": self.n_solves,
                           "rebuilds": self._main.rebuilds})



def optimal_face(arr: LPArrays, z: float, rel_tol: float, what: str) -> tuple[LPArrays, float, float]:
    """``arr`` with one more row, ``cost . x <= z + slack`` (slack = ``rel_tol`` max(|z|, 1) $/h),
    and a zero objective: the LP of every dispatch within ``slack`` of the optimum ``z``.

    The cost row is scaled by one factor, the geometric centre of its entries (their ratios
    kept), not by 1/z: that pushed small costs (batch training's ~8e-6 $/M-token link cost)
    below what HiGHS keeps (:data:`tokenflow.lp.model.SMALL`).  A row whose entries span more
    than the solver can hold raises :class:`SolverError` naming ``what``.  Returns the LP, the
    row's scale and the slack."""
    from scipy.sparse import csc_array, vstack

    from ..lp import model  # SMALL read at call time (tests lower the solver's threshold)

    SMALL = model.SMALL
    nz = np.abs(arr.cost[arr.cost != 0])
    # the geometric centre in logs: min x max underflows to 0 for a subnormal cost (5e-324)
    lo_log, hi_log = (math.log(float(nz.min())), math.log(float(nz.max()))) if len(nz) else (0.0, 0.0)
    cscale = math.exp(-(lo_log + hi_log) / 2)
    if len(nz) and (lo_log - hi_log) / 2 < math.log(10 * SMALL):
        raise SolverError(f"{what}: cost coefficients span {math.exp(min(hi_log - lo_log, 700.0)):.3g}x, "
                          "more than the solver can hold in one row")
    slack = rel_tol * max(abs(z), 1.0)
    A = csc_array((arr.data, arr.indices, arr.indptr), shape=(arr.n_rows, arr.n_cols))
    full = vstack([A, csc_array(arr.cost[None, :])]).tocsc()
    full.sort_indices()
    lp = LPArrays(cost=np.zeros(arr.n_cols), col_lb=arr.col_lb, col_ub=arr.col_ub,
                  row_lb=np.r_[arr.row_lb, -np.inf], row_ub=np.r_[arr.row_ub, z + slack],
                  indptr=full.indptr.astype(np.int64), indices=full.indices.astype(np.int32), data=full.data,
                  row_scale=np.r_[arr.row_scale, cscale])
    return lp, cscale, slack

GB_PER_H = GBPS_TO_GB_PER_H
_ = (LARGE, row_layout)


def _decompose(inp: Inputs, k: int, supply: np.ndarray, sink: np.ndarray, arcs: np.ndarray, flow: np.ndarray,
               tol: float) -> list[tuple[int, int, tuple[int, ...], int]]:
    """Routes (origin, processing node, arcs, k) of one commodity's arc flow (greedy flow
    decomposition; cycles are cancelled).  Bounded: every step removes an arc or empties
    a source or a sink."""
    out: dict[int, list[int]] = {}
    for i, a in enumerate(arcs):
        out.setdefault(int(inp.au[a]), []).append(i)
    supply, sink = supply.copy(), sink.copy()
    routes = []
    budget = 4 * (len(arcs) + 2 * inp.N) + 10
    for u in np.nonzero(supply > tol)[0]:
        u = int(u)
        while supply[u] > tol and budget > 0:
            budget -= 1
            v, path, seen = u, [], {u: 0}
            while sink[v] <= tol:
                nxt = [i for i in out.get(v, []) if flow[i] > tol]
                if not nxt:
                    break
                i = nxt[0]
                w = int(inp.av[arcs[i]])
                if w in seen:  # a cycle: cancel it and continue from w
                    cyc = path[seen[w]:] + [i]
                    flow[cyc] -= float(flow[cyc].min())
                    path = path[:seen[w]]
                    seen = {n: j for n, j in seen.items() if j <= seen[w]}
                    v = w
                    continue
                path.append(i)
                seen[w] = len(path)
                v = w
            if sink[v] <= tol:
                break
            amount = min(float(supply[u]), float(sink[v]), float(flow[path].min()) if path else math.inf)
            if amount <= tol:
                break
            supply[u] -= amount
            sink[v] -= amount
            if path:
                flow[path] -= amount
            routes.append((u, v, tuple(int(arcs[i]) for i in path), k))
    return routes


# ---------------------------------------------------------------------- live markets of a process

_POOL: dict = {}
POOL_SIZE = 12


def pooled_market(scenario: Scenario, *, transfer_aware: bool = True, formulation: str = "path",
                  latency_limits_ms: Mapping[str, float] | None = None,
                  value_of_lost_load: float | Mapping[str, float] | None = None, tag: str = "") -> Market:
    """A live :class:`Market` of this process for scenarios of this structure and these
    settings (kept in a small pool, least recently used dropped): loops, sweeps and root
    finds re-use it instead of building the LP again."""
    scenario = check_scenario(scenario)
    import threading

    # one pool per thread: a live market must never be solved by two threads at once
    key = (threading.get_ident(), _structure(scenario), check_formulation(formulation),
           check_bool(transfer_aware, "transfer_aware"),
           json.dumps(latency_limits_ms, sort_keys=True, default=str),
           json.dumps(value_of_lost_load, sort_keys=True, default=str), tag)
    m = _POOL.pop(key, None)
    if m is None:
        m = Market(scenario, transfer_aware=transfer_aware, formulation=formulation,
                   latency_limits_ms=latency_limits_ms, value_of_lost_load=value_of_lost_load)
    _POOL[key] = m
    while len(_POOL) > POOL_SIZE:
        _POOL.pop(next(iter(_POOL)))
    return m


def pooled_solve(scenario: Scenario, *, demand_scale: float = 1.0, transfer_aware: bool = True,
                 latency_limits_ms: Mapping[str, float] | None = None, formulation: str = "path",
                 value_of_lost_load: float | Mapping[str, float] | None = None) -> MarketResult:  # noqa: F821
    """Same answer as :func:`tokenflow.solve` (to solver tolerance), on a pooled live market."""
    m = pooled_market(scenario, transfer_aware=transfer_aware, formulation=formulation,
                      latency_limits_ms=latency_limits_ms, value_of_lost_load=value_of_lost_load)
    return m.resolve(scenario, demand_scale=demand_scale, transfer_aware=transfer_aware,
                     latency_limits_ms=latency_limits_ms, value_of_lost_load=value_of_lost_load)


def pooled_scale_limit(scenario: Scenario, *, transfer_aware: bool = True, formulation: str = "path",
                       latency_limits_ms: Mapping[str, float] | None = None) -> ScaleLimit:
    """Same as :func:`tokenflow.demand_scale_limit`, on a pooled live market."""
    m = pooled_market(scenario, transfer_aware=transfer_aware, formulation=formulation,
                      latency_limits_ms=latency_limits_ms)
    if scenario is not m.scenario:
        return m.scale_limit(scenario=scenario)
    return m.scale_limit()


def first_token_prices(inp: Inputs, lam: np.ndarray, mu: np.ndarray, rho: np.ndarray, scale: float, *,
                       graph: Graph | None = None, arc: ArcStructure | None = None) -> dict:
    """Where demand is zero the LP's dual is not unique; the price is the marginal cost of
    the first token: the cheapest admissible route at the current rents (or the VoLL).
    Demand below :data:`DEMAND_RESOLUTION` is below the solver's resolution and priced
    the same way (its price tends to that value as demand vanishes).  ``lam`` (node x
    workload, $/M tokens) is overwritten in place at those cells; ``mu`` ($/kWh) and ``rho``
    ($/GB) are the rents of the LP that produced ``lam``.  Routes by the path formulation's
    exact search (``graph``, built from ``inp`` when not given) or, with ``arc``, over that
    arc structure's admissible arcs.  Returns {(o, k): (cost, node, arcs)} of the cells
    priced.  Used by :class:`Market`, :func:`tokenflow.plan` and :func:`tokenflow.clear_bids`."""
    zero = (scale * inp.base_demand) < DEMAND_RESOLUTION
    if not zero.any():
        return {}
    if arc is None:
        best = cheapest(inp, graph if graph is not None else shared_graph(inp), mu, rho, zero)
    else:
        best = _arc_cheapest(inp, arc, mu, rho, zero)
    for o, k in np.argwhere(zero):
        c = best.get((int(o), int(k)), (np.nan,))[0]
        v = inp.voll[k]
        lam[o, k] = np.nanmin([c, v]) + 0.0 if np.isfinite(c) or np.isfinite(v) else np.nan
    return best


def _arc_cheapest(inp: Inputs, st: ArcStructure, mu: np.ndarray, rho: np.ndarray, rows: np.ndarray) -> dict:
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import dijkstra

    node_cost = inp.proc_cost + inp.intensity[None, :] * mu[:, None]
    lengths = arc_lengths(inp, rho, True) if inp.L else np.zeros((inp.K, 0))
    out = {}
    for o, k in np.argwhere(rows):
        ci = st.commodity(int(o), int(k))
        arcs, nodes = st.allowed(ci)
        if len(arcs):
            ln = lengths[k][arcs]
            g = csr_array((ln + 1e-12 * (1 + ln.max()), (inp.au[arcs], inp.av[arcs])), shape=(inp.N, inp.N))
            dist = dijkstra(g, directed=True, indices=int(o))
        else:
            dist = np.where(np.arange(inp.N) == o, 0.0, np.inf)
        if len(nodes):
            full = node_cost[nodes, k] + dist[nodes]
            i = int(np.argmin(full))
            if np.isfinite(full[i]):
                out[(int(o), int(k))] = (float(full[i]), int(nodes[i]), None)
    return out


def check_resolution(inp: Inputs, what: str = "capacity_mw") -> None:
    """A compute capacity that is positive but serves less than one token per hour
    (:data:`DEMAND_RESOLUTION`) of the most energy-intensive workload is below what the
    solver resolves: its rent, and so the prices, would be arbitrary.  Refuse it."""
    gmax = float(np.max(inp.intensity))
    tiny = (inp.capacity_kw > 0) & (inp.capacity_kw < DEMAND_RESOLUTION * gmax)
    if tiny.any():
        raise ScenarioError([f"{what}.{inp.node_ids[i]}: {inp.capacity_kw[i] / 1000 / inp.ai_share:g} MW "
                             "serves less than one token per hour, below what the LP solver resolves; "
                             "set it to 0 (no compute) or to a real capacity" for i in np.nonzero(tiny)[0]])


def check_sizes(inp: Inputs, scale: float | None = None) -> None:
    """The engine's size checks of one market's inputs (used by :class:`Market` and by
    :func:`tokenflow.plan` and :func:`tokenflow.clear_bids`, which build their own LPs):
    compute capacity and link capacity per token within what the LP solver represents,
    no capacity below its resolution (:func:`check_resolution`) and, with ``scale``, the
    demand at that scale within range.  Raises :class:`ScenarioError`."""
    check_magnitudes("compute capacity", inp.capacity_kw, "kW")
    wmax = max(float(np.max(np.r_[inp.fwd_gb, inp.rev_gb], initial=0.0)), 1e-300)
    check_magnitudes("link capacity / link weight", inp.arc_capacity_gbh / wmax, "M tokens/h")
    check_resolution(inp)
    if scale is not None:
        check_magnitudes("demand (demand_scale x base demand)", scale * inp.base_demand, "M tokens/h")
