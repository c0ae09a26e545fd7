"""The arc (node-balance) formulation: an independent second LP for the same market.

No path enumeration: per-commodity flows ``f[arc]`` on every directed arc, processing
``y[node]`` and a flow balance at every node.  Its duals are the same prices as the
path formulation's wherever both describe the same market.

Latency limits.  A workload whose limit admits every shortest route between a demand
node and a compute node (``2 x shortest one-way latency <= limit`` for all such pairs)
is one aggregated commodity, exactly as in the path formulation with unrestricted
paths.  A workload whose limit binds is split into one commodity per origin, which may
only use arcs inside its latency ball (``2 x (d(o,u) + latency(u,v)) <= limit``) and
be processed at nodes within the limit.  That is a *relaxation*: a flow may wander
inside the ball on a route longer than the limit, which the path formulation never
allows, so with binding limits the arc objective is a lower bound of the path one.

Bandwidth rows follow the modelling-choice contract: commodity flow ``x_k[a]`` puts
``fwd_k`` on arc ``a`` and ``rev_k`` on its opposite arc (the response retraces the
request), and costs ``fwd_k c_a + rev_k c_rev(a)`` per M tokens.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from ..core.errors import ScenarioError, TokenflowError
from .inputs import Inputs
from .model import LPArrays, row_scales
from .routes import LAT_TOL


class ArcStructure:
    """Commodities, variables and rows of the arc LP as flat arrays."""

    def __init__(self, inp: Inputs, *, by_origin: bool = False) -> None:
        """``by_origin``: one commodity per (workload, origin) for every workload, so that where a
        token is processed relative to its origin is a variable of the LP (the optimal-face
        statistics of :mod:`tokenflow.clearing.face`); the market itself aggregates where it can."""
        N, K, A = inp.N, inp.K, inp.L
        au, av, lat = inp.au, inp.av, inp.arc_latency_ms
        self.N, self.K, self.A = N, K, A
        if A:
            dist = dijkstra(csr_array((np.maximum(lat, 1e-12), (au, av)), shape=(N, N)), directed=True)
        else:
            dist = np.where(np.eye(N, dtype=bool), 0.0, np.inf)
        has_cap = inp.capacity_kw > 0
        com_k, com_o = [], []
        for k in range(K):
            reach = dist[:, has_cap]
            finite = np.isfinite(reach)
            if not by_origin and np.all(2 * reach[finite] <= inp.latency_ms[k] + LAT_TOL):
                com_k.append(k), com_o.append(-1)
            else:
                for o in range(N):
                    com_k.append(k), com_o.append(o)
        self.com_k = np.array(com_k, dtype=np.int64)
        self.com_o = np.array(com_o, dtype=np.int64)
        f_c, f_a, y_c, y_n, r_c, r_n = [], [], [], [], [], []
        for ci, (k, o) in enumerate(zip(com_k, com_o)):
            if o < 0:
                arcs_ok, nodes_ok = np.arange(A), np.arange(N)
            else:
                d = dist[o]
                arcs_ok = np.nonzero(2 * (d[au] + lat) <= inp.latency_ms[k] + LAT_TOL)[0]
                nodes_ok = np.nonzero(2 * d <= inp.latency_ms[k] + LAT_TOL)[0]
            f_c.append(np.full(len(arcs_ok), ci)), f_a.append(arcs_ok)
            proc_nodes = nodes_ok[has_cap[nodes_ok]]
            y_c.append(np.full(len(proc_nodes), ci)), y_n.append(proc_nodes)
            r_c.append(np.full(len(nodes_ok), ci)), r_n.append(nodes_ok)
        cat = np.concatenate
        self.f_c, self.f_a = cat(f_c).astype(np.int64), cat(f_a).astype(np.int64)
        self.y_c, self.y_n = cat(y_c).astype(np.int64), cat(y_n).astype(np.int64)
        self.r_c, self.r_n = cat(r_c).astype(np.int64), cat(r_n).astype(np.int64)
        row_of = np.full((len(com_k), N), -1, dtype=np.int64)
        row_of[self.r_c, self.r_n] = np.arange(len(self.r_c))
        self.row_of = row_of
        # balance row that holds the demand of (node, workload)
        origin_row = np.empty((N, K), dtype=np.int64)
        com_of = {(int(k), int(o)): ci for ci, (k, o) in enumerate(zip(self.com_k, self.com_o))}
        for k in range(K):
            for n in range(N):
                ci = com_of.get((k, -1), com_of.get((k, n)))
                origin_row[n, k] = row_of[ci, n]
        self.origin_row = origin_row
        self.dist = dist
        # unreachable demand: an origin-specific commodity whose ball holds no compute
        problems = []
        n_proc = np.bincount(self.y_c, minlength=len(self.com_k))
        for ci, (k, o) in enumerate(zip(self.com_k, self.com_o)):
            if o >= 0 and inp.base_demand[o, k] > 0 and not n_proc[ci] and np.isnan(inp.voll[k]):
                problems.append(f"unreachable demand: {inp.workload_ids[k]} at node {inp.node_ids[o]!r} cannot "
                                f"reach any node with compute capacity within its {inp.latency_ms[k]:g} ms latency "
                                "limit")
        if problems:
            raise ScenarioError(problems)

    def key(self) -> tuple:
        return (self.com_k.tobytes(), self.com_o.tobytes(), self.f_c.tobytes(), self.f_a.tobytes(),
                self.y_c.tobytes(), self.y_n.tobytes(), self.r_c.tobytes(), self.r_n.tobytes())

    @property
    def n_flow(self) -> int:
        return len(self.f_c)

    @property
    def n_proc(self) -> int:
        return len(self.y_c)

    def lp(self, inp: Inputs, scale: float | None) -> LPArrays:
        """Columns: aux (N*K unserved, or the scale column), arc flows, processing."""
        N, K = inp.N, inp.K
        nb = len(self.r_c)
        nf, ny = self.n_flow, self.n_proc
        k_f, k_y = self.com_k[self.f_c], self.com_k[self.y_c]
        B = nb + N
        # arc flow: +1 at tail balance, -1 at head balance, fwd on arc, rev on the opposite arc
        tail = self.row_of[self.f_c, inp.au[self.f_a]]
        head = self.row_of[self.f_c, inp.av[self.f_a]]
        f_rows = [tail, head, B + self.f_a]
        f_vals = [np.ones(nf), -np.ones(nf), inp.fwd_gb[k_f]]
        if np.any(inp.rev_gb != 0):
            f_rows.append(B + (self.f_a ^ 1)), f_vals.append(inp.rev_gb[k_f])
        f_col = np.tile(np.arange(nf), len(f_rows))
        f_rows, f_vals = np.concatenate(f_rows), np.concatenate(f_vals)
        order = np.lexsort((f_rows, f_col))
        f_col, f_rows, f_vals = f_col[order], f_rows[order], f_vals[order]
        y_rows = np.c_[self.row_of[self.y_c, self.y_n], nb + self.y_n].reshape(-1)
        y_vals = np.c_[np.ones(ny), inp.intensity[k_y]].reshape(-1)
        rhs_base = np.zeros(nb)
        rhs_base[self.origin_row.reshape(-1)] = inp.base_demand.reshape(-1)
        if scale is None:
            dmax = float(inp.base_demand.max(initial=0.0)) or 1.0
            aux_rows = np.nonzero(rhs_base)[0]
            aux_vals = -rhs_base[aux_rows] / dmax
            aux_ptr = np.array([0, len(aux_rows)], dtype=np.int64)
            aux_cost, aux_lb, aux_ub = np.array([-1.0]), np.zeros(1), np.array([np.inf])
            fcost, ycost = np.zeros(nf), np.zeros(ny)
            bal = np.zeros(nb)
        else:
            aux_rows = self.origin_row.reshape(-1)
            aux_vals = np.ones(N * K)
            aux_ptr = np.arange(N * K + 1, dtype=np.int64)
            voll = np.broadcast_to(inp.voll[None, :], (N, K)).reshape(-1)
            aux_cost = np.nan_to_num(voll, nan=0.0)
            aux_lb, aux_ub = np.zeros(N * K), np.where(np.isfinite(voll), np.inf, 0.0)
            fcost = inp.fwd_gb[k_f] * inp.arc_cost[self.f_a] + inp.rev_gb[k_f] * inp.arc_cost[self.f_a ^ 1]
            ycost = inp.proc_cost[self.y_n, k_y]
            bal = scale * rhs_base
        f_counts = np.bincount(f_col, minlength=nf)
        indptr = np.r_[aux_ptr, aux_ptr[-1] + np.cumsum(f_counts),
                       aux_ptr[-1] + f_counts.sum() + 2 * np.arange(1, ny + 1)].astype(np.int64)
        return LPArrays(
            cost=np.r_[aux_cost, fcost, ycost], col_lb=np.r_[aux_lb, np.zeros(nf + ny)],
            col_ub=np.r_[aux_ub, np.full(nf + ny, np.inf)],
            row_lb=np.r_[bal, np.full(N + inp.L, -np.inf)], row_ub=np.r_[bal, inp.capacity_kw, inp.arc_capacity_gbh],
            indptr=indptr, indices=np.r_[aux_rows, f_rows, y_rows].astype(np.int32),
            data=np.r_[aux_vals, f_vals, y_vals], row_scale=row_scales(inp, nb),
        )

    def commodity(self, o: int, k: int) -> int:
        """The commodity that carries the demand of workload ``k`` at ``o``."""
        agg = np.nonzero((self.com_k == k) & (self.com_o == -1))[0]
        return int(agg[0]) if len(agg) else int(np.nonzero((self.com_k == k) & (self.com_o == o))[0][0])

    def allowed(self, ci: int) -> tuple[np.ndarray, np.ndarray]:
        """Arcs and processing nodes commodity ``ci`` may use."""
        return self.f_a[self.f_c == ci], self.y_n[self.y_c == ci]


def exact_arc_structure(inp: Inputs, fn: str) -> ArcStructure:
    """The arc structure of ``inp`` for a caller (``fn``) that needs it exact: where a latency
    limit binds, the arc formulation relaxes it, so the call is refused (:class:`TokenflowError`
    naming the workloads).  Used by :func:`tokenflow.plan` and :func:`tokenflow.clear_bids`."""
    st = ArcStructure(inp)
    if np.any(st.com_o >= 0):
        binding = sorted({inp.workload_ids[k] for k in st.com_k[st.com_o >= 0]})
        raise TokenflowError(f"{fn}: latency limits bind for {', '.join(binding)}; the arc formulation would "
                             "relax them - use formulation='path' (exact)")
    return st
