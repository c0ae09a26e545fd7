"""The market LP as arrays: the model chapter's equations in one place.

Path formulation (columns = (route, workload) pairs, see :mod:`tokenflow.lp.routes`):

* ``demand[o, k]``:  sum_cols flow + unserved = s D[o, k]       (M tokens/h)   dual: price lambda
* ``compute[n]``:    sum g_k flow <= G[n]                         (kW)           dual: -mu
* ``bandwidth[a]``:  sum (fwd_k [a in p] + rev_k [rev(a) in p]) flow <= 450 B[a]  (GB/h)  dual: -rho
* objective ($/h):   sum flow (processing[n, k] + sum_{a in p} fwd_k c_a + rev_k c_rev(a)) + VoLL unserved

The arc formulation (:mod:`tokenflow.lp.arc`) has the same ``compute`` and ``bandwidth`` rows.
Every demand row exists, also where demand is zero (its dual is still a price).

Rows are scaled before HiGHS sees them (``row_scale``): compute rows by 1 / max g and
bandwidth rows by 1 / max link weight, so that tiny payloads or bandwidths are not
truncated by HiGHS's small-coefficient threshold; duals are scaled back on read-out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ScenarioError
from .inputs import Inputs
from .routes import RoutePool

SMALL = 1e-9  # HiGHS drops matrix values below this (small_matrix_value)
LARGE = 1e15  # refuse right-hand sides / bounds beyond this (HiGHS treats >= 1e20 as infinite)


@dataclass
class LPArrays:
    """One LP in HiGHS's terms (columns, rows, column-wise matrix), *unscaled*."""

    cost: np.ndarray
    col_lb: np.ndarray
    col_ub: np.ndarray
    row_lb: np.ndarray
    row_ub: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    row_scale: np.ndarray
    sense: int = 1  # 1 minimise
    cache: dict | None = None  # matrices derived from (indptr, indices, data), shared by copies

    def __post_init__(self) -> None:
        if self.cache is None:  # made here, not on first use, so that copies made before it share it
            self.cache = {}

    def matrix(self) -> dict:
        """Coordinates of the matrix entries (cached; copies made with dataclasses.replace
        share the cache as long as the matrix is the same)."""
        if self.cache is None:
            self.cache = {}
        if self.cache.get("data") is not self.data or self.cache.get("indices") is not self.indices:
            col = np.repeat(np.arange(self.n_cols), np.diff(self.indptr))
            self.cache.update(data=self.data, indices=self.indices, col=col, row=self.indices.astype(np.int64),
                              absdata=np.abs(self.data))
        return self.cache

    @property
    def n_cols(self) -> int:
        return len(self.cost)

    @property
    def n_rows(self) -> int:
        return len(self.row_lb)


def row_layout(inp: Inputs) -> tuple[int, int, int]:
    """Offsets of the compute and bandwidth row blocks and the row count (demand rows first)."""
    D = inp.N * inp.K
    return D, D + inp.N, D + inp.N + inp.L


def row_scales(inp: Inputs, n_first: int) -> np.ndarray:
    """Scale of every row: 1 for the first ``n_first`` (demand/balance) rows, 1 / max g for
    compute rows, 1 / max link weight for bandwidth rows; refuse weights HiGHS would drop."""
    gmax = float(np.max(inp.intensity))
    wts = np.r_[inp.fwd_gb, inp.rev_gb]
    wmax = float(np.max(wts)) if len(wts) else 1.0
    problems = []
    small_g = inp.intensity[(inp.intensity > 0) & (inp.intensity < SMALL * gmax)]
    if len(small_g):
        problems.append("energy intensities span more than 9 orders of magnitude "
                        f"({small_g.min():g} .. {gmax:g} kWh/M tokens); the LP cannot represent them")
    nz = wts[wts > 0]
    if len(nz) and nz.min() < SMALL * wmax:
        problems.append("link weights (bytes per token) span more than 9 orders of magnitude "
                        f"({nz.min() * 1000:g} .. {wmax * 1000:g} B/token); the LP cannot represent them")
    if problems:
        raise ScenarioError(problems)
    return np.r_[np.ones(n_first), np.full(inp.N, 1.0 / gmax), np.full(inp.L, 1.0 / (wmax if wmax > 0 else 1.0))]


def check_magnitudes(name: str, values: np.ndarray, unit: str) -> None:
    bad = np.abs(values[np.isfinite(values)]) > LARGE
    if bad.any():
        raise ScenarioError(f"{name}: {np.abs(values[np.isfinite(values)]).max():g} {unit} is beyond what the "
                            f"LP solver can represent (limit {LARGE:g} after scaling)")


class PathColumns:
    """The path formulation's columns: a route pool plus (route, workload) pairs."""

    def __init__(self) -> None:
        self.pool = RoutePool()
        self.route = np.zeros(0, dtype=np.int64)
        self.k = np.zeros(0, dtype=np.int64)
        self.index: dict[tuple[int, int], int] = {}

    def __len__(self) -> int:
        return len(self.route)

    def exists(self, o: int, arcs: tuple[int, ...], k: int) -> bool:
        r = self.pool.key.get((o, arcs))
        return r is not None and (r, k) in self.index

    def add(self, items: list[tuple[int, int, tuple[int, ...], int]]) -> int:
        """Add (o, n, arcs, k) columns not present yet; return how many were added."""
        new_r, new_k = [], []
        for o, n, arcs, k in items:
            r = self.pool.add(o, n, arcs)
            if (r, k) in self.index:
                continue
            self.index[(r, k)] = len(self.route) + len(new_r)
            new_r.append(r), new_k.append(k)
        if new_r:
            self.route = np.r_[self.route, np.array(new_r, dtype=np.int64)]
            self.k = np.r_[self.k, np.array(new_k, dtype=np.int64)]
        return len(new_r)

    # ------------------------------------------------------------------ per column arrays
    def origin_node(self) -> tuple[np.ndarray, np.ndarray]:
        o, t, _, _ = self.pool.arrays()
        return o[self.route], t[self.route]

    def rtt_ms(self, inp: Inputs) -> np.ndarray:
        return 2.0 * self.pool.arc_sum(inp.arc_latency_ms)[self.route]

    def transfer_cost(self, inp: Inputs) -> np.ndarray:
        """$/M tokens: sum over route arcs of fwd_k c_a + rev_k c_rev(a)."""
        pf = self.pool.arc_sum(inp.arc_cost)[self.route]
        pr = self.pool.arc_sum(inp.arc_cost[inp.rev_arc])[self.route] if inp.L else pf
        return inp.fwd_gb[self.k] * pf + inp.rev_gb[self.k] * pr

    def proc_cost(self, inp: Inputs) -> np.ndarray:
        _, n = self.origin_node()
        return inp.proc_cost[n, self.k]

    def entries(self, inp: Inputs, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Column-wise entries of columns ``start:`` : (col, row, kind, workload); kind
        0 demand (1), 1 compute (g_k), 2 route arc (fwd_k), 3 opposite arc (rev_k)."""
        cols = np.arange(start, len(self.route))
        r, k = self.route[cols], self.k[cols]
        o, n = self.origin_node()
        o, n = o[cols], n[cols]
        _, _, ptr, flat = self.pool.arrays()
        lens = ptr[r + 1] - ptr[r]
        D, B, _ = row_layout(inp)
        arc_col = np.repeat(cols, lens)
        offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        arcs = flat[np.repeat(ptr[r], lens) + offs] if len(offs) else np.zeros(0, dtype=np.int64)
        arc_k = np.repeat(k, lens)
        parts_c = [cols, cols, arc_col]
        parts_r = [o * inp.K + k, D + n, B + arcs]
        parts_kind = [np.zeros(len(cols), np.int64), np.ones(len(cols), np.int64), np.full(len(arcs), 2)]
        parts_k = [k, k, arc_k]
        if np.any(inp.rev_gb != 0):
            parts_c.append(arc_col), parts_r.append(B + (arcs ^ 1)), parts_kind.append(np.full(len(arcs), 3))
            parts_k.append(arc_k)
        c, row, kind, kk = (np.concatenate(x) for x in (parts_c, parts_r, parts_kind, parts_k))
        order = np.lexsort((row, c))
        return c[order], row[order], kind[order], kk[order]


def entry_values(inp: Inputs, kind: np.ndarray, k: np.ndarray) -> np.ndarray:
    table = np.vstack([np.ones(inp.K), inp.intensity, inp.fwd_gb, inp.rev_gb])
    return table[kind, k]


def path_lp(inp: Inputs, cols: PathColumns, ent: tuple[np.ndarray, ...], scale: float | None,
            col_on: np.ndarray) -> LPArrays:
    """The path LP over the columns so far.  Columns: ``N*K`` unserved (main LP) or one
    scale column (``scale=None``: the max-scale LP, maximise s), then the flow columns.
    ``col_on`` switches flow columns off (upper bound 0) where the latency limit excludes them."""
    N, K = inp.N, inp.K
    D, B, R = row_layout(inp)
    c_col, c_row, c_kind, c_k = ent
    vals = entry_values(inp, c_kind, c_k)
    nf = len(cols)
    if scale is None:
        dmax = float(inp.base_demand.max(initial=0.0)) or 1.0
        d = inp.base_demand.reshape(-1) / dmax
        aux_rows = np.nonzero(d)[0]
        aux_ptr = np.array([0, len(aux_rows)], dtype=np.int64)
        aux_vals = -d[aux_rows]
        aux_cost, aux_lb, aux_ub = np.array([-1.0]), np.zeros(1), np.array([np.inf])
        flow_cost = np.zeros(nf)
        row_lb = np.r_[np.zeros(D), np.full(N + inp.L, -np.inf)]
    else:
        aux_rows = np.arange(D)
        aux_ptr = np.arange(D + 1, dtype=np.int64)
        aux_vals = np.ones(D)
        voll = np.broadcast_to(inp.voll[None, :], (N, K)).reshape(-1)
        aux_cost = np.nan_to_num(voll, nan=0.0)
        aux_lb, aux_ub = np.zeros(D), np.where(np.isfinite(voll), np.inf, 0.0)
        flow_cost = cols.proc_cost(inp) + cols.transfer_cost(inp)
        dem = scale * inp.base_demand.reshape(-1)
        row_lb = np.r_[dem, np.full(N + inp.L, -np.inf)]
    row_ub = np.r_[row_lb[:D], inp.capacity_kw, inp.arc_capacity_gbh]
    counts = np.bincount(c_col, minlength=nf) if nf else np.zeros(0, dtype=np.int64)
    indptr = np.r_[aux_ptr, aux_ptr[-1] + np.cumsum(counts)].astype(np.int64)
    return LPArrays(
        cost=np.r_[aux_cost, flow_cost], col_lb=np.r_[aux_lb, np.zeros(nf)],
        col_ub=np.r_[aux_ub, np.where(col_on, np.inf, 0.0)], row_lb=row_lb, row_ub=row_ub,
        indptr=indptr, indices=np.r_[aux_rows, c_row].astype(np.int32), data=np.r_[aux_vals, vals],
        row_scale=row_scales(inp, D),
    )
