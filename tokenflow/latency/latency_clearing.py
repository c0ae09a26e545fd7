"""Latency-consistent clearing by the older fixed-point procedure, kept as a documented comparison
(issue 27): its end point depends on where it starts.  The market with one optimal cost is
:mod:`tokenflow.latency.latency_lp`, which reuses this module's argument checks and limits.

The LP admits a route when its network round trip is within the workload's limit.  Here the
limit is end to end (RTT + wait + prefill + first step, at the 99th percentile, see
:mod:`tokenflow.latency.queueing`), and two levers make the cleared market honour it:

1. **routes**: a workload's network limit becomes ``min(LP limit, end-to-end limit - processing
   quantile of an idle replica)``; routes slower than that cannot meet the limit at any load.
2. **capacity**: each node may only be loaded to the utilisation at which every workload it
   serves meets its limit on its slowest route in use.  With pool ``k`` allowed ``rho*_k``
   (within the peak minute when ``peak``), the node's usable share of its GPUs is the
   load-weighted harmonic mean ``sum(load_k) / sum(load_k / rho*_k)``; workloads without a
   limit (batch training) have ``rho* = 1``.

Iterate: clear -> node delays at the cleared routes and mix -> derate each node whose
utilisation exceeds its usable share -> clear again, until no node exceeds it by more than
``tol``.  Capacity factors only ever decrease; the iteration stops at the tolerance or after
``max_iter`` clearings (then ``converged`` is False); each iteration is reported.  Each
clearing is tie-broken (:func:`tie_broken_solve`): node totals of an optimal dispatch are
unique but the workload mix at a node is not, and the usable shares read the mix, so a second
stage at the LP's optimal cost picks one dispatch by a fixed generic objective; prices are the
LP's.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..clearing.market import solve
from ..core.errors import InfeasibleMarketError, TokenflowError
from .market_latency import load_shares, market_latency, pool_replicas, route_rtts
from .profiles import ServiceProfile, serving_profiles
from .queueing import arrival_scv, max_utilisation, replica_latency


@dataclass
class LatencyClearing:
    """Outcome of :func:`latency_consistent_clearing`.

    ``result``: the market at the fixed point; ``network_only``: the paper's reading (first
    clearing, RTT-only limits); ``scenario``: the derated scenario; ``capacity_factor``:
    usable share of each node's AI capacity; ``network_limits_ms``: the tightened RTT limits;
    ``iterations``: one row per clearing; ``latency``: :func:`market_latency` at the fixed
    point with each pool at its own utilisation and GPU share (:func:`fixed_point_pools`), in
    the busiest minute when cleared with ``peak``; ``converged``: no node above its share."""

    result: object
    network_only: object
    scenario: object
    capacity_factor: pd.Series
    network_limits_ms: dict[str, float]
    iterations: pd.DataFrame
    latency: xr.Dataset
    pool_rho_max: pd.DataFrame
    converged: bool


def _real(name: str, v, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
          hi_open: bool = False) -> float:
    """``v`` as a finite float within the bounds, or a :class:`TokenflowError` naming ``name``."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TokenflowError(f"latency_consistent_clearing: {name} must be a number, got {v!r}")
    try:
        x = float(v)
    except OverflowError:  # an integer beyond a float (10**400)
        x = math.inf
    if not math.isfinite(x):
        raise TokenflowError(f"latency_consistent_clearing: {name} must be a finite number, got {v!r:.80}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise TokenflowError(f"latency_consistent_clearing: {name} must be {'>' if lo_open else '>='} {lo:g}, "
                             f"got {v!r}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise TokenflowError(f"latency_consistent_clearing: {name} must be {'<' if hi_open else '<='} {hi:g}, "
                             f"got {v!r}")
    return x


def _check_args(s, demand_scale, latency_limits_ms, profiles, q, peak, transfer_aware, max_iter, tol,
                damping=None, tie_break=True) -> None:
    """Every argument of :func:`latency_consistent_clearing`, each problem naming the argument."""
    from ..scenarios.scenario_class import Scenario

    if not isinstance(s, Scenario):
        raise TokenflowError(f"latency_consistent_clearing: s must be a Scenario, got {type(s).__name__}")
    _real("demand_scale", demand_scale, lo=0.0, lo_open=True)
    _real("q", q, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    _real("tol", tol, lo=0.0)
    if damping is not None:
        _real("damping", damping, lo=0.0, hi=1.0, lo_open=True)
    if isinstance(max_iter, (bool, np.bool_)) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise TokenflowError(f"latency_consistent_clearing: max_iter must be a whole number >= 1, got {max_iter!r}")
    for name, v in (("peak", peak), ("transfer_aware", transfer_aware), ("tie_break", tie_break)):
        if not isinstance(v, (bool, np.bool_)):
            raise TokenflowError(f"latency_consistent_clearing: {name} must be True or False, got {v!r}")
    if profiles is not None:
        if not isinstance(profiles, Mapping) or not all(isinstance(p, ServiceProfile) for p in profiles.values()):
            raise TokenflowError("latency_consistent_clearing: profiles must map workload to ServiceProfile")
        from ..core import validate as _v

        _v.profiles(profiles, "profiles", "latency_consistent_clearing")
        unknown = sorted(set(map(str, profiles)) - set(s.workload_ids))
        if unknown:
            raise TokenflowError(f"latency_consistent_clearing: profiles name unknown workloads {unknown}")
    if latency_limits_ms is not None:
        if not isinstance(latency_limits_ms, Mapping):
            raise TokenflowError("latency_consistent_clearing: latency_limits_ms must map workload to ms")
        for w, v in latency_limits_ms.items():
            if w not in s.workload_ids:
                raise TokenflowError(f"latency_consistent_clearing: latency_limits_ms names unknown workload {w!r}")
            _real(f"latency_limits_ms[{w!r}]", v, lo=0.0, lo_open=True)


def network_limits(s, profiles: dict[str, ServiceProfile], latency_limits_ms: dict[str, float] | None = None,
                   q: float = 0.99) -> dict[str, float]:
    """RTT limit per workload: the LP's limit, tightened so that an idle replica's processing
    quantile still fits in the end-to-end limit (ms)."""
    lim = s.workloads["latency_limit_ms"].astype(float).to_dict()
    lim.update(latency_limits_ms or {})
    out = {}
    for w, v in lim.items():
        p = profiles.get(w)
        if p is None or p.limit_ms is None:
            out[w] = float(v)
            continue
        idle = replica_latency(p, 0.0, 1.0, q)["p_ms"]
        out[w] = float(min(v, p.limit_ms - idle))
        if out[w] < 0:
            raise TokenflowError(f"{w}: an idle replica already needs {idle:.0f} ms at p{q * 100:g}, more than the "
                                 f"end-to-end limit {p.limit_ms:g} ms")
    return out


def pool_limits(result, s, profiles: dict[str, ServiceProfile], capacity_kw: pd.Series, q: float = 0.99,
                peak: bool = True, rtt: xr.Dataset | None = None) -> pd.DataFrame:
    """rho*[node, workload]: the largest LP utilisation at which the workload meets its
    end-to-end limit on the slowest route it uses into the node (:func:`route_rtts`) (within the peak minute when
    ``peak``), in the LP's unit (the pool's own limit over
    :meth:`~tokenflow.latency.profiles.ServiceProfile.lp_to_pool_utilisation`, 1 for profiles built on
    the LP's capacity), and at most the profile's ``max_pool_utilisation`` where it has one
    (a cap validated outside the analytic layer, :func:`tokenflow.latency.simulate.layer_check`);
    1 for workloads without a limit, NaN where the workload is not processed.
    ``rtt``: :func:`~tokenflow.latency.market_latency.route_rtts` of ``result`` if already computed."""
    ds = result.dataset
    nodes, wls = list(ds["node"].values), list(ds["workload"].values)
    proc = ds["processing"].to_pandas()
    rtt = (route_rtts(result, s, mean=False) if rtt is None else rtt)["rtt_max_ms"]
    tr = ds["transfers"]
    share = load_shares(result, s)
    out = pd.DataFrame(np.nan, index=pd.Index(nodes, name="node"), columns=pd.Index(wls, name="workload"))
    for w in wls:
        p = profiles.get(w)
        for n in nodes:
            if proc.loc[n, w] <= 0:
                continue
            if p is None:
                out.loc[n, w] = 1.0
                continue
            if p.limit_ms is None:  # no latency limit: only saturation, in the LP's unit
                out.loc[n, w] = min(1.0, 1.0 / p.lp_to_pool_utilisation())
                continue
            origins = tr.sel(node=n, workload=w).to_pandas()
            worst = (float(rtt.sel(node=n, workload=w).max(skipna=True)) if (origins > 1e-9).any() else 0.0)
            reps = pool_replicas(capacity_kw[n], share.loc[n, w], p)
            rho = max_utilisation(p, p.limit_ms - worst, arrival_scv(p), q, reps)
            if p.max_pool_utilisation is not None:  # a cap from outside the analytic layer
                rho = min(rho, p.max_pool_utilisation)
            # rho is the pool's own utilisation; the LP's is smaller by lp_to_pool_utilisation
            out.loc[n, w] = rho / (p.peak_to_mean() if peak else 1.0) / p.lp_to_pool_utilisation()
    return out


def usable_share(result, s, rho_max: pd.DataFrame) -> pd.Series:
    """Load-weighted harmonic mean of the pools' rho* at each node (1 where nothing is processed)."""
    load = (result.dataset["processing"].to_pandas() * s.workloads["energy_kwh_per_mtok"])
    need = (load / rho_max.reindex_like(load)).where(load > 0, 0.0).sum(axis=1)
    tot = load.sum(axis=1)
    return (tot / need.replace(0, np.nan)).fillna(1.0).clip(upper=1.0)


def fixed_point_pools(result, s, rho_max: pd.DataFrame, util: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(GPU share, pool utilisation), node x workload, of the allocation that :func:`usable_share`
    assumes: each node's GPUs split in proportion to ``load_k / rho*_k``, so pool ``k`` runs at
    ``rho*_k * util / usable_share`` (``util``: node load over its undiminished capacity).  A
    node serving one workload has its pool at the node's utilisation; at the fixed point
    (util <= usable share) every pool is within its rho*."""
    load = (result.dataset["processing"].to_pandas() * s.workloads["energy_kwh_per_mtok"])
    rho = rho_max.reindex_like(load).clip(lower=1e-12)
    need = (load / rho).where(load > 0, 0.0)
    alloc = need.div(need.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    share = usable_share(result, s, rho_max)
    pool_u = rho.mul(util.reindex(load.index) / share, axis=0).where(load > 0)
    return alloc, pool_u


def _summary(it: int, r, s, factor: pd.Series, share: pd.Series, util: pd.Series) -> dict:
    ds = r.dataset
    dem = ds["demand"]
    mean_price = (ds["price"] * dem).sum("node") / dem.sum("node")
    row = {"iteration": it, "objective_usd_per_h": r.objective,
           "max_excess": float((util - share).max()),
           "derated_nodes": int((factor < 1 - 1e-9).sum()),
           "usable_capacity_mw": float((s.nodes["capacity_mw"] * factor).sum() * s.params["ai_share"]),
           "saturated_links": len(r.saturated_links(1e-3))}
    for w in ds["workload"].values:
        row[f"mean_price_{w}"] = float(mean_price.sel(workload=w))
    return row


def latency_consistent_clearing(s, demand_scale: float = 1.0, *, latency_limits_ms: dict[str, float] | None = None,
                                profiles: dict[str, ServiceProfile] | None = None, q: float = 0.99,
                                peak: bool = True, transfer_aware: bool = True, max_iter: int = 25,
                                tol: float = 1e-6, network_only=None, damping: float | None = None,
                                tie_break: bool = True) -> LatencyClearing:
    """Clear ``s`` at ``demand_scale`` so that every served route meets its workload's
    end-to-end latency limit at quantile ``q`` (see the module docstring).  ``tol``: how far
    (share of capacity) a node may sit above its usable share at the fixed point;
    ``network_only``: the network-only clearing of the same case, if already solved.
    ``profiles``: default :func:`~tokenflow.latency.profiles.serving_profiles` (the measured serving
    layer: LP capacity and saturation throughput are independent numbers); pass
    :func:`~tokenflow.latency.profiles.default_profiles` for the paper's identity.

    ``damping``: None (default) derates monotonically (a node's capacity factor only falls, to
    its usable share when it is above it).  A number ``a`` in (0, 1] runs a damped fixed
    point instead: every node's factor moves to ``(1 - a)*factor + a*usable share``, so a share
    can rise again when the mix changes; it stops when no node is above its usable share by
    more than ``tol`` and no factor moved by more than ``tol``.

    ``tie_break``: True (default) clears every iteration with :func:`tie_broken_solve`, so the
    end point does not depend on which optimal dispatch the solver returns (prices are the
    LP's); False uses the solver's own optimal vertex.

    Raises :class:`InfeasibleMarketError` when the derated market cannot serve the demand and
    :class:`TokenflowError` naming the argument for a bad argument."""
    _check_args(s, demand_scale, latency_limits_ms, profiles, q, peak, transfer_aware, max_iter, tol, damping,
                tie_break)
    profiles = serving_profiles(s) if profiles is None else profiles
    cap0 = s.nodes["capacity_mw"].astype(float)
    cap0_kw = s.compute_capacity_kw
    net = network_limits(s, profiles, latency_limits_ms, q)
    lp_limits = s.workloads["latency_limit_ms"].astype(float).to_dict() | dict(latency_limits_ms or {})
    if network_only is None:
        network_only = solve(s, demand_scale=demand_scale, latency_limits_ms=lp_limits,
                             transfer_aware=transfer_aware)
    factor = pd.Series(1.0, index=cap0.index)
    rows, current, converged = [], s, False
    r = None
    for it in range(max_iter):
        try:
            r = (tie_broken_solve(current, demand_scale, latency_limits_ms=net, transfer_aware=transfer_aware)
                 if tie_break else
                 solve(current, demand_scale=demand_scale, latency_limits_ms=net, transfer_aware=transfer_aware))
        except InfeasibleMarketError as exc:
            raise InfeasibleMarketError(demand_scale, exc.max_scale,
                                        f"latency-consistent clearing, iteration {it}: {exc.binding}") from None
        util = r.dataset["compute_used"].to_pandas() / cap0_kw
        rtt = route_rtts(r, s, mean=False)
        rho_max = pool_limits(r, s, profiles, cap0_kw, q, peak, rtt)
        share = usable_share(r, s, rho_max)
        rows.append(_summary(it, r, s, factor, share, util))
        over = util > share + tol
        if damping is None:
            if not over.any():
                converged = True
                break
            factor = factor.where(~over, np.minimum(factor, share))
        else:
            new = ((1.0 - damping) * factor + damping * share).clip(lower=0.0, upper=1.0)
            if not over.any() and float((new - factor).abs().max()) <= tol:
                converged = True
                break
            factor = new
        current = s.replace(nodes={n: {"capacity_mw": float(cap0[n] * factor[n])} for n in cap0.index})
    alloc, pool_u = fixed_point_pools(r, s, rho_max, util)
    lat = market_latency(r, s, profiles, q, utilisation=pool_u, capacity_kw=cap0_kw, peak=peak, shares=alloc,
                         rtt=route_rtts(r, s))  # (with the mean route, which the iterations do not need)
    return LatencyClearing(r, network_only, current, factor, net, pd.DataFrame(rows).set_index("iteration"), lat,
                           rho_max, converged)


@dataclass
class LatencyScale:
    """Outcome of :func:`max_latency_consistent_scale`: ``scale`` (the largest demand scale found
    at which the whole procedure clears and converges), ``clearing`` there, ``upper`` (the
    smallest scale found that does not) and ``why`` (what failed at ``upper``)."""

    scale: float
    clearing: LatencyClearing | None
    upper: float
    why: str


def max_latency_consistent_scale(s, *, rel_tol: float = 1e-3, lo: float = 0.0, hi: float | None = None,
                                 start: tuple[float, float] | None = None, **kwargs) -> LatencyScale:
    """The largest demand scale at which :func:`latency_consistent_clearing` (with ``kwargs``)
    clears and converges, by bisection on the whole procedure between ``lo`` (default 0) and
    ``hi`` (default the network-only s*, an upper bound: derating and tightened limits only
    remove capacity).  Assumes clearing is monotone in the scale (more demand, no easier to
    serve); ``rel_tol``: relative width of the final bracket.

    ``start``: a bracket ``(a, b)`` expected to hold the answer (``lo <= a < b <= hi``), e.g. the
    bracket of a neighbouring variant; ``b`` and then ``a`` are tried first (where ``b``
    clears, the search gallops up from it in steps doubling from ``b - a``), and the bisection
    continues from what they show (a bracket of width ``rel_tol`` is then found in two
    clearings instead of a full bisection).  The answer is a bracket of the same procedure
    either way; only the clearings tried differ."""
    from ..clearing.market import max_demand_scale

    _real("rel_tol", rel_tol, lo=0.0, lo_open=True)
    _real("lo", lo, lo=0.0)
    hi = float(max_demand_scale(s, latency_limits_ms=kwargs.get("latency_limits_ms"),
                                transfer_aware=kwargs.get("transfer_aware", True)) if hi is None else
               _real("hi", hi, lo=0.0, lo_open=True))
    if not lo < hi:
        raise TokenflowError(f"max_latency_consistent_scale: lo must be below hi, got lo={lo!r}, hi={hi!r}")
    if start is not None:
        if not isinstance(start, (tuple, list)) or len(start) != 2:
            raise TokenflowError(f"max_latency_consistent_scale: start must be a pair (a, b), got {start!r}")
        a_, b_ = (_real("start[0]", start[0], lo=0.0), _real("start[1]", start[1], lo=0.0))
        if not lo <= a_ < b_ <= hi:
            raise TokenflowError(f"max_latency_consistent_scale: start must satisfy lo <= a < b <= hi, got "
                                 f"start={start!r}, lo={lo!r}, hi={hi!r}")

    def attempt(scale: float) -> tuple[LatencyClearing | None, str]:
        try:
            lc = latency_consistent_clearing(s, scale, **kwargs)
        except InfeasibleMarketError as exc:
            return None, exc.binding
        return (lc, "") if lc.converged else (None, "the fixed point did not converge")

    best, why_hi = None, "the network-only market is infeasible above it"
    hi_fails = False
    if start is not None:
        a_, b_ = float(start[0]), float(start[1])
        lc_b, why_b = attempt(b_)
        if lc_b is None:
            hi, why_hi, hi_fails = b_, why_b, True
            if a_ > lo:
                lc_a, why_a = attempt(a_)
                if lc_a is None:
                    hi, why_hi = a_, why_a
                else:
                    lo, best = a_, lc_a
        else:  # the answer is above b: gallop up from it in steps doubling from b - a
            lo, best = b_, lc_b
            if b_ == hi:
                return LatencyScale(hi, lc_b, hi, why_hi)
            step = b_ - a_
            while lo + step < hi:
                lc_n, why_n = attempt(lo + step)
                if lc_n is None:
                    hi, why_hi, hi_fails = lo + step, why_n, True
                    break
                lo, best, step = lo + step, lc_n, 2.0 * step
    if not hi_fails:
        top, why = attempt(hi)
        if top is not None:
            return LatencyScale(hi, top, hi, "the network-only market is infeasible above it")
        why_hi = why
    if lo > 0 and best is None:
        best, why = attempt(lo)
        if best is None:
            raise TokenflowError(f"max_latency_consistent_scale: the procedure does not clear at lo = {lo:g} "
                                 f"({why})")
    return bisect_scale(attempt, lo, hi, rel_tol, best, why_hi)


def bisect_scale(attempt, lo: float, hi: float, rel_tol: float, best, why_hi: str) -> LatencyScale:
    """Bisection on a scale that clears (``lo``, its clearing ``best``; 0 and ``None`` when none
    is known) and one that does not (``hi``, failing for ``why_hi``) until the bracket is
    narrower than ``rel_tol`` x ``hi``; ``attempt(scale)`` returns (clearing or None, why not).
    Assumes clearing is monotone in the scale.  Used by both latency-consistent markets."""
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        lc, why = attempt(mid)
        if lc is None:
            hi, why_hi = mid, why
        else:
            lo, best = mid, lc
    return LatencyScale(lo, best, hi, why_hi)


# ---------------------------------------------------------------------- unique tie-break
def tie_broken_solve(s, demand_scale: float = 1.0, *, latency_limits_ms: Mapping[str, float] | None = None,
                     transfer_aware: bool = True, rel_tol: float = 1e-9):
    """Clear ``s`` and pick one optimal dispatch that does not depend on the solver's choice.

    Stage 1 is the market LP (path formulation), optimum ``z`` ($/h) and prices.  Stage 2
    keeps every row of that LP, adds the row ``cost @ x <= z + rel_tol max(|z|, 1)`` (one
    scaled cost row, as in :meth:`tokenflow.clearing.engine.Market.link_load_range`) and minimises a
    fixed, generic linear objective (:func:`secondary_weights`: a weight per column from what
    the column is, never from its position).  A generic objective has one optimum over the
    optimal face, so processing, transfers and link flows no longer depend on the vertex the
    first stage happened to return.  (HiGHS 1.16's QP solver was tried for a strictly convex
    regulariser; its active-set method stalled on this degenerate face, so the second stage is
    an LP.)  Prices do not move: the stage-2 dispatch is checked to cost ``z`` within the
    tolerance, and any dispatch of cost ``z`` with the LP's duals has zero duality gap, so the
    LP's prices are prices of the tie-broken dispatch too.  The result keeps them;
    ``result.info`` holds ``tie_break_excess_cost`` ($/h) and ``tie_break_cs_residual``
    (``sum_j x_j |reduced cost_j| + sum_i |y_i| |slack_i|``, $/h, zero at an exact optimum).

    Its own route set: column generation stops at the first optimal vertex, so the routes it
    found depend on that vertex (with a binding latency limit, on which of two equally cheap
    admissible routes the label-setting search met first).  Before the second stage every
    admissible loop-free route with zero reduced cost at the LP's duals is added
    (:func:`tokenflow.lp.routes.face_routes`); by complementary slackness these span the whole
    optimal face of the LP over *all* routes, so the second stage's optimum does not depend on
    the routes the first stage happened to generate.  ``result.info["tie_break_routes_added"]``
    counts them; ``info["tie_break_exact"]`` is False when the enumeration hit its bound
    (:data:`tokenflow.core.validate.MAX_ROUTE_EXPANSIONS` partial routes) and the second stage then
    covers the routes found so far.  Raises :class:`InfeasibleMarketError` as
    :func:`tokenflow.solve` does and :class:`SolverError` when the second stage fails or leaves
    the optimal face."""
    from scipy.sparse import csc_array

    from ..clearing.engine import Market
    from ..clearing.load_range import optimal_face
    from ..clearing.results import MarketResult
    from ..core.errors import SolverError
    from ..core.validate import MAX_ROUTE_EXPANSIONS
    from ..lp.model import row_layout
    from ..lp.routes import face_routes
    from ..lp.solver import HIGHS_OPTIONS, PRIMAL_TOL, LiveLP, verify

    _real("demand_scale", demand_scale, lo=0.0, lo_open=True)
    _real("rel_tol", rel_tol, lo=0.0)
    m = Market(s, transfer_aware=transfer_aware, formulation="path", latency_limits_ms=latency_limits_ms)
    r = m.solve(demand_scale=demand_scale)
    sol = r._sol
    D, _, _ = row_layout(m.inp)
    arr0, _on = m._path_arrays(demand_scale)
    z = float(r.objective)
    if len(sol.x) != arr0.n_cols:
        raise SolverError("tie-break: the LP's columns changed after the solve")
    # the whole optimal face: every admissible route with zero reduced cost at the LP's duals
    face, exact = face_routes(m.inp, m._graph, sol.lam, sol.mu, sol.rho, with_costs=True,
                              max_expansions=MAX_ROUTE_EXPANSIONS)
    added = m.cols.add(face)
    arr, _on = m._path_arrays(demand_scale)
    if arr.n_cols != arr0.n_cols + added:
        raise SolverError("tie-break: the route set did not grow as expected")
    x_lp = np.r_[sol.x, np.zeros(added)]  # new columns are appended after the LP's
    A = csc_array((arr.data, arr.indices, arr.indptr), shape=(arr.n_rows, arr.n_cols))
    w2 = secondary_weights(m)
    face, cscale, slack = optimal_face(arr, z, rel_tol, "tie-break")
    lp2 = dataclasses.replace(face, cost=w2)
    live = LiveLP()
    live.sync(lp2)
    cond = live.run()
    if cond != "optimal":
        raise SolverError(f"tie-break: HiGHS ended the second stage with '{cond}'")
    x = np.asarray(live.h.getSolution().col_value)[:arr.n_cols]
    x = np.where(np.abs(x) < 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0))), 0.0, x)
    x = np.clip(x, arr.col_lb, arr.col_ub)
    true_cost = float(arr.cost @ x)
    feas = float(HIGHS_OPTIONS["primal_feasibility_tolerance"])
    allowed = slack + feas * (1.0 / cscale + float(np.abs(arr.cost) @ np.abs(x))) + PRIMAL_TOL * max(abs(z), 1.0)
    if true_cost - z > allowed:
        raise SolverError(f"tie-break: the stage-2 dispatch costs {true_cost - z:.6g} $/h more than the optimum "
                          f"{z:.6g} $/h (allowed {allowed:.3g}); refused")
    verify(dataclasses.replace(arr, cost=np.zeros(arr.n_cols)), x, np.zeros(arr.n_rows),
           lambda i: f"tie-break: row {i}", lambda j: f"tie-break: column {j}")
    # complementary slackness with the LP's duals (scaled back: y of the unscaled rows)
    y = _lp_duals(m, sol, arr)
    red = arr.cost - A.T @ y
    ax = A @ x
    row_slack = np.minimum(np.abs(ax - np.where(np.isfinite(arr.row_lb), arr.row_lb, np.inf)),
                           np.abs(np.where(np.isfinite(arr.row_ub), arr.row_ub, np.inf) - ax))
    cs = float(np.abs(x) @ np.abs(red) + np.abs(y) @ np.where(np.abs(y) > 0, row_slack, 0.0))
    info = dict(sol.info)
    info.update({"tie_break": "lexicographic", "tie_break_excess_cost": true_cost - z, "tie_break_cs_residual": cs,
                 "tie_break_lp_x": x_lp, "tie_break_routes_added": int(added), "tie_break_exact": bool(exact)})
    new = dataclasses.replace(sol, x=x, objective=true_cost, info=info, col_route=m.cols.route, col_k=m.cols.k,
                              routes=m.cols.pool.arrays())
    out = MarketResult.from_solution(new)
    return out


def _generic(label: str) -> float:
    """A fixed number in [0, 1) from a name (CRC-32 of its UTF-8 bytes over 2**32)."""
    return zlib.crc32(label.encode()) / 2.0 ** 32


def secondary_weights(m) -> np.ndarray:
    """The fixed, generic second-stage cost of every column of ``m``'s path LP (unitless, in
    [1, 2)): a function of what the column is, by name (unserved demand of workload k at origin
    o; workload k from origin o processed at n over the named links of its route), never of
    its position or of the order of nodes and workloads in the scenario.  Weights are hashes
    of those names, so the second stage has one optimum except in cases of measure zero."""
    inp = m.inp
    N, K = inp.N, inp.K
    nid, wid, lid = inp.node_ids, inp.workload_ids, inp.link_ids
    unserved = np.array([1.0 + _generic(f"unserved|{nid[i // K]}|{wid[i % K]}") for i in range(N * K)])
    o, n = m.cols.origin_node()
    _, _, ptr, flat = m.cols.pool.arrays()
    flows = np.array([
        1.0 + _generic(f"flow|{wid[k]}|{nid[a]}|{nid[b]}")
        + 1e-3 * _generic("route|" + "|".join(lid[x] for x in flat[ptr[q]:ptr[q + 1]]))
        for k, a, b, q in zip(m.cols.k, o, n, m.cols.route)])
    return np.r_[unserved, flows]


def _lp_duals(m, sol, arr) -> np.ndarray:
    """The path LP's row duals (unscaled rows) rebuilt from the solution's prices."""
    return np.r_[sol.lam.reshape(-1), -sol.mu, -sol.rho][:arr.n_rows]


# ====================================================================== the latency-consistent LP
# The problem of record (issue 27).  For fixed serving characteristics rho*[n, k] (the largest
# LP utilisation at which workload k's pool at node n meets its end-to-end limit), "each node
# is loaded only up to the utilisation at which every workload it serves meets its limit" is
# the linear row
#
#     sum_k g_k y[n, k] / rho*[n, k] <= G_n                                  (kW)
#
# (g_k: IT power per token rate, y: tokens processed, G_n: the node's AI capacity): workload
# k's pool needs g_k y / rho* of the node's GPUs.  It replaces the compute row of the market
# LP (it implies it, rho* <= 1).  With every admissible route as a column the market's optimal
# cost at a given rho* is unique by LP theory, whichever vertex, algorithm or column order
# the solver uses.  The GPU split between workloads is the row's: each pool gets the GPUs
# its load needs at its rho* and the node's spare GPUs (where the row is slack) are shared in
# proportion; no harmonic mean over a fixed mix, so GPUs move between workloads only through
# the LP's choice of flows.  rho* depends on the pool's size (pooling: more replicas, higher
# rho*) and on the worst round trip into it; only that dependence is iterated (the outer map
# rho* -> LP -> pools -> rho*, :func:`latency_lp_clearing`).

RTT_MODES = ("admissible", "used")
