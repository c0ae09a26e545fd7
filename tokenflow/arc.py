"""The arc (node-balance) formulation: an independent second LP for the same market.

No path enumeration: per-workload flows ``f[link]`` on every directed link, processing
``y[node]`` and a flow balance at every node.  Its duals are the same prices as the
path formulation's wherever both describe the same market.

Latency limits.  A workload whose limit admits every shortest route between a demand
node and a compute node (``2 x shortest one-way latency <= limit`` for all such pairs)
is one aggregated commodity, exactly as in the path formulation with unrestricted
paths.  A workload whose limit binds is split into one commodity per origin, which may
only use links inside its latency ball (``2 x (d(o,u) + latency(u,v)) <= limit``) and
be processed at nodes within the limit.  That is a *relaxation*: a flow may wander
inside the ball on a route longer than the limit, which the path formulation never
allows, so with binding limits the arc objective is a lower bound of the path one.
"""

from __future__ import annotations

import time

import linopy
import numpy as np
import pandas as pd
import xarray as xr
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from .errors import ScenarioError
from .market import Coefficients, _rows, add_capacity_rows, add_lost_load, bandwidth_entries, lost_load_cost


class ArcModel:
    """Entries of the arc LP as flat arrays (built once, used by build and read-back)."""

    def __init__(self, c: Coefficients) -> None:
        s = c.scenario
        self.c = c
        nodes = s.node_ids
        N, K = len(nodes), len(s.workload_ids)
        pos = {n: i for i, n in enumerate(nodes)}
        au = np.array([pos[u] for u in c.arcs["origin"]], dtype=np.int64)
        av = np.array([pos[v] for v in c.arcs["target"]], dtype=np.int64)
        lat = c.arcs["latency_ms"].to_numpy()
        self.au, self.av = au, av
        A = len(au)
        if A:
            graph = csr_array((np.maximum(lat, 1e-9), (au, av)), shape=(N, N))
            dist = dijkstra(graph, directed=True)
        else:
            dist = np.where(np.eye(N, dtype=bool), 0.0, np.inf)
        has_cap = c.capacity_kw > 0
        demand_any = c.base_demand.sum(axis=1) >= 0  # every node can hold demand (prices everywhere)
        # commodities: (workload k, origin o or -1 for aggregated)
        com_k, com_o = [], []
        for k in range(K):
            limit = float(c.latency_ms.iloc[k])
            reach = dist[np.ix_(demand_any, has_cap)]
            finite = np.isfinite(reach)
            if np.all(2 * reach[finite] <= limit + 1e-9):
                com_k.append(k), com_o.append(-1)
            else:
                for o in range(N):
                    com_k.append(k), com_o.append(o)
        self.com_k = np.array(com_k, dtype=np.int64)
        self.com_o = np.array(com_o, dtype=np.int64)
        # entries: flows (commodity, arc), processing (commodity, node), balance rows (commodity, node)
        f_c, f_a, y_c, y_n, r_c, r_n = [], [], [], [], [], []
        for ci, (k, o) in enumerate(zip(com_k, com_o)):
            limit = float(c.latency_ms.iloc[k])
            if o < 0:
                arcs_ok = np.arange(A)
                nodes_ok = np.arange(N)
            else:
                d = dist[o]
                arcs_ok = np.nonzero(2 * (d[au] + lat) <= limit + 1e-9)[0]
                nodes_ok = np.nonzero(2 * d <= limit + 1e-9)[0]
            f_c.append(np.full(len(arcs_ok), ci)), f_a.append(arcs_ok)
            proc_nodes = nodes_ok[has_cap[nodes_ok]]
            y_c.append(np.full(len(proc_nodes), ci)), y_n.append(proc_nodes)
            r_c.append(np.full(len(nodes_ok), ci)), r_n.append(nodes_ok)
        cat = np.concatenate
        self.f_c, self.f_a = cat(f_c), cat(f_a)
        self.y_c, self.y_n = cat(y_c), cat(y_n)
        self.r_c, self.r_n = cat(r_c), cat(r_n)
        # row index of (commodity, node)
        self.row_of = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(self.r_c, self.r_n))}
        self.N, self.K = N, K
        # unreachable demand: an origin-specific commodity whose ball holds no compute
        base = c.base_demand
        problems = []
        for ci, (k, o) in enumerate(zip(self.com_k, self.com_o)):
            if o >= 0 and base[o, k] > 0 and not np.any(self.y_c == ci) and \
                    (c.voll is None or np.isnan(c.voll[k])):
                problems.append(f"unreachable demand: {s.workload_ids[k]} at node {nodes[o]!r} cannot reach any "
                                f"node with compute capacity within its {c.latency_ms.iloc[k]:g} ms latency limit")
        if problems:
            raise ScenarioError(problems)

    @property
    def n_vars(self) -> int:
        return len(self.f_c) + len(self.y_c)

    def build(self, demand_scale: float | None) -> linopy.Model:
        c, s = self.c, self.c.scenario
        k_of_f, k_of_y = self.com_k[self.f_c], self.com_k[self.y_c]
        with linopy.options as opts:
            opts["semantics"] = "v1"
            m = linopy.Model(force_dim_names=True)
            nf, ny = len(self.f_c), len(self.y_c)
            flow = m.add_variables(lower=0.0, coords=[pd.RangeIndex(nf, name="arcflow")], name="arcflow")
            proc = m.add_variables(lower=0.0, coords=[pd.RangeIndex(ny, name="proc")], name="proc")
            # one label vector over both variables for the row helper
            labels = np.concatenate([flow.labels.values, proc.labels.values])
            f_ent, y_ent = np.arange(nf), nf + np.arange(ny)
            key = np.array([self.row_of[(int(a), int(b))] for a, b in
                            zip(np.r_[self.f_c, self.f_c, self.y_c],
                                np.r_[self.au[self.f_a], self.av[self.f_a], self.y_n])], dtype=np.int64)
            # balance: processing + outflow - inflow (+ unserved) = s * demand (at origin)
            ent = np.r_[f_ent, f_ent, y_ent]
            coeff = np.r_[np.ones(nf), -np.ones(nf), np.ones(ny)]
            rows = pd.RangeIndex(len(self.r_c), name="balance")
            bal = _rows(m, labels, key, ent, coeff, {"balance": rows})
            rhs_base = np.zeros(len(self.r_c))
            for i, (ci, n) in enumerate(zip(self.r_c, self.r_n)):
                k, o = self.com_k[ci], self.com_o[ci]
                if o < 0 or o == n:
                    rhs_base[i] = c.base_demand[n, k]
            base = xr.DataArray(rhs_base, coords={"balance": rows})
            if demand_scale is None:
                scale = m.add_variables(lower=0.0, name="scale")
                m.add_constraints(bal - base * scale == 0, name="balance")
            elif c.voll is not None:
                node_idx = pd.Index(s.node_ids, name="node")
                wl_idx = pd.Index(s.workload_ids, name="workload")
                lost = add_lost_load(m, c.voll, node_idx, wl_idx)
                lost_rows = self._origin_rows()
                lost_flat = lost.labels.values.reshape(-1)
                lost_expr = _rows(m, lost_flat, lost_rows, np.arange(len(lost_flat)), np.ones(len(lost_flat)),
                                  {"balance": rows})
                m.add_constraints(bal + lost_expr == base * demand_scale, name="balance")
            else:
                m.add_constraints(bal == base * demand_scale, name="balance")
            add_capacity_rows(m, c, labels, (self.y_n, y_ent, c.intensity[k_of_y]),
                              bandwidth_entries(c, self.f_a, f_ent, k_of_f))
            if demand_scale is None:
                m.add_objective(-1.0 * scale)
            else:
                fcost = xr.DataArray(c.arc_transfer_cost(self.f_a, k_of_f),
                                     coords={"arcflow": flow.indexes["arcflow"]})
                ycost = xr.DataArray(c.proc_cost[self.y_n, k_of_y], coords={"proc": proc.indexes["proc"]})
                obj = (flow * fcost).sum() + (proc * ycost).sum()
                if c.voll is not None:
                    obj = obj + lost_load_cost(m, c.voll, pd.Index(s.node_ids, name="node"),
                                               pd.Index(s.workload_ids, name="workload"))
                m.add_objective(obj)
        return m

    def _origin_rows(self) -> np.ndarray:
        """Balance row that holds the demand of (node, workload), flattened node-major."""
        out = np.empty(self.N * self.K, dtype=np.int64)
        for n in range(self.N):
            for k in range(self.K):
                agg = np.nonzero((self.com_k == k) & (self.com_o == -1))[0]
                ci = int(agg[0]) if len(agg) else int(np.nonzero((self.com_k == k) & (self.com_o == n))[0][0])
                out[n * self.K + k] = self.row_of[(ci, n)]
        return out

    def read(self, m: linopy.Model, demand_scale: float, info: dict):
        """MarketResult from a solved model."""
        from .results import MarketResult

        c = self.c
        f = np.maximum(m.variables["arcflow"].solution.values, 0.0)
        y = np.maximum(m.variables["proc"].solution.values, 0.0)
        N, K, L = self.N, self.K, len(c.arcs)
        k_of_f, k_of_y = self.com_k[self.f_c], self.com_k[self.y_c]
        proc = np.zeros((N, K))
        np.add.at(proc, (self.y_n, k_of_y), y)
        link_tok = np.zeros((L, K))
        np.add.at(link_tok, (self.f_a, k_of_f), f)
        transfer = float((f * c.arc_transfer_cost(self.f_a, k_of_f)).sum())
        trans = np.full((N, N, K), np.nan)
        for k in range(K):
            if np.any((self.com_k == k) & (self.com_o >= 0)):
                trans[:, :, k] = 0.0
        o_of_y = self.com_o[self.y_c]
        spec = o_of_y >= 0
        np.add.at(trans, (o_of_y[spec], self.y_n[spec], k_of_y[spec]), y[spec])
        dual = m.constraints["balance"].dual.values
        lam = dual[self._origin_rows()].reshape(N, K)
        mu = -np.nan_to_num(m.constraints["compute"].dual.values) if "compute" in m.constraints else np.zeros(N)
        rho = -np.nan_to_num(m.constraints["bandwidth"].dual.values) if "bandwidth" in m.constraints \
            else np.zeros(L)
        unserved = m.variables["unserved"].solution.values if "unserved" in m.variables else None
        return MarketResult.assemble(c, demand_scale, proc, trans, link_tok, transfer, lam, mu, rho, info,
                                     unserved=unserved, formulation="arc")


def solve_arc(c: Coefficients, demand_scale: float, t0: float):
    from .market import solve_model

    am = ArcModel(c)
    m = am.build(demand_scale)
    t1 = time.perf_counter()
    cond = solve_model(m)
    t2 = time.perf_counter()
    return am, m, cond, {"build_s": t1 - t0, "solve_s": t2 - t1, "n_vars": am.n_vars, "n_cons": int(m.ncons)}
