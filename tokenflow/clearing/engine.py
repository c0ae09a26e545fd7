"""The persistent market engine: build the LP once, change numbers in place, re-solve warm.

``Market(scenario, ...)`` keeps one live HiGHS instance for the market LP and one for the
max-scale LP (s*).  ``market.solve(**changes)`` applies the changes, updates only the
numbers that differ (costs, bounds, right-hand sides; new columns from exact column
generation) and re-solves from the previous basis.  Changes persist: the market's
``scenario`` and ``settings`` always describe what it solves, and a fresh
``tokenflow.solve(market.scenario, **market.settings)`` gives the same result.

Imports point down only: ``inputs -> routes -> model/arc -> solver -> engine -> results``.
The market is one class built of one job per module: taking changes (:mod:`.changes`), s* and
demand that does not clear (:mod:`.scale_limit`), ranges over the optimal face
(:mod:`.load_range`); the rules it shares with the planner and the bids (first-token prices,
size checks) are in :mod:`.rules`.  This module holds the state, its transactions, the solve
(column generation, duals, prices) and the pool of live markets of a process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ..core.errors import InfeasibleMarketError, ScenarioError, SolverError
from ..lp.arc import ArcStructure
from ..lp.inputs import (
    Inputs,
    build_inputs,
    check_bool,
    check_formulation,
    check_number,
    check_scenario,
    per_workload,
)
from ..lp.model import LPArrays, PathColumns, path_lp
from ..lp.routes import LAT_TOL, cheapest, price, shared_graph
from ..lp.solver import LiveLP, verify
from ..scenarios.scenario_class import Scenario
from .changes import Changes, _same_voll, _structure
from .load_range import LoadRange
from .rules import check_sizes, first_token_prices
from .scale_limit import ScaleLimit, ScaleLimits

MAX_CG_ROUNDS = 500


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


def _price_inputs(inp: Inputs) -> tuple:
    """Every input :func:`~tokenflow.lp.routes.price` reads besides the duals and the graph."""
    return (inp.proc_cost, inp.intensity, inp.capacity_kw > 0, inp.arc_cost, inp.fwd_gb, inp.rev_gb,
            inp.rev_arc, inp.latency_ms)


class Market(Changes, ScaleLimits, LoadRange):
    """A token-flow market kept live for fast re-solves.

    ``Market(scenario, transfer_aware=True, formulation="path", latency_limits_ms=None,
    value_of_lost_load=None)`` checks its arguments (each error names the argument),
    builds the LP once and keeps the HiGHS instance.  :meth:`solve` changes numbers in
    place (keywords in :data:`~tokenflow.clearing.changes.CHANGES`) and re-solves from the previous basis.

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

    # ------------------------------------------------------------------ solve
    def solve(self, **changes) -> MarketResult:  # noqa: F821 - results imported lazily below
        """Apply ``changes`` (see :data:`~tokenflow.clearing.changes.CHANGES`; they persist) and clear the market.

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
