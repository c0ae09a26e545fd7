"""The token-flow market: one linopy model for both variants, solved with HiGHS.

Variables ``flow[col]`` >= 0 (M tokens/h): workload k demanded at origin o,
processed at node n, carried on candidate path p.  A column exists only when
the path's round-trip time is within k's latency limit.

* ``demand[node, workload]``:  sum_cols flow = s * D          dual: price lambda ($/M tokens)
* ``compute[node]``:           sum g_k flow <= G (kW)          dual: -mu, mu = compute rent ($/kWh)
* ``bandwidth[link]``:         sum (w_k [a in path] + r_k [reverse(a) in path]) flow <= 450 B (GB/h)
                               dual: -rho, rho = congestion rent ($/GB)
* objective ($/h):  sum flow * (g_k (PUE_n p_n + opex) + sum_{a in path} (w_k c_a + r_k c_reverse(a)))

``(w_k, r_k)`` (GB per M tokens on the forward / reverse arcs of a route) come from
:func:`tokenflow.scenario.link_weights_gb`: the whole payload forward by default, the
response back on the opposite arcs with ``payload_direction="both"``, and one baseline
payload for every workload in the token-equivalent baseline.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import linopy
import numpy as np
import pandas as pd
import xarray as xr
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from .errors import InfeasibleMarketError, ScenarioError, SolverError
from .network import PathSet, arc_table, candidate_paths
from .scenario import Scenario, link_weights_gb

if TYPE_CHECKING:
    from .results import MarketResult

GBPS_TO_GB_PER_H = 3600.0 / 8.0  # 1 Gbps sustained for an hour = 450 GB
HIGHS_OPTIONS = {"output_flag": False, "log_to_console": False, "random_seed": 0, "threads": 1}


@dataclass
class Coefficients:
    """Inputs shared by both formulations, as numpy arrays (nodes, workloads, links in
    scenario order)."""

    scenario: Scenario
    transfer_aware: bool
    latency_ms: pd.Series  # workload -> round-trip limit used
    arcs: pd.DataFrame
    weight_gb: np.ndarray  # GB per M tokens counted on links, per workload (model view)
    payload_gb: np.ndarray  # GB per M tokens actually moved, per workload (physical)
    proc_cost: np.ndarray  # node x workload, $/M tokens
    energy_cost: np.ndarray  # node x workload, $/M tokens (electricity part)
    intensity: np.ndarray  # workload, kWh/M tokens
    capacity_kw: np.ndarray  # node
    arc_capacity_gbh: np.ndarray  # link, GB/h
    base_demand: np.ndarray  # node x workload, M tokens/h at scale 1
    voll: np.ndarray | None  # workload, $/M tokens (NaN: no lost load allowed), or None
    reverse_gb: np.ndarray | None = None  # GB per M tokens on the reverse arcs of a route (model view)
    phys_fwd_gb: np.ndarray | None = None  # physical GB per M tokens, forward arcs
    phys_rev_gb: np.ndarray | None = None  # physical GB per M tokens, reverse arcs
    arc_reverse: np.ndarray | None = None  # position of the opposite directed arc of each arc

    @property
    def has_reverse(self) -> bool:
        return self.reverse_gb is not None and bool(np.any(self.reverse_gb > 0))

    def arc_transfer_cost(self, arcs: np.ndarray, k: np.ndarray) -> np.ndarray:
        """$/M tokens of carrying workload ``k`` over arc ``arcs`` (entry-wise): forward bytes
        on the arc plus response bytes on its reverse."""
        cost = self.arcs["transfer_cost_usd_per_gb"].to_numpy()
        out = cost[arcs] * self.weight_gb[k]
        if self.has_reverse:
            out = out + cost[self.arc_reverse[arcs]] * self.reverse_gb[k]
        return out


@dataclass
class MarketData(Coefficients):
    """The path formulation's columns (``col``) on top of the shared coefficients."""

    paths: PathSet | None = None
    col_path: np.ndarray | None = None
    col_origin: np.ndarray | None = None
    col_node: np.ndarray | None = None
    col_workload: np.ndarray | None = None
    col_cost: np.ndarray | None = None  # $/M tokens
    col_proc_cost: np.ndarray | None = None
    col_transfer_cost: np.ndarray | None = None
    entry_col: np.ndarray | None = None  # (column, arc) incidence, column side
    entry_arc: np.ndarray | None = None  # (column, arc) incidence, arc side

    @property
    def n_cols(self) -> int:
        return len(self.col_path)


def _per_workload(s: Scenario, values: dict[str, float], name: str, unit: str,
                  allow_zero: bool) -> dict[str, float]:
    """Check a workload -> number mapping given to solve(); report every problem at once."""
    out, problems = {}, []
    need = "a non-negative" if allow_zero else "a positive"
    for k, v in values.items():
        if k not in s.workload_ids:
            problems.append(f"{name}: unknown workload {k!r} (workloads: {', '.join(s.workload_ids)})")
            continue
        try:
            v = float(v)
        except (TypeError, ValueError):
            problems.append(f"{name}.{k}: expected a number of {unit}, got {v!r}")
            continue
        if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            problems.append(f"{name}.{k}: must be {need} number of {unit}, got {v!r}")
            continue
        out[k] = v
    if problems:
        raise ScenarioError(problems)
    return out


def resolve_voll(s: Scenario, value_of_lost_load: dict[str, float] | None) -> np.ndarray | None:
    """Value of lost load per workload ($/M tokens); NaN where none is given."""
    if not value_of_lost_load:
        return None
    given = _per_workload(s, value_of_lost_load, "value_of_lost_load", "$/M tokens", allow_zero=False)
    return np.array([given.get(k, np.nan) for k in s.workload_ids])


def coefficients(s: Scenario, *, transfer_aware: bool = True, latency_limits_ms: dict[str, float] | None = None,
                 value_of_lost_load: dict[str, float] | None = None) -> Coefficients:
    """Cost, capacity and payload coefficients shared by both formulations."""
    lat = resolve_latency(s, latency_limits_ms)
    arcs = arc_table(s)
    wl = s.workloads
    K = len(wl)
    g = wl["energy_kwh_per_mtok"].to_numpy()
    payload_gb = wl["payload_bytes_per_token"].to_numpy() / 1000.0  # B/token -> GB per M tokens
    weight_gb, reverse_gb = link_weights_gb(s, transfer_aware)
    phys_fwd, phys_rev = link_weights_gb(s, True)
    assert len(weight_gb) == K
    elec = (s.node_pue * s.nodes["electricity_usd_per_kwh"]).to_numpy()
    return Coefficients(
        scenario=s, transfer_aware=transfer_aware, latency_ms=lat, arcs=arcs, weight_gb=weight_gb,
        payload_gb=payload_gb, proc_cost=np.outer(elec + s.params["other_opex_usd_per_kwh"], g),
        energy_cost=np.outer(elec, g), intensity=g, capacity_kw=s.compute_capacity_kw.to_numpy(),
        arc_capacity_gbh=arcs["bandwidth_gbps"].to_numpy() * GBPS_TO_GB_PER_H,
        base_demand=s.demand.transpose("node", "workload").to_numpy(),
        voll=resolve_voll(s, value_of_lost_load), reverse_gb=reverse_gb, phys_fwd_gb=phys_fwd,
        phys_rev_gb=phys_rev, arc_reverse=reverse_arcs(arcs),
    )


def reverse_arcs(arcs: pd.DataFrame) -> np.ndarray:
    """Position of the opposite directed arc (``b->a`` for ``a->b``) of every arc."""
    pos = {(u, v): i for i, (u, v) in enumerate(zip(arcs["origin"], arcs["target"]))}
    return np.array([pos[(v, u)] for u, v in zip(arcs["origin"], arcs["target"])], dtype=np.int64)


def bandwidth_entries(c: Coefficients, arc: np.ndarray, ent: np.ndarray,
                      k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bandwidth-row entries (row = arc, variable position, GB per M tokens) of flows of
    workload ``k`` on arcs ``arc``: forward bytes on the arc, response bytes on its reverse."""
    if not c.has_reverse:
        return arc, ent, c.weight_gb[k]
    return (np.r_[arc, c.arc_reverse[arc]], np.r_[ent, ent], np.r_[c.weight_gb[k], c.reverse_gb[k]])


def resolve_latency(s: Scenario, latency_limits_ms: dict[str, float] | None) -> pd.Series:
    """Round-trip latency limit per workload (ms), with overrides checked."""
    lat = s.workloads["latency_limit_ms"].astype(float).copy()
    for k, v in _per_workload(s, latency_limits_ms or {}, "latency_limits_ms", "ms", allow_zero=True).items():
        lat[k] = v
    return lat


def prepare(s: Scenario, *, transfer_aware: bool = True, latency_limits_ms: dict[str, float] | None = None,
            value_of_lost_load: dict[str, float] | None = None) -> MarketData:
    """Coefficients plus the path formulation's columns; raise :class:`ScenarioError` for
    demand that cannot reach any compute within its latency limit (unless lost load is allowed)."""
    c = coefficients(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms,
                     value_of_lost_load=value_of_lost_load)
    ps = candidate_paths(s)
    lat, cap, K = c.latency_ms, c.capacity_kw, len(s.workload_ids)
    hops = np.diff(ps.ptr)

    cols_p, cols_k = [], []
    useful = cap[ps.target] > 0
    for k in range(K):
        idx = np.nonzero(useful & (ps.rtt_ms <= lat.iloc[k] + 1e-9))[0]
        cols_p.append(idx)
        cols_k.append(np.full(len(idx), k))
    col_path = np.concatenate(cols_p)
    col_workload = np.concatenate(cols_k)
    col_origin = ps.origin[col_path]
    col_node = ps.target[col_path]
    col_proc = c.proc_cost[col_node, col_workload]

    # (column, arc) incidence
    lens = hops[col_path]
    entry_col = np.repeat(np.arange(len(col_path)), lens)
    starts = np.repeat(ps.ptr[col_path], lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    entry_arc = ps.arcs[starts + offs] if len(offs) else np.zeros(0, dtype=np.int64)
    col_transfer = np.bincount(entry_col, weights=c.arc_transfer_cost(entry_arc, col_workload[entry_col]),
                               minlength=len(col_path))

    # every positive demand needs at least one column (or a value of lost load)
    has_col = np.zeros_like(c.base_demand, dtype=bool)
    has_col[col_origin, col_workload] = True
    if c.voll is not None:
        has_col[:, ~np.isnan(c.voll)] = True
    bad = np.argwhere((c.base_demand > 0) & ~has_col)
    if len(bad):
        problems = []
        for o, k in bad:
            node, wk = s.node_ids[o], s.workload_ids[k]
            reach = ps.rtt_ms[(ps.origin == o) & useful]
            nearest = f"; nearest compute is {reach.min():.1f} ms away" if len(reach) else \
                "; no node with compute capacity is connected to it"
            problems.append(f"unreachable demand: {wk} at node {node!r} cannot reach any node with "
                            f"compute capacity within its {lat.iloc[k]:g} ms latency limit{nearest}")
        raise ScenarioError(problems)

    return MarketData(
        **{f: getattr(c, f) for f in Coefficients.__dataclass_fields__},
        paths=ps, col_path=col_path, col_origin=col_origin, col_node=col_node, col_workload=col_workload,
        col_cost=col_proc + col_transfer, col_proc_cost=col_proc, col_transfer_cost=col_transfer,
        entry_col=entry_col, entry_arc=entry_arc,
    )


def _rows(model: linopy.Model, labels: np.ndarray, row: np.ndarray, col: np.ndarray,
          coeff: np.ndarray, coords: dict[str, pd.Index]) -> linopy.LinearExpression:
    """Sum_{entries e} coeff[e] * var[col[e]] grouped into rows ``row[e]`` (flat index over
    ``coords``), built directly as a padded (row, _term) expression without Python loops."""
    shape = tuple(len(c) for c in coords.values())
    nrows = int(np.prod(shape))
    order = np.argsort(row, kind="stable")
    row, col, coeff = row[order], col[order], coeff[order]
    counts = np.bincount(row, minlength=nrows)
    nterm = max(int(counts.max()) if len(counts) else 0, 1)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    term = np.arange(len(row)) - start[row]
    vars_ = np.full((nrows, nterm), -1, dtype=np.int64)
    coeffs = np.full((nrows, nterm), np.nan)
    vars_[row, term] = labels[col]
    coeffs[row, term] = coeff
    dims = list(coords)
    ds = xr.Dataset(
        {"vars": (dims + ["_term"], vars_.reshape(*shape, nterm)),
         "coeffs": (dims + ["_term"], coeffs.reshape(*shape, nterm))},
        coords=coords,
    )
    return linopy.LinearExpression(ds, model)


def build_model(md: MarketData, demand_scale: float | None) -> tuple[linopy.Model, dict]:
    """The linopy model.  ``demand_scale=None`` builds the max-scale LP instead
    (variable s, maximise it; costs ignored)."""
    s = md.scenario
    node_idx = pd.Index(s.node_ids, name="node")
    wl_idx = pd.Index(s.workload_ids, name="workload")
    K = len(wl_idx)
    with linopy.options as opts:
        opts["semantics"] = "v1"
        m = linopy.Model(force_dim_names=True)
        flow = m.add_variables(lower=0.0, coords=[pd.RangeIndex(md.n_cols, name="col")], name="flow")
        labels = flow.labels.values
        cols = np.arange(md.n_cols)
        dem = _rows(m, labels, md.col_origin * K + md.col_workload, cols, np.ones(md.n_cols),
                    {"node": node_idx, "workload": wl_idx})
        base = xr.DataArray(md.base_demand, coords={"node": node_idx, "workload": wl_idx})
        mask = xr.DataArray(np.isin(np.arange(md.base_demand.size),
                                    md.col_origin * K + md.col_workload).reshape(md.base_demand.shape),
                            coords=base.coords)
        if demand_scale is None:
            scale = m.add_variables(lower=0.0, name="scale")
            m.add_constraints(dem - base * scale == 0, name="demand", mask=mask)
        elif md.voll is not None:
            lost = add_lost_load(m, md.voll, node_idx, wl_idx)
            mask = mask | xr.DataArray(np.broadcast_to(~np.isnan(md.voll), md.base_demand.shape), coords=base.coords)
            m.add_constraints(dem + lost == base * demand_scale, name="demand", mask=mask)
        else:
            m.add_constraints(dem == base * demand_scale, name="demand", mask=mask)
        add_capacity_rows(m, md, labels, (md.col_node, cols, md.intensity[md.col_workload]),
                          bandwidth_entries(md, md.entry_arc, md.entry_col, md.col_workload[md.entry_col]))
        if demand_scale is None:
            m.add_objective(-1.0 * scale)
        else:
            cost = xr.DataArray(md.col_cost, coords={"col": pd.RangeIndex(md.n_cols, name="col")})
            obj = (flow * cost).sum()
            if md.voll is not None:
                obj = obj + lost_load_cost(m, md.voll, node_idx, wl_idx)
            m.add_objective(obj)
    return m, {"flow": flow}


def add_capacity_rows(m: linopy.Model, c: Coefficients, labels: np.ndarray,
                      compute: tuple[np.ndarray, np.ndarray, np.ndarray],
                      bandwidth: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """``compute[node]``: sum g_k * processing <= G (kW) and ``bandwidth[link]``:
    sum w_k/1000 * flow <= 450 B (GB/h), shared by both formulations.  Each entry
    triple is (row position, variable position in ``labels``, coefficient)."""
    s = c.scenario
    node_idx = pd.Index(s.node_ids, name="node")
    link_idx = pd.Index(c.arcs.index, name="link")
    row, ent, coeff = compute
    cap = xr.DataArray(c.capacity_kw, coords={"node": node_idx})
    used = xr.DataArray(np.isin(np.arange(len(node_idx)), row), coords=cap.coords)
    m.add_constraints(_rows(m, labels, row, ent, coeff, {"node": node_idx}) <= cap, name="compute", mask=used)
    if len(link_idx):
        row, ent, coeff = bandwidth
        bcap = xr.DataArray(c.arc_capacity_gbh, coords={"link": link_idx})
        used = xr.DataArray(np.isin(np.arange(len(link_idx)), row), coords=bcap.coords)
        m.add_constraints(_rows(m, labels, row, ent, coeff, {"link": link_idx}) <= bcap, name="bandwidth",
                          mask=used)


def add_lost_load(m: linopy.Model, voll: np.ndarray, node_idx: pd.Index, wl_idx: pd.Index) -> linopy.Variable:
    """Unserved demand [node, workload] (M tokens/h), allowed only where a VoLL is given."""
    upper = xr.DataArray(np.where(np.isnan(voll), 0.0, np.inf)[None, :].repeat(len(node_idx), 0),
                         coords={"node": node_idx, "workload": wl_idx})
    return m.add_variables(lower=0.0, upper=upper, name="unserved")


def lost_load_cost(m: linopy.Model, voll: np.ndarray, node_idx: pd.Index, wl_idx: pd.Index):
    price = xr.DataArray(np.nan_to_num(voll)[None, :].repeat(len(node_idx), 0),
                         coords={"node": node_idx, "workload": wl_idx})
    return (m.variables["unserved"] * price).sum()


_BANNER_SHOWN = False


def _silence_highs_banner() -> None:
    """HiGHS prints a copyright banner on the first Highs() of a process, before any option
    can be set; create that first instance with the C-level stdout pointed at /dev/null."""
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        return
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SHOWN = True


def solve_model(m: linopy.Model) -> str:
    """Solve with HiGHS; return the termination condition."""
    _silence_highs_banner()
    log = logging.getLogger("linopy")
    level = log.level
    log.setLevel(logging.ERROR)  # infeasibility is reported by tokenflow, not as a linopy warning
    try:
        with linopy.options as opts:
            opts["semantics"] = "v1"
            _, condition = m.solve(solver_name="highs", io_api="direct", progress=False, **HIGHS_OPTIONS)
    except Exception as exc:  # pragma: no cover - solver crash is not a normal outcome
        raise SolverError(f"HiGHS failed: {exc}") from exc
    finally:
        log.setLevel(level)
    return str(condition)


def _dual(m: linopy.Model, name: str, dims: dict[str, pd.Index]) -> np.ndarray:
    if name not in m.constraints:
        return np.zeros(tuple(len(v) for v in dims.values()))
    d = m.constraints[name].dual
    return np.nan_to_num(d.values, nan=0.0) if name != "demand" else d.values


MAX_CG_ROUNDS = 50


def _price_columns(md: MarketData, lam: np.ndarray, mu: np.ndarray, rho: np.ndarray,
                   with_costs: bool) -> list[tuple[int, int, int, list[int], float]]:
    """Pricing step of column generation: for every origin, the cheapest route to every
    compute node under arc lengths (transfer cost + congestion rent); return the
    latency-feasible (origin, node, workload) routes whose reduced cost is negative and
    that are not columns yet, as (o, n, k, arcs, rtt_ms)."""
    s = md.scenario
    N, K = md.base_demand.shape
    arcs = md.arcs
    pos = {n: i for i, n in enumerate(s.node_ids)}
    au = np.array([pos[u] for u in arcs["origin"]], dtype=np.int64)
    av = np.array([pos[v] for v in arcs["target"]], dtype=np.int64)
    if not len(au):
        return []
    length = (arcs["transfer_cost_usd_per_gb"].to_numpy() if with_costs else 0.0) + np.maximum(rho, 0.0)
    lat = arcs["latency_ms"].to_numpy()
    arc_id = {(int(u), int(v)): i for i, (u, v) in enumerate(zip(au, av))}
    node_cost = (md.proc_cost if with_costs else 0.0) + md.intensity[None, :] * mu[:, None]  # N x K
    node_cost = np.broadcast_to(node_cost, (N, K))
    existing = set(zip(md.col_origin.tolist(), md.col_node.tolist(), md.col_workload.tolist(),
                       md.col_path.tolist()))
    path_key = {}
    for i in range(len(md.paths)):
        path_key[(int(md.paths.origin[i]), int(md.paths.target[i]), tuple(md.paths.arc_list(i).tolist()))] = i
    # one shortest-route search per group of workloads that see the same arc lengths:
    # (workloads, arc length, GB per M tokens scaling the route length)
    if md.has_reverse:
        groups = [(np.array([k]), md.weight_gb[k] * length + md.reverse_gb[k] * length[md.arc_reverse],
                   np.ones(1)) for k in range(K)]
    else:
        groups = [(np.arange(K), length, md.weight_gb)]
    new = []
    cap = md.capacity_kw > 0
    for kk, glen, gscale in groups:
        # a tiny latency term breaks ties towards short routes and keeps every arc an edge
        eps = 1e-9 * (1.0 + float(glen.max(initial=0.0)))
        graph = csr_array((glen + eps * (1.0 + lat), (au, av)), shape=(N, N))
        dist, pred = dijkstra(graph, directed=True, return_predecessors=True)
        for o in range(N):
            for n in np.nonzero(cap & np.isfinite(dist[o]))[0]:
                if n == o:
                    continue
                rc = node_cost[n, kk] + gscale * dist[o, n] - lam[o, kk]
                tol = 1e-9 * np.maximum(1.0, np.abs(lam[o, kk]))
                ks = kk[np.nonzero(rc < -tol)[0]]
                if not len(ks):
                    continue
                seq = [int(n)]
                while seq[-1] != o:
                    seq.append(int(pred[o, seq[-1]]))
                seq = seq[::-1]
                arc_seq = [arc_id[(a, b)] for a, b in zip(seq[:-1], seq[1:])]
                rtt = 2.0 * float(lat[arc_seq].sum())
                pid = path_key.get((o, int(n), tuple(arc_seq)))
                for k in ks:
                    if rtt > md.latency_ms.iloc[k] + 1e-9:
                        continue
                    if pid is not None and (o, int(n), int(k), pid) in existing:
                        continue
                    new.append((o, int(n), int(k), arc_seq, rtt))
    return new


def _extend(md: MarketData, new: list[tuple[int, int, int, list[int], float]]) -> MarketData:
    """A copy of ``md`` with the routes of ``new`` added as paths and columns."""
    ps = md.paths
    key = {}
    for i in range(len(ps)):
        key[(int(ps.origin[i]), int(ps.target[i]), tuple(ps.arc_list(i).tolist()))] = i
    origin, target, rtt = list(ps.origin), list(ps.target), list(ps.rtt_ms)
    ptr, arcs = list(ps.ptr), list(ps.arcs)
    col_path = []
    for o, n, _k, seq, r in new:
        pid = key.get((o, n, tuple(seq)))
        if pid is None:
            pid = len(origin)
            key[(o, n, tuple(seq))] = pid
            origin.append(o), target.append(n), rtt.append(r)
            arcs.extend(seq)
            ptr.append(len(arcs))
        col_path.append(pid)
    ps2 = PathSet(np.array(origin, dtype=np.int64), np.array(target, dtype=np.int64), np.array(rtt),
                  np.array(ptr, dtype=np.int64), np.array(arcs, dtype=np.int64))
    col_path = np.array(col_path, dtype=np.int64)
    col_k = np.array([k for _, _, k, _, _ in new], dtype=np.int64)
    lens = np.diff(ps2.ptr)[col_path]
    starts = ps2.ptr[col_path]
    entry_local = np.repeat(np.arange(len(col_path)), lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    entry_arc = ps2.arcs[np.repeat(starts, lens) + offs]
    transfer = np.bincount(entry_local, weights=md.arc_transfer_cost(entry_arc, col_k[entry_local]),
                           minlength=len(col_path))
    node = ps2.target[col_path]
    proc = md.proc_cost[node, col_k]
    return dataclasses.replace(
        md, paths=ps2,
        col_path=np.r_[md.col_path, col_path], col_origin=np.r_[md.col_origin, ps2.origin[col_path]],
        col_node=np.r_[md.col_node, node], col_workload=np.r_[md.col_workload, col_k],
        col_cost=np.r_[md.col_cost, proc + transfer], col_proc_cost=np.r_[md.col_proc_cost, proc],
        col_transfer_cost=np.r_[md.col_transfer_cost, transfer],
        entry_col=np.r_[md.entry_col, md.n_cols + entry_local], entry_arc=np.r_[md.entry_arc, entry_arc],
    )


def solve_path(md: MarketData, demand_scale: float | None) -> tuple[linopy.Model, MarketData, str, int]:
    """Solve the path LP with column generation: after each solve, routes with negative
    reduced cost (cheapest under transfer cost + congestion rents, within the latency
    limit) are added as columns until none is left.  ``demand_scale=None`` is the
    max-scale LP.  Returns (model, columns used, termination condition, rounds)."""
    m = None
    for rounds in range(1, MAX_CG_ROUNDS + 1):
        m = None  # release the previous round's model before building the next
        m, _ = build_model(md, demand_scale)
        cond = solve_model(m)
        if cond != "optimal":
            return m, md, cond, rounds
        lam = m.constraints["demand"].dual.values
        lam = np.where(np.isnan(lam), np.inf, lam)  # rows without columns: any route helps
        new = _price_columns(md, lam, -_dual(m, "compute", {}), -_dual(m, "bandwidth", {}),
                             with_costs=demand_scale is not None)
        if not new:
            return m, md, cond, rounds
        md = _extend(md, new)
    raise SolverError(f"column generation did not converge in {MAX_CG_ROUNDS} rounds")


@dataclass
class ScaleLimit:
    """Largest feasible demand scale s* and what binds there."""

    max_scale: float
    aggregate_bound: float
    binding: str
    saturated_nodes: list[str]
    binding_links: list[str]


def demand_scale_limit(s: Scenario, *, transfer_aware: bool = True,
                       latency_limits_ms: dict[str, float] | None = None, formulation: str = "path",
                       md: Coefficients | None = None) -> ScaleLimit:
    """Solve the max-scale LP: maximise s such that s * D can be served."""
    _check_formulation(formulation)
    if md is None:
        md = (prepare if formulation == "path" else coefficients)(
            s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms)
    total_load = float((md.base_demand * md.intensity[None, :]).sum())
    if total_load == 0:
        return ScaleLimit(math.inf, math.inf, "no demand", [], [])
    agg = float(md.capacity_kw.sum() / total_load)
    if formulation == "path":
        m, md, cond, _ = solve_path(md, None)
    else:
        from .arc import ArcModel

        m = ArcModel(md).build(None)
        cond = solve_model(m)
    if cond != "optimal":
        raise SolverError(f"max-scale LP ended with '{cond}'")
    s_star = float(m.variables["scale"].solution.item())
    mu = -_dual(m, "compute", {"node": s.node_ids})
    rho = -_dual(m, "bandwidth", {"link": md.arcs.index})
    nodes = [s.node_ids[i] for i in np.nonzero(mu > 1e-9)[0]]
    links = [md.arcs.index[i] for i in np.nonzero(rho > 1e-9)[0]]
    if s_star >= agg * (1 - 1e-6):
        binding = f"aggregate compute capacity ({md.capacity_kw.sum() / 1000:.6g} MW of AI compute)"
    elif links:
        binding = ("bandwidth on links " + ", ".join(links)
                   + (f" (with compute at {', '.join(nodes)})" if nodes else ""))
    else:
        binding = ("compute reachable within latency limits: nodes " + ", ".join(nodes)
                   + f" are full while aggregate capacity would allow s = {agg:.6g}")
    return ScaleLimit(s_star, agg, binding, nodes, links)


def max_demand_scale(s: Scenario, *, transfer_aware: bool = True,
                     latency_limits_ms: dict[str, float] | None = None, formulation: str = "path") -> float:
    """The largest demand scale s* at which the market clears (an LP, exact)."""
    return demand_scale_limit(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms,
                              formulation=formulation).max_scale


FORMULATIONS = ("path", "arc")


def _check_formulation(formulation: str) -> None:
    if formulation not in FORMULATIONS:
        raise ScenarioError(f"formulation must be one of {', '.join(FORMULATIONS)}, got {formulation!r}")


def solve(s: Scenario, *, transfer_aware: bool = True, demand_scale: float = 1.0,
          latency_limits_ms: dict[str, float] | None = None, formulation: str = "path",
          value_of_lost_load: dict[str, float] | None = None) -> MarketResult:
    """Clear the market.  Returns a :class:`~tokenflow.results.MarketResult`.

    ``formulation``: ``"path"`` (candidate paths; default) or ``"arc"`` (node balance,
    no path enumeration).  ``value_of_lost_load`` ($/M tokens per workload) lets the
    market clear above s* with unserved demand priced at that value.

    Raises :class:`InfeasibleMarketError` (with s* and what binds) when demand
    exceeds what the network can serve, :class:`ScenarioError` for bad inputs.
    """
    from .results import MarketResult

    _check_formulation(formulation)
    try:
        demand_scale = float(demand_scale)
    except (TypeError, ValueError):
        raise ScenarioError(f"demand_scale must be a number, got {demand_scale!r}") from None
    if not math.isfinite(demand_scale) or demand_scale < 0:
        raise ScenarioError(f"demand_scale must be a finite non-negative number, got {demand_scale!r}")
    t0 = time.perf_counter()
    if formulation == "arc":
        from .arc import solve_arc

        md = coefficients(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms,
                          value_of_lost_load=value_of_lost_load)
        am, m, cond, info = solve_arc(md, demand_scale, t0)
    else:
        md = prepare(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms,
                     value_of_lost_load=value_of_lost_load)
        t1 = time.perf_counter()
        m, md, cond, rounds = solve_path(md, demand_scale)
        info = {"build_s": t1 - t0, "solve_s": time.perf_counter() - t1, "n_vars": int(md.n_cols),
                "n_cons": int(m.ncons), "cg_rounds": rounds}
    if cond != "optimal":
        if cond in {"infeasible", "infeasible_or_unbounded"}:
            lim = demand_scale_limit(s, md=md, formulation=formulation)
            if demand_scale > lim.max_scale * (1 + 1e-9):
                raise InfeasibleMarketError(demand_scale, lim.max_scale, lim.binding)
        raise SolverError(f"HiGHS ended with '{cond}' at demand scale {demand_scale:g}")
    info["objective"] = float(m.objective.value)
    if formulation == "arc":
        return am.read(m, demand_scale, info)
    unserved = m.variables["unserved"].solution.values if "unserved" in m.variables else None
    return MarketResult.from_solution(md, demand_scale, m.variables["flow"].solution.values,
                                      _dual(m, "demand", {}), -_dual(m, "compute", {}),
                                      -_dual(m, "bandwidth", {}), info, unserved=unserved)


def export_lp(s: Scenario, path: str | Path, *, transfer_aware: bool = True, demand_scale: float = 1.0,
              latency_limits_ms: dict[str, float] | None = None) -> Path:
    """Write the market LP (path formulation, with the columns column generation ends with)
    as an MPS (or LP, by suffix) file any solver can read; its optimum is the market's."""
    md = prepare(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms)
    m, md, _, _ = solve_path(md, float(demand_scale))
    path = Path(path)
    log = logging.getLogger("linopy")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with linopy.options as opts:
            opts["semantics"] = "v1"
            m.to_file(path)
    finally:
        log.setLevel(level)
    return path


def describe_options() -> str:
    """Solver and options used, for result metadata."""
    import highspy

    return json.dumps({"solver": "highs", "highspy": getattr(highspy, "__version__", "?"),
                       "linopy": linopy.__version__, **HIGHS_OPTIONS})
