"""The long-run planning LP: where the next gigabit and megawatt should go.

``tokenflow.plan(scenario, ...)`` solves the market of one representative hour with the
capacities as variables.  On top of the market LP (:mod:`tokenflow.lp.model`, :mod:`tokenflow.lp.arc`) it adds

* ``x[l] >= 0``: Gbps added to fibre link ``l`` (both directions, as the scenario's
  ``bandwidth_gbps``), cost ``k_link x route_km[l] / hours`` $/h per Gbps, entering the
  bandwidth rows of both arcs as ``load <= 450 (B[l] + x[l])`` GB/h;
* ``z[n] >= 0``: kW of AI compute (IT power) added at node ``n``, cost ``k_node / 1000 /
  hours`` $/h per kW, entering the compute row ``sum g y <= G[n] + z[n]`` kW,

with ``k_link`` in $ per Gbps per route-km per year and ``k_node`` in $ per MW-year
(annualised with the capital recovery factor of :func:`annuity`), ``hours`` the hours the
representative hour stands for (8760: a year at this demand).  The duals are long-run
prices and rents.  At the optimum the reduced cost of every added unit is zero, so for an
expanded link ``450 (rho[a->b] + rho[b->a]) x hours = k_link x route_km`` and for an
expanded node ``1000 mu x hours = k_node``: the rents recover exactly the annualised cost
of the marginal unit (and at most that where nothing is built).

Both formulations: the path formulation (default) generates routes by exact column
generation, pricing them with the long-run rents, so latency limits are exact; the arc
formulation is exact where no latency limit binds and raises
:class:`~tokenflow.core.errors.TokenflowError` where one does (it would relax it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..core import validate as _v
from ..core.errors import ScenarioError, SolverError, TokenflowError
from ..lp.arc import ArcStructure, exact_arc_structure
from ..lp.inputs import GBPS_TO_GB_PER_H, build_inputs, check_bool, check_number, check_scenario
from ..lp.model import LPArrays
from ..lp.solver import LiveLP, verify
from ..scenarios.scenario_class import Scenario
from .costs import HOURS_PER_LEAP_YEAR, HOURS_PER_YEAR, CapitalCosts, _costs


def _subset(given: Sequence[str] | None, allowed: list[str], name: str) -> np.ndarray:
    if given is None:
        return np.ones(len(allowed), dtype=bool)
    chosen = _v.names(given, name, "plan", allowed=allowed, kind="names")  # read once (a generator too)
    return np.isin(np.array(allowed, dtype=object), np.array(chosen, dtype=object))


class PlanResult:
    """The optimal plan as a labelled Dataset (``dataset``) and the planned scenario.

    Dims: ``fibre`` (fibre links, as the scenario names them), ``link`` (directed arcs
    ``a->b``), ``node``, ``workload``.  Units in each variable's ``attrs["unit"]``."""

    def __init__(self, dataset: xr.Dataset, scenario: Scenario, settings: dict) -> None:
        self.dataset = dataset
        self.scenario = scenario  # today's capacities plus the additions
        self.settings = settings  # tokenflow.solve keywords that clear the planned scenario

    @property
    def objective(self) -> float:
        """Operating plus annualised capital cost of the representative hour, $/h."""
        return float(self.dataset["objective"])

    @property
    def prices(self) -> xr.DataArray:
        return self.dataset["price"]

    def cost_recovery(self) -> pd.DataFrame:
        """Per fibre link and node: built (Gbps / MW), rent x hours and the annualised cost of
        the marginal unit ($ per Gbps-year or MW-year), their ratio and the residual."""
        ds = self.dataset
        link = pd.DataFrame({"kind": "link", "added": ds["link_added_gbps"].values,
                             "rent_x_hours": ds["link_rent_per_gbps_year"].values,
                             "annualised_cost": ds["link_cost_per_gbps_year"].values},
                            index=[str(x) for x in ds["fibre"].values])
        node = pd.DataFrame({"kind": "node", "added": ds["node_added_mw"].values,
                             "rent_x_hours": ds["node_rent_per_mw_year"].values,
                             "annualised_cost": ds["node_cost_per_mw_year"].values},
                            index=[str(x) for x in ds["node"].values])
        out = pd.concat([link, node])
        out["expandable"] = np.r_[ds["link_expandable"].values, ds["node_expandable"].values]
        out["ratio"] = out["rent_x_hours"] / out["annualised_cost"]
        out["residual"] = out["rent_x_hours"] - out["annualised_cost"]
        return out

    def settlement(self) -> pd.Series:
        """Long-run money per hour ($/h): demand pays the long-run prices; that covers processing
        and transfer cost, compute rents and congestion rents (``imbalance`` ~ 0, LP duality).
        ``capital_cost`` is the annualised cost of the additions per hour and
        ``rents_on_expanded`` the rents earned by the links and nodes the plan expands: they
        pay the additions at the marginal cost, and today's capacity of those assets too."""
        ds = self.dataset
        served = ds["demand"] - ds["unserved"]
        out = {"payments": float((ds["price"] * served).sum()),
               "processing_cost": float(ds["processing_cost"]), "transfer_cost": float(ds["transfer_cost"]),
               "compute_rents": float((ds["compute_rent"] * ds["compute_used"]).sum()),
               "congestion_rents": float((ds["congestion_rent"] * ds["link_load"]).sum())}
        out["lost_load_cost"] = float(ds["operating_cost"]) - out["processing_cost"] - out["transfer_cost"]
        out["imbalance"] = out["payments"] - (out["processing_cost"] + out["transfer_cost"] + out["compute_rents"]
                                              + out["congestion_rents"])
        added_link = np.repeat(ds["link_added_gbps"].values > 0, 2)
        out["capital_cost"] = float(ds["capital_cost"])
        out["rents_on_expanded"] = float((ds["congestion_rent"] * ds["link_load"]).values[added_link].sum()
                                         + (ds["compute_rent"] * ds["compute_used"]).values[
                                             ds["node_added_mw"].values > 0].sum())
        return pd.Series(out, name="$/h")

    def __repr__(self) -> str:
        ds = self.dataset
        return (f"<PlanResult {ds.attrs['scenario']} scale={ds.attrs['demand_scale']:g} "
                f"+{float(ds['link_added_gbps'].sum()):,.1f} Gbps +{float(ds['node_added_mw'].sum()):,.2f} MW "
                f"objective={self.objective:,.2f} $/h>")


def insert_columns(arr: LPArrays, n_aux: int, cost: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                   rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> LPArrays:
    """``arr`` with new columns (``cols`` counted from 0 among the new ones) inserted after its
    ``n_aux`` first columns, so that columns appended later (column generation) keep the
    new ones in place and the live model is only extended."""
    from scipy.sparse import csc_array, hstack

    A = csc_array((arr.data, arr.indices, arr.indptr), shape=(arr.n_rows, arr.n_cols))
    E = csc_array((vals, (rows, cols)), shape=(arr.n_rows, len(cost)))
    full = hstack([A[:, :n_aux], E, A[:, n_aux:]], format="csc")
    full.sort_indices()

    def ins(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.r_[a[:n_aux], b, a[n_aux:]]

    return dataclasses.replace(arr, cost=ins(arr.cost, cost), col_lb=ins(arr.col_lb, lb), col_ub=ins(arr.col_ub, ub),
                               indptr=full.indptr.astype(np.int64), indices=full.indices.astype(np.int32),
                               data=full.data, cache=None)


def _with_expansions(arr: LPArrays, n_aux: int, first_row: int, N: int, F: int, link_cost_h: np.ndarray,
                     node_cost_h: np.ndarray, link_ok: np.ndarray, node_ok: np.ndarray) -> LPArrays:
    """``arr`` with the F + N expansion columns inserted after its ``n_aux`` first columns:
    link ``l`` adds 450 GB/h to both its arcs' bandwidth rows, node ``n`` one kW to its
    compute row (``first_row``: the first compute row)."""
    B = first_row + N
    rows = np.r_[B + np.c_[2 * np.arange(F), 2 * np.arange(F) + 1].reshape(-1), first_row + np.arange(N)]
    cols = np.r_[np.repeat(np.arange(F), 2), F + np.arange(N)]
    vals = np.r_[np.full(2 * F, -GBPS_TO_GB_PER_H), -np.ones(N)]
    return insert_columns(arr, n_aux, np.r_[link_cost_h, node_cost_h], np.zeros(F + N),
                          np.r_[np.where(link_ok, np.inf, 0.0), np.where(node_ok, np.inf, 0.0)], rows, cols, vals)


def path_column_generation(inp_lp, inp_price, scale: float, extend, what: str) -> tuple:
    """Exact column generation of the path LP of ``inp_lp`` extended by ``extend(arr) ->
    LPArrays`` (extra columns inserted after the N x K first ones), routes priced on
    ``inp_price`` (the capacities there say which nodes can process).  Returns
    (x, y, objective, LP, columns, rounds, Solution of the path columns)."""
    from ..clearing.engine import MAX_CG_ROUNDS, Solution
    from ..lp.model import PathColumns, path_lp
    from ..lp.routes import LAT_TOL, Graph, cheapest, price

    N, K, L = inp_lp.N, inp_lp.K, inp_lp.L
    nK = N * K
    G = Graph(inp_price)
    cols = PathColumns()
    items = [(int(o), int(o), (), k) for o in np.nonzero(inp_price.capacity_kw > 0)[0] for k in range(K)]
    best = cheapest(inp_price, G, np.zeros(N), np.zeros(L), np.ones((N, K), dtype=bool))
    cols.add(items + [(o, n, arcs, k) for (o, k), (_, n, arcs) in best.items()])
    live = LiveLP()

    def run(elastic: bool):
        """Column generation to convergence; None if the restricted LP is infeasible.  With
        ``elastic`` (phase 1) demand rows may go unserved at a penalty above any route's cost."""
        for rounds in range(1, MAX_CG_ROUNDS + 1):
            on = cols.rtt_ms(inp_price) <= inp_lp.latency_ms[cols.k] + LAT_TOL
            full = extend(path_lp(inp_lp, cols, cols.entries(inp_lp), scale, on))
            if elastic:
                cost, ub = full.cost.copy(), full.col_ub.copy()
                shut = ub[:nK] == 0
                cost[:nK][shut] = 1e3 * (1.0 + float(np.abs(full.cost).max(initial=0.0)))
                ub[:nK][shut] = np.inf
                full = dataclasses.replace(full, cost=cost, col_ub=ub)
            live.sync(full)
            cond = live.run()
            if cond == "infeasible":
                return None
            if cond != "optimal":
                raise SolverError(f"{what}: HiGHS ended with '{cond}'")
            x, y, obj = live.solution()
            lam, mu, rho = y[:nK].reshape(N, K), -y[nK:nK + N], -y[nK + N:nK + N + L]
            new = price(inp_price, G, lam, mu, rho, with_costs=True, exists=cols.exists)
            if not new or not cols.add([(o, n, arcs, k) for o, n, arcs, k, _ in new]):
                return x, y, obj, full, lam, rounds, (shut if elastic else None)
        raise SolverError(f"{what}: column generation did not converge in {MAX_CG_ROUNDS} rounds")

    out = run(False)
    if out is None:  # the first columns cannot serve the demand: phase 1 finds the routes that can
        p1 = run(True)
        tol = 1e-9 * max(1.0, scale * float(np.abs(inp_lp.base_demand).sum()))
        if p1 is None or float(p1[0][:nK][p1[6]].sum()) > tol:
            raise _infeasible(what, scale)
        out = run(False)
        if out is None:
            raise _infeasible(what, scale)
    x, y, obj, full, lam, rounds, _ = out
    n_extra = full.n_cols - nK - len(cols)
    xs = np.r_[x[:nK], x[nK + n_extra:]]
    sol = Solution(inp_lp, "path", scale, xs, lam, np.zeros(N), np.zeros(L), obj, {}, col_route=cols.route,
                   col_k=cols.k, routes=cols.pool.arrays())
    return x, y, obj, full, cols, rounds, sol


def _infeasible(what: str, scale: float) -> TokenflowError:
    if what == "plan":
        return TokenflowError(f"plan: no plan serves demand scale {scale:g}: demand exceeds what today's capacity "
                              "plus the expandable links and nodes can serve within the latency limits; allow more "
                              "links or nodes to be expanded, or lower the demand scale")
    return TokenflowError(f"{what}: the market cannot clear: demand without bids or value of lost load exceeds "
                          "what the offered capacity and the links can serve within the latency limits")


def _with_today_s_star(exc: TokenflowError, s: Scenario, settings: dict) -> TokenflowError:
    """``exc`` (plan infeasible) with s* of today's capacities appended, when it can be computed."""
    from ..clearing.engine import Market

    try:
        lim = Market(s, **settings).scale_limit().max_scale
    except TokenflowError:
        return exc
    return TokenflowError(f"{exc} (s* with today's capacity = {lim:.6g})")


def arc_dispatch(st: ArcStructure, inp, xs: np.ndarray, n_first: int) -> tuple[np.ndarray, np.ndarray]:
    """Processing (node x workload, M tokens/h) and directed-link token flow (link x workload)
    of an arc-formulation solution ``xs`` whose first ``n_first`` entries are not flows."""
    N, K = inp.N, inp.K
    f = xs[n_first:n_first + st.n_flow]
    yv = xs[n_first + st.n_flow:]
    proc = np.zeros((N, K))
    np.add.at(proc, (st.y_n, st.com_k[st.y_c]), yv)
    link_tok = np.zeros((inp.L, K))
    np.add.at(link_tok, (st.f_a, st.com_k[st.f_c]), f)
    return proc, link_tok


def _solve_live(live: LiveLP, arr: LPArrays, scale: float, what: str = "plan") -> tuple[np.ndarray, np.ndarray,
                                                                                         float]:
    live.sync(arr)
    cond = live.run()
    if cond == "infeasible":
        raise _infeasible(what, scale)
    if cond != "optimal":
        raise SolverError(f"{what}: HiGHS ended with '{cond}'")
    return live.solution()


def plan(scenario: Scenario, *, demand_scale: float = 1.0, costs: CapitalCosts | Mapping | None = None,
         hours: float = HOURS_PER_YEAR, transfer_aware: bool = True, formulation: str = "path",
         latency_limits_ms: Mapping[str, float] | None = None,
         value_of_lost_load: float | Mapping[str, float] | None = None,
         expandable_links: Sequence[str] | None = None, expandable_nodes: Sequence[str] | None = None) -> PlanResult:
    """Optimal link bandwidth and node AI capacity for ``demand_scale`` x base demand.

    Capacities are variables at or above today's values; additions cost their annualised
    capital cost (``costs``: :class:`CapitalCosts`, a mapping of overrides, or None for
    the sourced defaults) spread over ``hours`` hours a year.  ``expandable_links`` /
    ``expandable_nodes``: names that may grow (default all); a node may be built where
    there is no capacity today.  ``formulation``: ``"path"`` (routes by exact column
    generation, latency limits exact; default) or ``"arc"`` (exact only where no latency
    limit binds: binding limits raise :class:`TokenflowError`).  Returns a :class:`PlanResult`.

    Raises :class:`ScenarioError` for bad arguments, :class:`TokenflowError` when no plan
    can serve the demand, :class:`SolverError` if HiGHS fails."""
    from ..clearing.results import _flows
    from ..clearing.rules import check_sizes, first_token_prices
    from ..lp.inputs import check_formulation
    from ..lp.model import check_magnitudes

    s = check_scenario(scenario)
    formulation = check_formulation(formulation)
    scale = check_number(demand_scale, "demand_scale", "(multiplier)")
    hours = _v.number(hours, "hours", "plan", lo=1.0, hi=HOURS_PER_LEAP_YEAR, unit="h per year")
    transfer_aware = check_bool(transfer_aware, "transfer_aware")
    cc = _costs(costs)
    inp = build_inputs(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms,
                       value_of_lost_load=value_of_lost_load)
    fibre = [str(x) for x in s.links.index]
    F, N, K = len(fibre), inp.N, inp.K
    link_ok = _subset(expandable_links, fibre, "expandable_links")
    node_ok = _subset(expandable_nodes, list(inp.node_ids), "expandable_nodes")
    # structure: every node that may be built on can process
    sinp = dataclasses.replace(inp, capacity_kw=np.where(node_ok, np.maximum(inp.capacity_kw, 1.0), inp.capacity_kw))
    # fibre route length (km) from the one-way latency: great circle x route factor (tokenflow.scenarios.network)
    route_km = inp.arc_latency_ms[0::2] * 1000.0 / float(s.params["fiber_delay_us_per_km"])
    link_cost_year = cc.link_usd_per_gbps_km_year * route_km  # $ per Gbps-year
    node_cost_year = np.full(N, cc.node_usd_per_mw_year)  # $ per MW-year
    lc_h, nc_h = link_cost_year / hours, node_cost_year / 1000.0 / hours
    # the engine's size checks (capacities, demand) and the capital costs per hour
    check_sizes(inp, scale)
    check_magnitudes("link capital cost per Gbps-hour", lc_h, "$/h")
    check_magnitudes("node capital cost per kW-hour", nc_h, "$/h")
    nK = N * K
    try:
        rounds = 1
        if formulation == "arc":
            st = exact_arc_structure(sinp, "plan")
            arr = st.lp(inp, scale)
            nb = len(st.r_c)
            full = _with_expansions(arr, nK, nb, N, F, lc_h, nc_h, link_ok, node_ok)
            x, y, obj = _solve_live(LiveLP(), full, scale)
            lam = y[st.origin_row.reshape(-1)].reshape(N, K)
            xs = np.r_[x[:nK], x[nK + F + N:]]
            proc, link_tok = arc_dispatch(st, inp, xs, nK)
        else:
            nb = nK
            x, y, obj, full, _, rounds, sol = path_column_generation(
                inp, sinp, scale, lambda arr: _with_expansions(arr, nK, nK, N, F, lc_h, nc_h, link_ok, node_ok), "plan")
            lam = sol.lam
            proc, _, link_tok, _, _ = _flows(sol, origins=False)
    except TokenflowError as exc:
        if type(exc) is TokenflowError and str(exc).startswith("plan: no plan serves"):
            raise _with_today_s_star(exc, s, {"transfer_aware": transfer_aware, "latency_limits_ms": latency_limits_ms,
                                              "value_of_lost_load": value_of_lost_load}) from None
        raise
    n_exp = nK + np.arange(F + N)

    def row_name(i: int) -> str:
        if i < nb:
            return f"demand/balance[{i}]"
        i -= nb
        return f"compute[{inp.node_ids[i]}]" if i < N else f"bandwidth[{inp.link_ids[i - N]}]"

    names = fibre + list(inp.node_ids)
    verify(full, x, y, row_name, lambda j: f"addition[{names[j - nK]}]" if j in n_exp else f"column {j}")
    add_gbps = np.maximum(x[nK:nK + F], 0.0)
    add_kw = np.maximum(x[nK + F:nK + F + N], 0.0)
    mu = np.maximum(-y[nb:nb + N], 0.0)
    rho = np.maximum(-y[nb + N:nb + N + inp.L], 0.0)
    cap_kw = inp.capacity_kw + add_kw
    # zero-demand cells: the engine's price of the first token, at the long-run rents
    lam = np.array(lam, dtype=float)
    planned_inp = dataclasses.replace(inp, capacity_kw=cap_kw)
    first_token_prices(planned_inp, lam, mu, rho, scale, arc=st if formulation == "arc" else None)
    lam = lam + 0.0
    capital = float(add_gbps @ link_cost_year + add_kw / 1000.0 @ node_cost_year) / hours
    unserved = np.maximum(x[:nK], 0).reshape(N, K)
    load_gbh = link_tok @ inp.fwd_gb + link_tok[inp.rev_arc] @ inp.rev_gb if inp.L else np.zeros(0)
    transfer = float((link_tok * (inp.fwd_gb[None, :] * inp.arc_cost[:, None]
                                  + inp.rev_gb[None, :] * inp.arc_cost[inp.rev_arc][:, None])).sum()) if inp.L else 0.0
    cap_gbh = inp.arc_capacity_gbh + GBPS_TO_GB_PER_H * np.repeat(add_gbps, 2)
    today_gbps = inp.arc_capacity_gbh[0::2] / GBPS_TO_GB_PER_H

    def da(values, dims, unit, desc):
        return (dims, values, {"unit": unit, "description": desc})

    with np.errstate(divide="ignore", invalid="ignore"):
        util = load_gbh / cap_gbh
    ds = xr.Dataset({
        "link_bandwidth_today": da(today_gbps, "fibre", "Gbps", "bandwidth per direction today"),
        "link_added_gbps": da(add_gbps, "fibre", "Gbps", "bandwidth per direction added"),
        "link_bandwidth_planned": da(today_gbps + add_gbps, "fibre", "Gbps", "planned bandwidth per direction"),
        "link_route_km": da(route_km, "fibre", "km", "fibre route length"),
        "link_expandable": da(link_ok, "fibre", "", "may be expanded"),
        "link_cost_per_gbps_year": da(link_cost_year, "fibre", "$/Gbps-year", "annualised cost of one more Gbps"),
        "link_rent_per_gbps_year": da(GBPS_TO_GB_PER_H * (rho[0::2] + rho[1::2]) * hours, "fibre",
                                      "$/Gbps-year", "congestion rents of both directions x hours"),
        "node_capacity_today": da(inp.capacity_kw / 1000.0, "node", "MW", "AI compute (IT power) today"),
        "node_added_mw": da(add_kw / 1000.0, "node", "MW", "AI compute (IT power) added"),
        "node_capacity_planned": da(cap_kw / 1000.0, "node", "MW", "planned AI compute (IT power)"),
        "node_expandable": da(node_ok, "node", "", "may be expanded"),
        "node_cost_per_mw_year": da(node_cost_year, "node", "$/MW-year", "annualised cost of one more MW"),
        "node_rent_per_mw_year": da(1000.0 * mu * hours, "node", "$/MW-year", "compute rent x hours"),
        "price": da(lam, ("node", "workload"), "$/M tokens", "long-run locational price (demand dual)"),
        "compute_rent": da(mu, "node", "$/kWh", "long-run compute rent (capacity dual)"),
        "congestion_rent": da(rho, "link", "$/GB", "long-run congestion rent (capacity dual)"),
        "processing": da(proc, ("node", "workload"), "M tokens/h", "tokens processed at node"),
        "demand": da(scale * inp.base_demand, ("node", "workload"), "M tokens/h", "demand at this scale"),
        "unserved": da(unserved, ("node", "workload"), "M tokens/h", "demand not served (with a VoLL)"),
        "link_load": da(load_gbh, "link", "GB/h", "load as the model counts it"),
        "processing_cost": da(float((proc * inp.proc_cost).sum()), (), "$/h", "energy + other opex"),
        "transfer_cost": da(transfer, (), "$/h", "transfer charges"),
        "link_flow": da(link_tok, ("link", "workload"), "M tokens/h", "tokens carried on link"),
        "link_utilization": da(util, "link", "1", "share of planned capacity used"),
        "compute_used": da(proc @ inp.intensity, "node", "kW", "IT power used"),
        "objective": da(obj, (), "$/h", "operating + annualised capital cost"),
        "capital_cost": da(capital, (), "$/h", "annualised capital cost of the additions per hour"),
        "operating_cost": da(obj - capital, (), "$/h", "operating cost (incl. lost load)"),
    }, coords={"fibre": fibre, "node": inp.node_ids, "workload": inp.workload_ids, "link": inp.link_ids,
               "link_origin": ("link", [inp.node_ids[i] for i in inp.au]),
               "link_target": ("link", [inp.node_ids[i] for i in inp.av]),
               "fibre_a": ("fibre", s.links["a"].astype(str).to_list()),
               "fibre_b": ("fibre", s.links["b"].astype(str).to_list()),
               "lat": ("node", s.nodes["lat"].to_numpy(float)), "lon": ("node", s.nodes["lon"].to_numpy(float))})
    ds.attrs = {"scenario": s.name, "demand_scale": scale, "hours": hours, "formulation": formulation,
                "transfer_aware": int(transfer_aware), "costs": str(dataclasses.asdict(cc)),
                "node_usd_per_mw_year": cc.node_usd_per_mw_year, "cg_rounds": rounds}
    planned = _planned_scenario(s, inp, add_gbps, add_kw, link_ok, node_ok)
    settings = {"demand_scale": scale, "transfer_aware": transfer_aware, "formulation": formulation,
                "latency_limits_ms": latency_limits_ms, "value_of_lost_load": value_of_lost_load}
    return PlanResult(ds, planned, settings)


def _planned_scenario(s: Scenario, inp, add_gbps: np.ndarray, add_kw: np.ndarray, link_ok, node_ok) -> Scenario:
    """``s`` with the additions: bandwidth per fibre link, capacity_mw grown by the added AI
    compute divided by ``ai_share``."""
    today = inp.arc_capacity_gbh[0::2] / GBPS_TO_GB_PER_H
    links = {lk: {"bandwidth_gbps": float(today[i] + add_gbps[i])}
             for i, lk in enumerate(s.links.index) if add_gbps[i] > 0}
    cap = s.nodes["capacity_mw"].to_numpy(float)
    nodes = {n: {"capacity_mw": float(cap[j] + add_kw[j] / 1000.0 / inp.ai_share)}
             for j, n in enumerate(inp.node_ids) if add_kw[j] > 0}
    if not links and not nodes:
        return s
    return s.replace(links=links or None, nodes=nodes or None)


# --------------------------------------------------------------- the backbone's cost recovery

FROM_SCRATCH_GBPS = 1e-9  # legacy bandwidth of a plan "from scratch" (1 bit/s per link): a scenario refuses 0


def with_legacy_bandwidth(scenario: Scenario, gbps: float) -> Scenario:
    """``scenario`` with every fibre link at ``gbps`` per direction (the legacy backbone the
    plan starts from; positive: a scenario refuses a zero-bandwidth link).  Nodes unchanged."""
    s = check_scenario(scenario)
    gbps = check_number(gbps, "legacy bandwidth (0 is refused: plan from scratch at FROM_SCRATCH_GBPS)", "Gbps",
                        allow_zero=False)
    return s.replace(links={str(lk): {"bandwidth_gbps": gbps} for lk in s.links.index})


def _link_rents_and_costs(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per fibre link ($ per year): congestion rents of both directions x hours, and the
    annualised cost of all its planned bandwidth (arcs ``2i``, ``2i + 1`` are fibre ``i``)."""
    per_arc = ds["congestion_rent"].values * ds["link_load"].values * float(ds.attrs["hours"])
    cost = ds["link_bandwidth_planned"].values * ds["link_cost_per_gbps_year"].values
    return per_arc.reshape(-1, 2).sum(axis=1), cost


def backbone_recovery(result: PlanResult) -> pd.Series:
    """Congestion rents of a plan against the annualised cost of its whole backbone (every
    planned Gbps, legacy and added, at the cost of one more Gbps), $ per year, split between
    the links the plan expands and those it leaves at their legacy bandwidth.

    ``recovered`` = rents / cost (a share).  With linear costs every expanded link earns its
    whole cost (rent per Gbps-year = marginal cost, times its planned Gbps); the shortfall is
    what the links left alone cost beyond their rents."""
    if not isinstance(result, PlanResult):
        raise ScenarioError(f"backbone_recovery: expected a PlanResult, got {type(result).__name__}")
    ds = result.dataset
    rents, cost = _link_rents_and_costs(ds)
    added = ds["link_added_gbps"].values
    expanded = added > 1e-6 * max(1.0, float(added.max(initial=0.0)))
    return pd.Series({
        "legacy_gbps_mean": float(ds["link_bandwidth_today"].mean()),
        "added_gbps": float(added.sum()),
        "links_expanded": int(expanded.sum()),
        "backbone_cost_usd_per_year": float(cost.sum()),
        "rents_usd_per_year": float(rents.sum()),
        "expanded_cost_usd_per_year": float(cost[expanded].sum()),
        "expanded_rents_usd_per_year": float(rents[expanded].sum()),
        "idle_cost_usd_per_year": float(cost[~expanded].sum()),
        "idle_rents_usd_per_year": float(rents[~expanded].sum()),
        "recovered": float(rents.sum() / cost.sum()) if cost.sum() > 0 else math.nan,
    })


def link_recovery(result: PlanResult) -> pd.DataFrame:
    """Per fibre link: planned and added Gbps, rents x hours and the annualised cost of the
    whole planned bandwidth ($ per year), and their ratio (1 on every expanded link)."""
    if not isinstance(result, PlanResult):
        raise ScenarioError(f"link_recovery: expected a PlanResult, got {type(result).__name__}")
    ds = result.dataset
    rents, cost = _link_rents_and_costs(ds)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(cost > 0, rents / cost, np.nan)
    return pd.DataFrame({"planned_gbps": ds["link_bandwidth_planned"].values,
                         "added_gbps": ds["link_added_gbps"].values,
                         "rents_usd_per_year": rents, "cost_usd_per_year": cost, "recovered": ratio},
                        index=pd.Index([str(x) for x in ds["fibre"].values], name="fibre"))


def legacy_recovery(scenario: Scenario, legacy_gbps: Sequence[float], *, demand_scale: float = 1.0,
                    **plan_kwargs) -> pd.DataFrame:
    """:func:`backbone_recovery` of :func:`plan` with every link's legacy bandwidth at each of
    ``legacy_gbps`` (Gbps per direction; 0 plans from scratch, at :data:`FROM_SCRATCH_GBPS`).
    One row per legacy bandwidth (index ``legacy_gbps``, as asked)."""
    values = [check_number(b, "legacy_gbps", "Gbps")
              for b in _v.items_of(legacy_gbps, "legacy_gbps", "legacy_recovery", kind="bandwidths")]
    if not values:
        raise ScenarioError("legacy_recovery: give at least one legacy bandwidth")
    rows = {}
    for b in values:
        s = with_legacy_bandwidth(scenario, b if b > 0 else FROM_SCRATCH_GBPS)
        rows[b] = backbone_recovery(plan(s, demand_scale=demand_scale, **plan_kwargs))
    out = pd.DataFrame(rows).T
    out.index.name = "legacy_gbps"
    return out
