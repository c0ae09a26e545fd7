"""The latency-consistent market as one LP (issue 27): each node is loaded only up to the
utilisation rho*_nk at which every workload it serves meets its latency limit, written as one row
per node, sum_k g_k y_nk / rho*_nk <= G_n, over every admissible route; only rho*'s dependence on
pool size and on each pool's worst admissible round trip is iterated (:func:`latency_lp_clearing`,
:func:`max_latency_lp_scale`).  The older fixed-point procedure, kept as a documented comparison,
is :mod:`tokenflow.latency.latency_clearing`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..clearing.market import solve
from ..core.errors import InfeasibleMarketError, TokenflowError
from .latency_clearing import RTT_MODES, LatencyScale, _check_args, _real, bisect_scale, network_limits
from .market_latency import pool_replicas
from .profiles import ServiceProfile, serving_profiles
from .queueing import arrival_scv, max_utilisation


@dataclass
class LatencyLP:
    """Outcome of :func:`latency_lp_clearing`.

    ``result``: the latency-consistent LP's optimum (prices: demand duals; ``mu`` there is the
    dual of the latency row, $/h per kW of GPU need); ``network_only``: the market LP with the
    paper's round-trip limits (same scale); ``rho_star``: node x workload, LP units; ``pool_gpus``:
    node x workload GPUs of each pool at the end point; ``network_limits_ms``: the tightened
    round-trip limits; ``iterations``: one row per outer step (objective $/h, largest change of
    rho*); ``converged``: the outer map's step fell below ``tol``; ``exact``: every admissible
    route was enumerated (the LP is the full one); ``excess_latency_row``: largest
    ``sum_k g_k y / rho* - G_n`` over nodes at the end point, kW (<= solver tolerance)."""

    result: object
    network_only: object
    rho_star: pd.DataFrame
    pool_gpus: pd.DataFrame
    network_limits_ms: dict[str, float]
    iterations: pd.DataFrame
    converged: bool
    exact: bool
    excess_latency_row: float

    @property
    def objective(self) -> float:
        """Operating cost of the latency-consistent market, $/h."""
        return float(self.result.objective)

    @property
    def cost_change_pct(self) -> float:
        """Latency-consistent over network-only operating cost, in % (> 0: dearer)."""
        return 100.0 * (self.objective / float(self.network_only.objective) - 1.0)

    def usable_share(self) -> pd.Series:
        """Per node: compute the LP uses over what the latency row allows it (kW / kW)."""
        ds = self.result.dataset
        used = ds["compute_used"].to_pandas()
        cap = ds["compute_capacity"].to_pandas()
        need = (ds["processing"].to_pandas() * _intensity(self.result)).div(self.rho_star).fillna(0.0).sum(axis=1)
        return (used / need.replace(0.0, np.nan)).fillna(1.0).where(cap > 0, 1.0)


def _intensity(result) -> pd.Series:
    inp = result._sol.inp
    return pd.Series(inp.intensity, index=pd.Index(inp.workload_ids, name="workload"))


class _FullLP:
    """The path LP of ``s`` at ``scale`` over *every* admissible loop-free route, reusing the
    engine's columns and rows (:class:`tokenflow.clearing.engine.Market`); the compute row's entries
    are divided by rho*[n, k] per column (:meth:`arrays`)."""

    def __init__(self, s, scale: float, limits: Mapping[str, float], transfer_aware: bool):
        from ..clearing.engine import Market
        from ..core.validate import MAX_ROUTE_EXPANSIONS
        from ..lp.routes import face_routes

        self.m = Market(s, transfer_aware=transfer_aware, formulation="path", latency_limits_ms=dict(limits))
        self.template = self.m.solve(demand_scale=scale)._sol  # raises InfeasibleMarketError like solve
        inp = self.m.inp
        N, K, L = inp.N, inp.K, inp.L
        # zero duals, no costs: every admissible loop-free route has reduced cost 0
        every, self.exact = face_routes(inp, self.m._graph, np.zeros((N, K)), np.zeros(N), np.zeros(L),
                                        with_costs=False, max_expansions=MAX_ROUTE_EXPANSIONS)
        self.m.cols.add(every)
        self.arr0, self.on = self.m._path_arrays(scale)
        self.scale = scale
        self.inp = inp
        o, n = self.m.cols.origin_node()
        self.col_origin, self.col_node, self.col_k = o, n, self.m.cols.k.copy()
        self.col_rtt = self.m.cols.rtt_ms(inp)
        D = N * K
        cols = np.repeat(np.arange(self.arr0.n_cols), np.diff(self.arr0.indptr))
        self._cmask = (self.arr0.indices >= D) & (self.arr0.indices < D + N)
        self._cflow = cols[self._cmask] - D  # flow column of each compute entry

    def arrays(self, rho: np.ndarray):
        """The LP with the latency row: compute entries g_k / rho[n, k] (``rho``: N x K)."""
        arr = self.arr0
        data = arr.data.copy()
        f = self._cflow
        data[self._cmask] = data[self._cmask] / rho[self.col_node[f], self.col_k[f]]
        return dataclasses.replace(arr, data=data)

    def solve(self, rho: np.ndarray, *, algorithm: str = "simplex", order_seed: int | None = None):
        """Solve the LP at ``rho`` with HiGHS ``algorithm`` ("simplex" or "ipm", crossover on)
        and the columns in a random order (``order_seed``; None: the engine's order).  Returns
        a :class:`~tokenflow.clearing.results.MarketResult`."""
        import highspy

        from ..clearing.results import MarketResult
        from ..core.errors import SolverError
        from ..lp.solver import new_highs

        arr = self.arrays(rho)
        n = arr.n_cols
        perm = np.arange(n) if order_seed is None else np.random.default_rng(order_seed).permutation(n)
        rs = arr.row_scale
        if order_seed is None:
            starts, idx, val = arr.indptr, arr.indices, arr.data
        else:
            from scipy.sparse import csc_array

            A = csc_array((arr.data, arr.indices, arr.indptr), shape=(arr.n_rows, n))[:, perm]
            starts, idx, val = A.indptr, A.indices, A.data
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, arr.n_rows
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = arr.cost[perm], arr.col_lb[perm], arr.col_ub[perm]
        lp.row_lower_, lp.row_upper_ = arr.row_lb * rs, arr.row_ub * rs
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, arr.n_rows
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = starts, idx.astype(np.int32), val * rs[idx]
        if algorithm not in ("simplex", "ipm"):
            raise TokenflowError(f"latency LP: algorithm must be 'simplex' or 'ipm', got {algorithm!r}")
        # the outer map's next LP differs in the latency rows' coefficients only: a simplex run
        # starts from the last optimal basis of the same column order (an IPM run starts cold)
        key = (algorithm, order_seed)
        warm = self._last_basis if (algorithm == "simplex" and getattr(self, "_last_key", None) == key) else None
        h = new_highs()
        h.setOptionValue("solver", algorithm)
        if algorithm == "ipm":
            h.setOptionValue("run_crossover", "on")
        h.passModel(lp)
        if warm is not None:
            h.setBasis(warm)
        h.run()
        st = h.getModelStatus()
        if st not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible):
            # near the feasibility boundary: once more from scratch with the other algorithm
            h.clearSolver()
            h.setOptionValue("solver", "ipm" if algorithm == "simplex" else "simplex")
            h.run()
            st = h.getModelStatus()
        if st in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            raise InfeasibleMarketError(self.scale, math.nan, "the latency row (GPUs each pool needs at its rho*) "
                                        "exceeds some node's AI capacity")
        if st != highspy.HighsModelStatus.kOptimal:
            raise SolverError(f"latency LP: HiGHS ended with '{h.modelStatusToString(st)}'")
        b = h.getBasis()
        self._last_key, self._last_basis = (key, b) if b.valid else (None, None)
        sol = h.getSolution()
        x = np.empty(n)
        x[perm] = np.asarray(sol.col_value)
        y = np.asarray(sol.row_dual) * rs
        lam, mu, rho_l = self.m._duals(y, self.inp.N * self.inp.K)
        t = self.template
        info = dict(t.info)
        info.update({"latency_lp": True, "algorithm": algorithm, "order_seed": order_seed,
                     "routes_exact": bool(self.exact)})
        new = dataclasses.replace(t, x=x, lam=lam, mu=mu, rho=rho_l, objective=float(arr.cost @ x), info=info,
                                  col_route=self.m.cols.route.copy(), col_k=self.m.cols.k.copy(),
                                  routes=self.m.cols.pool.arrays())
        r = MarketResult.from_solution(new)
        A = arr  # latency-row excess at this solution (kW)
        Ax = np.zeros(A.n_rows)
        np.add.at(Ax, A.indices, A.data * np.repeat(x, np.diff(A.indptr)))
        D = self.inp.N * self.inp.K
        r._latency_excess = float((Ax[D:D + self.inp.N] - A.row_ub[D:D + self.inp.N]).max(initial=0.0))
        return r


def _worst_rtt(full: _FullLP, result, mode: str) -> np.ndarray:
    """N x K worst round trip (ms) into each pool: of every admissible route from an origin with
    demand (``"admissible"``: dispatch-free, what the LP may use), or of the routes carrying
    flow in ``result`` (``"used"``); 0 where there is none."""
    inp = full.inp
    N, K = inp.N, inp.K
    out = np.zeros((N, K))
    nf = len(full.col_k)
    if mode == "admissible":
        dem = inp.base_demand[full.col_origin, full.col_k] > 0
        use = full.on & dem
    else:
        x = result._sol.x[N * K:N * K + nf]
        use = x > 1e-9 * max(1.0, float(np.abs(x).max(initial=0.0)))
    np.maximum.at(out, (full.col_node[use], full.col_k[use]), full.col_rtt[use])
    return out


def _rho_map(full: _FullLP, result, s, profiles, rho_prev: np.ndarray, q: float, peak: bool, rtt_mode: str,
             rho_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """One step of the outer map: (rho* N x K in LP units, pool GPUs N x K) from the pools of
    ``result`` (each node's GPUs shared in proportion to the need g_k y / rho_prev of its
    pools; a pool without load is sized to the whole node, what it could grow to)."""
    from .profiles import GPU_KW

    inp = full.inp
    N, K = inp.N, inp.K
    proc = result.dataset["processing"].values
    need = proc * inp.intensity[None, :] / rho_prev
    tot = need.sum(axis=1, keepdims=True)
    share = np.where(tot > 0, need / np.where(tot > 0, tot, 1.0), 0.0)
    cap = inp.capacity_kw
    rtt = _worst_rtt(full, result, rtt_mode)
    rho = np.ones((N, K))
    gpus = share * cap[:, None] / GPU_KW
    for k, w in enumerate(inp.workload_ids):
        p = profiles.get(w)
        if p is None:
            continue
        for n in range(N):
            if cap[n] <= 0:
                continue
            if p.limit_ms is None:
                rho[n, k] = min(1.0, 1.0 / p.lp_to_pool_utilisation())
                continue
            sh = share[n, k] if proc[n, k] > 0 else 1.0
            reps = pool_replicas(cap[n], float(min(max(sh, 0.0), 1.0)), p)
            r_ = max_utilisation(p, p.limit_ms - rtt[n, k], arrival_scv(p), q, reps, tol=rho_tol)
            if p.max_pool_utilisation is not None:
                r_ = min(r_, p.max_pool_utilisation)
            rho[n, k] = min(1.0, r_ / (p.peak_to_mean() if peak else 1.0) / p.lp_to_pool_utilisation())
    return np.clip(rho, 1e-9, 1.0), gpus


def latency_lp_clearing(s, demand_scale: float = 1.0, *, latency_limits_ms: dict[str, float] | None = None,
                        profiles: dict[str, ServiceProfile] | None = None, q: float = 0.99, peak: bool = True,
                        transfer_aware: bool = True, start: float | np.ndarray = 1.0, damping: float = 1.0,
                        algorithm: str = "simplex", order_seed: int | None = None, rtt: str = "admissible",
                        max_iter: int = 300, tol: float = 1e-10, rho_tol: float = 1e-12,
                        network_only=None, max_infeasible: int = 40) -> LatencyLP:
    """The latency-consistent market as one LP (see the comment above :class:`LatencyLP`).

    For fixed rho* the market is the path LP over every admissible route with its compute row
    replaced by the latency row ``sum_k g_k y[n, k] / rho*[n, k] <= G_n``: one optimal cost.
    The outer map updates rho* from the pools of the optimum (pool sizes, and the worst
    round trip into each pool: ``rtt="admissible"`` (default) takes the worst route the LP
    may use from an origin with demand, so rho* does not depend on which optimal dispatch is
    returned; ``"used"`` the worst route carrying flow).  ``start``: the initial rho* (a
    number, every pool, or an N x K array); ``damping`` in (0, 1]: rho* moves to
    ``(1 - a) rho* + a map(rho*)``; ``algorithm``, ``order_seed``: HiGHS simplex or IPM
    (crossover on) and a random column order, for checking that the end point does not
    depend on them.  Stops when rho* moves by at most ``tol``; ``rho_tol``: bisection
    tolerance of each rho*.  Round-trip limits are tightened as in :func:`network_limits`.
    An iterate at which the LP is infeasible moves halfway back to the last feasible rho* (or
    to 1); after ``max_infeasible`` such steps the problem counts as infeasible at this scale.

    Raises :class:`InfeasibleMarketError` when the network cannot serve the demand with the
    latency rows, :class:`TokenflowError` for a bad argument."""
    from ..core.errors import SolverError

    _check_args(s, demand_scale, latency_limits_ms, profiles, q, peak, transfer_aware, max_iter, tol, damping)
    if rtt not in RTT_MODES:
        raise TokenflowError(f"latency_lp_clearing: rtt must be one of {RTT_MODES}, got {rtt!r}")
    _real("rho_tol", rho_tol, lo=0.0, lo_open=True)
    profiles = serving_profiles(s) if profiles is None else profiles
    net = network_limits(s, profiles, latency_limits_ms, q)
    lp_limits = s.workloads["latency_limit_ms"].astype(float).to_dict() | dict(latency_limits_ms or {})
    if network_only is None:
        network_only = solve(s, demand_scale=demand_scale, latency_limits_ms=lp_limits,
                             transfer_aware=transfer_aware)
    full = _FullLP(s, demand_scale, net, transfer_aware)
    N, K = full.inp.N, full.inp.K
    rho = np.broadcast_to(np.asarray(start, dtype=float), (N, K)).copy()
    if not (np.isfinite(rho).all() and (rho > 0).all() and (rho <= 1).all()):
        raise TokenflowError("latency_lp_clearing: start must be in (0, 1]")
    rows, converged, r, gpus = [], False, None, np.zeros((N, K))
    feasible = None  # the last rho* at which the LP was feasible
    for it in range(max_iter):
        try:
            r = full.solve(rho, algorithm=algorithm, order_seed=order_seed)
        except (InfeasibleMarketError, SolverError):  # (HiGHS undecided at the boundary: not counted as feasible)
            # an infeasible iterate (a start below the fixed point): halfway back to the last
            # feasible rho* (or to 1, the LP without latency rows), which is retried
            rows.append({"iteration": it, "objective_usd_per_h": np.nan, "rho_step": np.nan,
                         "min_rho_star": float(rho[full.inp.capacity_kw > 0].min())})
            if feasible is None and np.all(rho >= 1.0):
                raise InfeasibleMarketError(demand_scale, math.nan, "latency-consistent LP: even rho* = 1 "
                                            "(tightened round-trip limits only) cannot serve the demand") from None
            if sum(1 for row in rows if not np.isfinite(row["objective_usd_per_h"])) > max_infeasible:
                raise InfeasibleMarketError(demand_scale, math.nan, "latency-consistent LP: the outer map keeps "
                                            f"leaving the feasible set ({max_infeasible} infeasible steps)") from None
            back = np.ones_like(rho) if feasible is None else feasible
            rho = 0.5 * (rho + back)
            continue
        feasible = rho.copy()
        new, gpus = _rho_map(full, r, s, profiles, rho, q, peak, rtt, rho_tol)
        step = float(np.abs(new - rho).max())
        rows.append({"iteration": it, "objective_usd_per_h": r.objective, "rho_step": step,
                     "min_rho_star": float(rho[full.inp.capacity_kw > 0].min())})
        if step <= tol:
            converged = True
            break
        rho = (1.0 - damping) * rho + damping * new
    if r is None or not converged and feasible is None:
        raise InfeasibleMarketError(demand_scale, math.nan, "latency-consistent LP: no feasible rho* found")
    idx = pd.Index(full.inp.node_ids, name="node")
    cols = pd.Index(full.inp.workload_ids, name="workload")
    return LatencyLP(r, network_only, pd.DataFrame(rho, index=idx, columns=cols),
                     pd.DataFrame(gpus, index=idx, columns=cols), net,
                     pd.DataFrame(rows).set_index("iteration"), converged, bool(full.exact),
                     float(getattr(r, "_latency_excess", 0.0)))


def max_latency_lp_scale(s, *, rel_tol: float = 1e-4, hi: float | None = None, lo: float = 0.0,
                         **kwargs) -> LatencyScale:
    """The largest demand scale at which :func:`latency_lp_clearing` (with ``kwargs``) is
    feasible and its outer map converges, by bisection between 0 and ``hi`` (default: the
    network-only s* with the tightened round-trip limits, an upper bound since the latency
    rows only remove capacity).  ``lo``: a scale expected to clear (checked first; a
    :class:`TokenflowError` if it does not).  ``rel_tol``: relative width of the final bracket.  Returns a
    :class:`LatencyScale` (its ``clearing`` is a :class:`LatencyLP`)."""
    from ..clearing.market import max_demand_scale

    _real("rel_tol", rel_tol, lo=0.0, lo_open=True)
    if hi is None:
        profiles = kwargs.get("profiles") or serving_profiles(s)
        net = network_limits(s, profiles, kwargs.get("latency_limits_ms"), kwargs.get("q", 0.99))
        hi = float(max_demand_scale(s, latency_limits_ms=net, transfer_aware=kwargs.get("transfer_aware", True)))
    hi = _real("hi", hi, lo=0.0, lo_open=True)

    def attempt(scale: float) -> tuple[LatencyLP | None, str]:
        from ..core.errors import SolverError

        try:
            lc = latency_lp_clearing(s, scale, **kwargs)
        except InfeasibleMarketError as exc:
            return None, exc.binding
        except SolverError as exc:  # HiGHS could not decide at the boundary: counted as not clearing
            return None, str(exc)
        return (lc, "") if lc.converged else (None, "the outer map did not converge")

    top, why = attempt(hi * (1 - 1e-6))
    if top is not None:
        return LatencyScale(hi, top, hi, "the network-only market is infeasible above it")
    best = None
    _real("lo", lo, lo=0.0)
    if lo > 0:
        best, why_lo = attempt(lo)
        if best is None:
            raise TokenflowError(f"max_latency_lp_scale: lo = {lo:g} does not clear ({why_lo})")
    return bisect_scale(attempt, lo, hi, rel_tol, best, why)
