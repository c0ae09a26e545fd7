"""The token-flow market: one linopy model for both variants, solved with HiGHS.

Variables ``flow[col]`` >= 0 (M tokens/h): workload k demanded at origin o,
processed at node n, carried on candidate path p.  A column exists only when
the path's round-trip time is within k's latency limit.

* ``demand[node, workload]``:  sum_cols flow = s * D          dual: price lambda ($/M tokens)
* ``compute[node]``:           sum g_k flow <= G (kW)          dual: -mu, mu = compute rent ($/kWh)
* ``bandwidth[link]``:         sum w_k/1000 flow <= 450 B (GB/h)  dual: -rho, rho = congestion rent ($/GB)
* objective ($/h):  sum flow * (g_k (PUE_n p_n + opex) + sum_arcs w_k/1000 c_a)

``w_k`` is the payload of workload k in the transfer-aware model and one
reference payload for every workload in the token-equivalent baseline.
"""

from __future__ import annotations

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

from .errors import InfeasibleMarketError, ScenarioError, SolverError
from .network import PathSet, arc_table, candidate_paths
from .scenario import Scenario

if TYPE_CHECKING:
    from .results import MarketResult

GBPS_TO_GB_PER_H = 3600.0 / 8.0  # 1 Gbps sustained for an hour = 450 GB
HIGHS_OPTIONS = {"output_flag": False, "log_to_console": False, "random_seed": 0, "threads": 1}


@dataclass
class MarketData:
    """Everything the LP needs, as flat numpy arrays over columns (``col``)."""

    scenario: Scenario
    transfer_aware: bool
    latency_ms: pd.Series  # workload -> round-trip limit used
    paths: PathSet
    arcs: pd.DataFrame
    col_path: np.ndarray
    col_origin: np.ndarray
    col_node: np.ndarray
    col_workload: np.ndarray
    col_cost: np.ndarray  # $/M tokens
    col_proc_cost: np.ndarray
    col_transfer_cost: np.ndarray
    weight_gb: np.ndarray  # GB per M tokens counted on links, per workload (model view)
    payload_gb: np.ndarray  # GB per M tokens actually moved, per workload (physical)
    proc_cost: np.ndarray  # node x workload, $/M tokens
    energy_cost: np.ndarray  # node x workload, $/M tokens (electricity part)
    intensity: np.ndarray  # workload, kWh/M tokens
    capacity_kw: np.ndarray  # node
    arc_capacity_gbh: np.ndarray  # link, GB/h
    entry_col: np.ndarray  # (column, arc) incidence, column side
    entry_arc: np.ndarray  # (column, arc) incidence, arc side
    base_demand: np.ndarray  # node x workload, M tokens/h at scale 1

    @property
    def n_cols(self) -> int:
        return len(self.col_path)


def resolve_latency(s: Scenario, latency_limits_ms: dict[str, float] | None) -> pd.Series:
    """Round-trip latency limit per workload (ms), with overrides checked."""
    lat = s.workloads["latency_limit_ms"].astype(float).copy()
    problems = []
    for k, v in (latency_limits_ms or {}).items():
        if k not in lat.index:
            problems.append(f"latency_limits_ms: unknown workload {k!r} (workloads: {', '.join(lat.index)})")
            continue
        try:
            v = float(v)
        except (TypeError, ValueError):
            problems.append(f"latency_limits_ms.{k}: expected a number of ms, got {v!r}")
            continue
        if not math.isfinite(v) or v < 0:
            problems.append(f"latency_limits_ms.{k}: must be a non-negative number of ms, got {v!r}")
            continue
        lat[k] = v
    if problems:
        raise ScenarioError(problems)
    return lat


def prepare(s: Scenario, *, transfer_aware: bool = True,
            latency_limits_ms: dict[str, float] | None = None) -> MarketData:
    """Enumerate columns and coefficients; raise :class:`ScenarioError` for demand
    that cannot reach any compute within its latency limit."""
    lat = resolve_latency(s, latency_limits_ms)
    ps = candidate_paths(s)
    arcs = arc_table(s)
    wl = s.workloads
    K = len(wl)
    cap = s.compute_capacity_kw.to_numpy()
    g = wl["energy_kwh_per_mtok"].to_numpy()
    payload_gb = wl["payload_bytes_per_token"].to_numpy() / 1000.0  # B/token -> GB per M tokens
    if transfer_aware:
        weight_gb = payload_gb.copy()
    else:
        weight_gb = np.full(K, s.params["reference_payload_bytes_per_token"] / 1000.0)
    elec = (s.node_pue * s.nodes["electricity_usd_per_kwh"]).to_numpy()
    energy_cost = np.outer(elec, g)
    proc_cost = np.outer(elec + s.params["other_opex_usd_per_kwh"], g)
    arc_cost = arcs["transfer_cost_usd_per_gb"].to_numpy()
    hops = np.diff(ps.ptr)
    path_transfer = np.add.reduceat(np.append(arc_cost[ps.arcs], 0.0), ps.ptr[:-1]) * (hops > 0) \
        if len(ps.arcs) else np.zeros(len(ps))

    cols_p, cols_k = [], []
    useful = cap[ps.target] > 0
    for k in range(K):
        ok = useful & (ps.rtt_ms <= lat.iloc[k] + 1e-9)
        idx = np.nonzero(ok)[0]
        cols_p.append(idx)
        cols_k.append(np.full(len(idx), k))
    col_path = np.concatenate(cols_p)
    col_workload = np.concatenate(cols_k)
    col_origin = ps.origin[col_path]
    col_node = ps.target[col_path]
    col_proc = proc_cost[col_node, col_workload]
    col_transfer = path_transfer[col_path] * weight_gb[col_workload]

    # (column, arc) incidence
    lens = hops[col_path]
    entry_col = np.repeat(np.arange(len(col_path)), lens)
    starts = np.repeat(ps.ptr[col_path], lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    entry_arc = ps.arcs[starts + offs] if len(offs) else np.zeros(0, dtype=np.int64)

    base = s.demand.transpose("node", "workload").to_numpy()
    # every positive demand needs at least one column
    has_col = np.zeros_like(base, dtype=bool)
    has_col[col_origin, col_workload] = True
    bad = np.argwhere((base > 0) & ~has_col)
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
        scenario=s, transfer_aware=transfer_aware, latency_ms=lat, paths=ps, arcs=arcs,
        col_path=col_path, col_origin=col_origin, col_node=col_node, col_workload=col_workload,
        col_cost=col_proc + col_transfer, col_proc_cost=col_proc, col_transfer_cost=col_transfer,
        weight_gb=weight_gb, payload_gb=payload_gb, proc_cost=proc_cost, energy_cost=energy_cost,
        intensity=g, capacity_kw=cap,
        arc_capacity_gbh=arcs["bandwidth_gbps"].to_numpy() * GBPS_TO_GB_PER_H,
        entry_col=entry_col, entry_arc=entry_arc, base_demand=base,
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
    link_idx = pd.Index(md.arcs.index, name="link")
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
        else:
            m.add_constraints(dem == base * demand_scale, name="demand", mask=mask)
        comp = _rows(m, labels, md.col_node, cols, md.intensity[md.col_workload], {"node": node_idx})
        cap = xr.DataArray(md.capacity_kw, coords={"node": node_idx})
        used_nodes = xr.DataArray(np.isin(np.arange(len(node_idx)), md.col_node), coords=cap.coords)
        m.add_constraints(comp <= cap, name="compute", mask=used_nodes)
        if len(link_idx):
            bw = _rows(m, labels, md.entry_arc, md.entry_col, md.weight_gb[md.col_workload[md.entry_col]],
                       {"link": link_idx})
            bcap = xr.DataArray(md.arc_capacity_gbh, coords={"link": link_idx})
            used_links = xr.DataArray(np.isin(np.arange(len(link_idx)), md.entry_arc), coords=bcap.coords)
            m.add_constraints(bw <= bcap, name="bandwidth", mask=used_links)
        if demand_scale is None:
            m.add_objective(-1.0 * scale)
        else:
            cost = xr.DataArray(md.col_cost, coords={"col": pd.RangeIndex(md.n_cols, name="col")})
            m.add_objective((flow * cost).sum())
    return m, {"flow": flow}


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


@dataclass
class ScaleLimit:
    """Largest feasible demand scale s* and what binds there."""

    max_scale: float
    aggregate_bound: float
    binding: str
    saturated_nodes: list[str]
    binding_links: list[str]


def demand_scale_limit(s: Scenario, *, transfer_aware: bool = True,
                       latency_limits_ms: dict[str, float] | None = None,
                       md: MarketData | None = None) -> ScaleLimit:
    """Solve the max-scale LP: maximise s such that s * D can be served."""
    md = md or prepare(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms)
    total_load = float((md.base_demand * md.intensity[None, :]).sum())
    agg = float(md.capacity_kw.sum() / total_load) if total_load > 0 else math.inf
    if total_load == 0:
        return ScaleLimit(math.inf, math.inf, "no demand", [], [])
    m, _ = build_model(md, None)
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
                     latency_limits_ms: dict[str, float] | None = None) -> float:
    """The largest demand scale s* at which the market clears (an LP, exact)."""
    return demand_scale_limit(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms).max_scale


def solve(s: Scenario, *, transfer_aware: bool = True, demand_scale: float = 1.0,
          latency_limits_ms: dict[str, float] | None = None) -> MarketResult:
    """Clear the market.  Returns a :class:`~tokenflow.results.MarketResult`.

    Raises :class:`InfeasibleMarketError` (with s* and what binds) when demand
    exceeds what the network can serve, :class:`ScenarioError` for bad inputs.
    """
    from .results import MarketResult

    try:
        demand_scale = float(demand_scale)
    except (TypeError, ValueError):
        raise ScenarioError(f"demand_scale must be a number, got {demand_scale!r}") from None
    if not math.isfinite(demand_scale) or demand_scale < 0:
        raise ScenarioError(f"demand_scale must be a finite non-negative number, got {demand_scale!r}")
    t0 = time.perf_counter()
    md = prepare(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms)
    m, _ = build_model(md, demand_scale)
    t1 = time.perf_counter()
    cond = solve_model(m)
    t2 = time.perf_counter()
    if cond != "optimal":
        if cond in {"infeasible", "infeasible_or_unbounded"}:
            lim = demand_scale_limit(s, md=md)
            if demand_scale > lim.max_scale * (1 + 1e-9):
                raise InfeasibleMarketError(demand_scale, lim.max_scale, lim.binding)
        raise SolverError(f"HiGHS ended with '{cond}' at demand scale {demand_scale:g}")
    x = m.variables["flow"].solution.values
    lam = _dual(m, "demand", {})
    mu = -_dual(m, "compute", {})
    rho = -_dual(m, "bandwidth", {})
    info = {"build_s": t1 - t0, "solve_s": t2 - t1, "n_vars": int(md.n_cols),
            "n_cons": int(m.ncons), "objective": float(m.objective.value)}
    return MarketResult.from_solution(md, demand_scale, x, lam, mu, rho, info)


def export_lp(s: Scenario, path: str | Path, *, transfer_aware: bool = True, demand_scale: float = 1.0,
              latency_limits_ms: dict[str, float] | None = None) -> Path:
    """Write the market LP as an MPS (or LP, by suffix) file any solver can read."""
    md = prepare(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms)
    m, _ = build_model(md, float(demand_scale))
    path = Path(path)
    with linopy.options as opts:
        opts["semantics"] = "v1"
        m.to_file(path)
    return path


def describe_options() -> str:
    """Solver and options used, for result metadata."""
    import highspy

    return json.dumps({"solver": "highs", "highspy": getattr(highspy, "__version__", "?"),
                       "linopy": linopy.__version__, **HIGHS_OPTIONS})
