"""Latency of a cleared market: each node's pools of replicas, their utilisation, and the
round trips of the routes the market uses.

Reads a cleared market (path formulation: flows by origin) through the service profiles
(:mod:`tokenflow.latency.profiles`) and the queueing mathematics
(:mod:`tokenflow.latency.queueing`): :func:`market_latency` (processing and end-to-end
latency per node x workload and origin), :func:`route_rtts` (round trips of the routes in
use), :func:`route_rtt_ms` (the latency-shortest paths), and the pools behind them
(:func:`pool_replicas`, :func:`load_shares`, :func:`pool_utilisation`).  Milliseconds in every
returned table.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import xarray as xr

from ..core import validate as _v
from ..core.errors import TokenflowError
from .profiles import GPU_KW, ServiceProfile, serving_profiles
from .queueing import arrival_scv, replica_latency, thinned_scv

# --------------------------------------------------------------------------- the market

def route_rtt_ms(s) -> pd.DataFrame:
    """Round-trip time (ms) of the latency-shortest path between every ordered node pair
    (origin rows, processing-node columns; 0 on the diagonal).  A lower bound on the routes a
    cleared market uses; for those see :func:`route_rtts`."""
    from ..scenarios.network import candidate_paths

    _v.scenario(s, "s", "route_rtt_ms")
    ps = candidate_paths(s, 1)
    nodes = s.node_ids
    out = pd.DataFrame(np.inf, index=pd.Index(nodes, name="origin"), columns=pd.Index(nodes, name="node"))
    for o, t, r in zip(ps.origin, ps.target, ps.rtt_ms):
        out.iat[o, t] = min(out.iat[o, t], r)
    return out


def pool_replicas(capacity_kw: float, share: float, p: ServiceProfile) -> int:
    """Replicas of profile ``p`` at a node with ``capacity_kw`` of AI compute of which the share
    ``share`` serves this workload (at least 1)."""
    capacity_kw = _v.number(capacity_kw, "capacity_kw", "pool_replicas", lo=0.0)
    share = _v.number(share, "share", "pool_replicas", lo=0.0, hi=1.0)
    _v.profile(p, "p", "pool_replicas")
    return max(1, int(round(capacity_kw * share / GPU_KW / p.gpus_per_replica)))


def load_shares(result, s) -> pd.DataFrame:
    """Share of each node's compute load (kW) taken by each workload (node x workload)."""
    _v.result_of(result, s, "load_shares")
    load = result.dataset["processing"].to_pandas() * s.workloads["energy_kwh_per_mtok"]
    return load.div(load.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)


def _origin_flows(ds: xr.Dataset) -> np.ndarray:
    """transfers[origin, node, workload]; an error when the result does not track origins."""
    tr = ds["transfers"].transpose("origin", "node", "workload").values
    if np.isnan(tr).all():
        raise TokenflowError("latency needs flows by origin (round trips): solve with the path formulation")
    return np.nan_to_num(tr)


def pool_utilisation(result, utilisation: pd.DataFrame | None = None) -> pd.DataFrame:
    """Utilisation of each pool (node x workload): the node's cleared compute utilisation for
    every workload, or ``utilisation`` (node x workload) where given."""
    _v.result_of(result, None, "pool_utilisation", need_scenario=False)
    _v.frame(utilisation, "utilisation", "pool_utilisation", result.dataset, complete=True)
    ds = result.dataset
    nodes, wls = list(ds["node"].values), list(ds["workload"].values)
    if utilisation is not None:
        return utilisation.reindex(index=nodes, columns=wls)
    node_u = ds["compute_utilization"].to_pandas()
    return pd.DataFrame({w: node_u for w in wls})


def market_latency(result, s, profiles: dict[str, ServiceProfile] | None = None, q: float = 0.99,
                   utilisation: pd.DataFrame | None = None, capacity_kw: pd.Series | None = None,
                   peak: bool = False, dispatch: str = "pooled", shares: pd.DataFrame | None = None,
                   rtt: xr.Dataset | None = None) -> xr.Dataset:
    """Latency of the cleared market ``result`` of scenario ``s``, per node and workload.

    ``profiles``: default :func:`~tokenflow.latency.profiles.serving_profiles` (measured step
    times; pass :func:`~tokenflow.latency.profiles.default_profiles` for the paper's identity).
    ``utilisation`` is in the LP's unit; each pool runs at it times its profile's
    :meth:`~tokenflow.latency.profiles.ServiceProfile.lp_to_pool_utilisation`.
    The pool of workload ``k`` at node ``n`` has its share of the node's GPUs
    (``capacity_kw``, default the result's compute capacity; ``shares``, node x workload,
    default :func:`load_shares`, under which every pool runs at the node's utilisation) and
    runs at ``utilisation``
    (node x workload; default the node's compute utilisation for every pool), times the
    profile's 1-minute peak-to-mean when ``peak``.  ``dispatch``: ``"pooled"`` (a least-loaded
    router: one queue for the pool, trace burstiness kept) or ``"random"`` (each replica its
    own queue, the trace's arrivals thinned at random).  Round trips are those of the routes
    the market uses (:func:`route_rtts`, or ``rtt`` if already computed).  Returns
    ``pool_utilisation``, ``replicas``, ``mean_ms``, ``p_ms`` (processing latency, node x
    workload), ``rtt_ms`` (worst route in use) and ``rtt_mean_ms`` (flow-weighted), ``e2e_p_ms``
    (worst-route RTT + processing quantile; all three origin x node x workload, NaN where no
    flow), ``limit_ms`` and ``lp_limit_ms`` (workload)."""
    fn = "market_latency"
    _v.choice(dispatch, "dispatch", fn, ("pooled", "random"))
    _v.result_of(result, s, fn)
    q = _v.quantile(q, "q (quantile)", fn)
    peak = _v.flag(peak, "peak", fn)
    ds = result.dataset
    profiles = serving_profiles(s) if profiles is None else _v.profiles(profiles, "profiles", fn)
    _v.frame(utilisation, "utilisation", fn, ds)
    _v.frame(shares, "shares", fn, ds, hi=1.0)
    _v.series(capacity_kw, "capacity_kw", fn, ds)
    nodes, wls = list(ds["node"].values), list(ds["workload"].values)
    util = pool_utilisation(result, utilisation)
    cap = ds["compute_capacity"].to_pandas() if capacity_kw is None else capacity_kw
    proc = ds["processing"].to_pandas()
    share = load_shares(result, s) if shares is None else shares.reindex(index=nodes, columns=wls).fillna(0.0)
    shape = (len(nodes), len(wls))
    res = {k: np.full(shape, np.nan) for k in ("pool_utilisation", "mean_ms", "p_ms", "replicas", "batch", "step_ms")}
    for j, w in enumerate(wls):
        p = profiles.get(w)
        if p is None:
            continue
        ca2 = arrival_scv(p)
        for i, n in enumerate(nodes):
            if proc.loc[n, w] <= 0:
                continue
            reps = pool_replicas(cap[n], share.loc[n, w], p)
            rho = float(util.loc[n, w]) * (p.peak_to_mean() if peak else 1.0) * p.lp_to_pool_utilisation()
            if not math.isfinite(rho):
                raise _v.ScenarioError(f"market_latency: utilisation of the {w} pool at {n} is {rho!r} "
                                       "although the market sends it flow")
            if dispatch == "pooled":
                lat = replica_latency(p, min(rho, 1.0), ca2, q, reps)
            else:
                lat = replica_latency(p, min(rho, 1.0), thinned_scv(ca2, reps), q, 1)
            res["pool_utilisation"][i, j] = rho
            res["mean_ms"][i, j], res["p_ms"][i, j] = lat["mean_ms"], lat["p_ms"]
            res["replicas"][i, j] = reps
            res["batch"][i, j], res["step_ms"][i, j] = lat["batch"], lat["step_ms"]
    if rtt is None:
        rt = route_rtts(result, s)
    else:
        need = ("rtt_max_ms", "rtt_mean_ms")
        if not isinstance(rtt, xr.Dataset) or any(v not in rtt for v in need) \
                or set(rtt["rtt_max_ms"].dims) != {"origin", "node", "workload"}:
            raise _v.ScenarioError("market_latency: rtt must be the Dataset route_rtts(result, s) returns "
                                   f"(rtt_max_ms, rtt_mean_ms over origin x node x workload), got {type(rtt).__name__}")
        rt = rtt.reindex(origin=nodes, node=nodes, workload=wls)
    rtt_max = rt["rtt_max_ms"].transpose("origin", "node", "workload").values
    used = _origin_flows(ds) > 1e-9
    e2e = np.where(used, rtt_max + res["p_ms"][None, :, :], np.nan)
    lp_lim = json.loads(ds.attrs["latency_limits_ms"])
    out = xr.Dataset(
        {
            **{k: (("node", "workload"), v) for k, v in res.items()},
            "rtt_ms": (("origin", "node", "workload"), rtt_max),
            "rtt_mean_ms": (("origin", "node", "workload"), rt["rtt_mean_ms"].transpose("origin", "node",
                                                                                      "workload").values),
            "e2e_p_ms": (("origin", "node", "workload"), e2e),
            "limit_ms": (("workload",), np.array([np.nan if profiles.get(w) is None or profiles[w].limit_ms is None
                                                  else profiles[w].limit_ms for w in wls])),
            "lp_limit_ms": (("workload",), np.array([float(lp_lim.get(w, np.nan)) for w in wls])),
        },
        coords={"node": nodes, "workload": wls, "origin": nodes},
        attrs={"quantile": q, "peak": int(peak), "dispatch": dispatch},
    )
    for v, u in {"pool_utilisation": "1", "mean_ms": "ms", "p_ms": "ms", "rtt_ms": "ms", "rtt_mean_ms": "ms",
                 "e2e_p_ms": "ms", "limit_ms": "ms", "lp_limit_ms": "ms", "replicas": "1", "batch": "sequences",
                 "step_ms": "ms"}.items():
        out[v].attrs["unit"] = u
    return out



def route_rtts(result, s, tol: float = 1e-9, mean: bool = True) -> xr.Dataset:
    """Round trips of the routes the cleared market ``result`` of ``s`` uses (ms), per
    ``origin`` x ``node`` x ``workload`` with flow (NaN elsewhere):

    * ``rtt_max_ms``: the largest RTT of any loop-free route from origin to node whose every
      link carries flow of the workload and whose RTT is within the LP's limit.  Every route
      the LP can have used is such a route, so this is an upper bound on the worst route in use
      (exact when the flows admit one decomposition).
    * ``rtt_mean_ms``: flow-weighted RTT of one decomposition of the link flows into those
      routes (a least-residual LP); the result keeps flows per link and per origin x node, not
      per path, so it is one consistent reading, not necessarily the solver's own split.
    * ``rtt_min_ms``: the fastest such route.

    ``mean=False`` leaves out ``rtt_mean_ms`` and the decomposition LP behind it (the
    latency-consistent clearing reads only ``rtt_max_ms``, hundreds of times)."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    from ..scenarios.network import arc_table

    _v.result_of(result, s, "route_rtts")
    tol = _v.number(tol, "tol", "route_rtts", lo=0.0)
    if not isinstance(mean, (bool, np.bool_)):
        raise _v.ScenarioError(f"route_rtts: mean must be True or False, got {mean!r}")
    ds = result.dataset
    nodes, wls = list(ds["node"].values), list(ds["workload"].values)
    pos = {n: i for i, n in enumerate(nodes)}
    arcs = arc_table(s).reindex(ds["link"].values)
    au = np.array([pos[u] for u in arcs["origin"]])
    av = np.array([pos[v] for v in arcs["target"]])
    lat = arcs["latency_ms"].to_numpy(float)
    lim = json.loads(ds.attrs["latency_limits_ms"])
    tr = _origin_flows(ds)
    lf = ds["link_flow"].transpose("link", "workload").values
    N = len(nodes)
    out = {k: np.full((N, N, len(wls)), np.nan)
           for k in ("rtt_max_ms", "rtt_mean_ms", "rtt_min_ms") if mean or k != "rtt_mean_ms"}
    for j, w in enumerate(wls):
        flow = tr[:, :, j]
        if not (flow > tol).any():
            continue
        limit = float(lim.get(w, np.inf)) + 1e-6
        carry = np.flatnonzero(lf[:, j] > tol)
        nbr: list[list[int]] = [[] for _ in range(N)]
        for a in carry:
            nbr[au[a]].append(int(a))
        paths: list[tuple[int, int, float, list[int]]] = []  # (origin, node, rtt, arcs)
        expanded = 0  # partial routes expanded (bounded: loop-free routes can be exponentially many)
        for o in range(N):
            targets = set(np.flatnonzero(flow[o] > tol)) - {o}
            if flow[o, o] > tol:
                paths.append((o, o, 0.0, []))
            if not targets:
                continue
            stack = [(o, 0.0, [], {o})]
            while stack:
                expanded += 1
                if expanded > _v.MAX_ROUTE_EXPANSIONS:
                    raise TokenflowError(f"route_rtts: {w}: more than {_v.MAX_ROUTE_EXPANSIONS:,} partial routes "
                                         "over the links in use within the latency limit; the network is too "
                                         "meshed to list them (a documented bound)")
                u, r, seq, seen = stack.pop()
                for a in nbr[u]:
                    v, r2 = int(av[a]), r + 2.0 * lat[a]
                    if v in seen or r2 > limit:
                        continue
                    if v in targets:
                        paths.append((o, v, r2, [*seq, a]))
                    stack.append((v, r2, [*seq, a], seen | {v}))
        po = np.array([p[0] for p in paths])
        pn = np.array([p[1] for p in paths])
        pr = np.array([p[2] for p in paths])
        for o, n in zip(*np.nonzero(flow > tol)):
            sel = (po == o) & (pn == n)
            if not sel.any():
                raise TokenflowError(f"{w}: flow from {nodes[o]} to {nodes[n]} has no route over links in use "
                                     "within the latency limit")
            out["rtt_max_ms"][o, n, j] = pr[sel].max()
            out["rtt_min_ms"][o, n, j] = pr[sel].min()
        if not mean:
            continue
        # one decomposition: path flows f >= 0 matching each origin x node flow exactly and
        # the link flows up to slacks, least total slack
        P, A = len(paths), len(carry)
        arow = {int(a): i for i, a in enumerate(carry)}
        rows, cols = [], []
        for i, p in enumerate(paths):
            for a in p[3]:
                rows.append(arow[a])
                cols.append(i)
        inc = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(A, P))
        pairs = sorted({(int(o), int(n)) for o, n in zip(po, pn)})
        prow = {p: i for i, p in enumerate(pairs)}
        pair_m = sp.csr_array((np.ones(P), ([prow[(int(o), int(n))] for o, n in zip(po, pn)], np.arange(P))),
                              shape=(len(pairs), P))
        eye = sp.identity(A, format="csr")
        a_eq = sp.vstack([sp.hstack([inc, eye, -eye]),
                          sp.hstack([pair_m, sp.csr_array((len(pairs), 2 * A))])]).tocsr()
        b_eq = np.r_[lf[carry, j], [flow[o, n] for o, n in pairs]]
        res = linprog(np.r_[np.zeros(P), np.ones(2 * A)], A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        if res.status == 0:
            f = res.x[:P]
            for (o, n) in pairs:
                sel = (po == o) & (pn == n)
                tot = f[sel].sum()
                out["rtt_mean_ms"][o, n, j] = float((f[sel] * pr[sel]).sum() / tot) if tot > 0 else pr[sel].min()
        else:  # not expected: fall back to the middle of the range
            out["rtt_mean_ms"][:, :, j] = 0.5 * (out["rtt_max_ms"][:, :, j] + out["rtt_min_ms"][:, :, j])
    res_ds = xr.Dataset({k: (("origin", "node", "workload"), v, {"unit": "ms"}) for k, v in out.items()},
                        coords={"origin": nodes, "node": nodes, "workload": wls})
    return res_ds
