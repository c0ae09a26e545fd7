"""Is the optimal flow pattern unique?  Range of every link's load over all optimal solutions.

Locational prices are unique wherever the dual is; the primal (which path carries what) need
not be.  :func:`link_load_range` solves the market once, fixes the total cost at its optimum
(up to a relative ``tol``) and then minimises and maximises each directed link's load, as the
model counts it (GB/h over capacity), over the optimal face: two small LPs per link, solved
with HiGHS (through ``scipy.optimize.linprog``).

The optimal face is taken over the columns (origin, node, workload, path) the market solve
ends with: candidate paths plus those column generation added.  A route outside that set that
is also optimal could widen a range further, so a reported range is a lower bound of the true
one; a range wider than zero proves alternative optima exist.

(Stand-alone equivalent of ``Market.link_load_range`` of the new engine, for use until it lands.)
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.optimize import linprog
from scipy.sparse import coo_array, vstack

from .errors import SolverError
from .market import bandwidth_entries, prepare, solve_path
from .scenario import Scenario

UNIQUE_TOL = 1e-6  # a utilisation range narrower than this counts as unique


def link_load_range(s: Scenario, *, demand_scale: float = 1.0, transfer_aware: bool = True,
                    latency_limits_ms: dict[str, float] | None = None, tol: float = 1e-9) -> xr.Dataset:
    """Minimum and maximum utilisation (0-1, as the model counts traffic) of every directed
    link over all cost-optimal flows at ``demand_scale``.

    Returns a Dataset over ``link`` with ``min``, ``max`` and ``width`` (= max - min), and the
    attributes ``unique`` (every width <= 1e-6), ``objective`` ($/h) and ``tol`` (the relative
    slack allowed on the total cost).
    """
    md = prepare(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms)
    m, md, cond, _ = solve_path(md, float(demand_scale))
    if cond != "optimal":
        raise SolverError(f"link_load_range: the market LP ended with '{cond}' at demand scale {demand_scale:g}")
    opt = float(m.objective.value)
    n = md.n_cols
    N, K = md.base_demand.shape
    L = len(md.arcs)
    cols = np.arange(n)
    # demand rows (equalities)
    key = md.col_origin * K + md.col_workload
    rows_used, row_of = np.unique(key, return_inverse=True)
    a_eq = coo_array((np.ones(n), (row_of, cols)), shape=(len(rows_used), n)).tocsr()
    b_eq = md.base_demand.reshape(-1)[rows_used] * float(demand_scale)
    # compute rows, bandwidth rows and the cost row (inequalities)
    a_cmp = coo_array((md.intensity[md.col_workload], (md.col_node, cols)), shape=(N, n))
    arc, ent, coeff = bandwidth_entries(md, md.entry_arc, md.entry_col, md.col_workload[md.entry_col])
    a_bw = coo_array((coeff, (arc, ent)), shape=(L, n)).tocsr()
    cost = md.col_cost.reshape(1, -1)
    a_ub = vstack([a_cmp.tocsr(), a_bw, coo_array(cost).tocsr()]).tocsr()
    b_ub = np.r_[md.capacity_kw, md.arc_capacity_gbh, opt + tol * max(1.0, abs(opt))]
    lo = np.full(L, np.nan)
    hi = np.full(L, np.nan)
    for a in range(L):
        row = a_bw[[a], :].toarray().ravel()
        if not row.any():
            lo[a] = hi[a] = 0.0
            continue
        for sign, out in ((1.0, lo), (-1.0, hi)):
            res = linprog(sign * row, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None),
                          method="highs")
            if res.status != 0:
                raise SolverError(f"link_load_range: bound LP for {md.arcs.index[a]} failed: {res.message}")
            out[a] = sign * res.fun / md.arc_capacity_gbh[a]
    links = list(md.arcs.index)
    ds = xr.Dataset({
        "min": xr.DataArray(lo, dims="link", attrs={"unit": "1", "description": "lowest utilisation over optima"}),
        "max": xr.DataArray(hi, dims="link", attrs={"unit": "1", "description": "highest utilisation over optima"}),
    }, coords={"link": links})
    ds["width"] = ds["max"] - ds["min"]
    ds.attrs.update({"unique": int(bool((ds["width"] <= UNIQUE_TOL).all())), "objective": opt, "tol": tol,
                     "demand_scale": float(demand_scale), "scenario": s.name})
    return ds


def saturated_count_range(rng: xr.Dataset, threshold: float = 0.999) -> tuple[int, int]:
    """(links saturated in every optimum, links saturated in some optimum) at ``threshold``."""
    return int((rng["min"] >= threshold).sum()), int((rng["max"] >= threshold).sum())
