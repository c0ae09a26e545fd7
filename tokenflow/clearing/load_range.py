"""Ranges over the optimal face: the LP of every dispatch within a relative slack of the optimum
(:func:`optimal_face`) and each link's smallest and largest load over it
(:meth:`~tokenflow.clearing.engine.Market.link_load_range`, a mixin of ``Market``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import xarray as xr

from ..core.errors import ScenarioError, SolverError
from ..lp.model import LPArrays
from ..lp.solver import LiveLP, verify


class LoadRange:
    """Mixin of :class:`~tokenflow.clearing.engine.Market`: link load ranges over the optimal face."""

    def link_load_range(self, links: list[str] | None = None, *, rel_tol: float = 1e-9, **changes) -> xr.Dataset:
        """With the total cost held at its optimum z (row ``cost <= z + rel_tol max(|z|, 1)``),
        the smallest and largest load of each directed link over all optimal dispatches.

        Returns a Dataset (dim ``link``) with ``min_load``/``max_load`` (GB/h, as the model
        counts traffic), ``min_utilization``/``max_utilization`` and ``unique`` (range within
        1e-6 of capacity).  Exact for the arc formulation and for the path formulation
        where no latency limit binds (then both describe the same dispatches; the range is
        computed on the arc LP).  With binding limits the path formulation's range covers
        the routes column generation has found, stated in ``attrs["exact"]``.

        The cost row keeps the objective's own coefficients up to one common factor chosen
        so that its smallest and largest entries sit symmetrically around 1 (never below the
        solver's small-coefficient threshold ``SMALL``): a cost of 8e-6 $/M tokens must not be
        dropped, or traffic would circulate for free inside the "optimal" face.  Every range
        solution is checked: its cost recomputed as ``cost @ x`` must be within
        ``rel_tol max(|z|, 1)`` plus the solver's feasibility tolerance of z, and its
        column bounds and rows must hold, or the range is refused (``SolverError``).
        ``attrs["max_excess_cost"]`` ($/h) is the largest recomputed excess over z."""
        from ..core import validate as _v

        # the arguments first, then the change and the ranges in one transaction: a refused
        # call (a bad link, a bad rel_tol, a failed range) leaves the market as found
        rel_tol = _v.number(rel_tol, "rel_tol", "link_load_range", lo=0.0, hi=1.0, unit="(relative slack)")
        chosen = list(self.inp.link_ids) if links is None else \
            _v.names(links, "links", "link_load_range", kind="directed links ('a->b')")
        unknown = [lk for lk in chosen if lk not in self.inp.link_ids]
        if unknown:
            raise ScenarioError(f"links: unknown directed link(s) {unknown}; links are named 'a->b'")
        with self._transaction():
            return self._link_load_range(chosen, links, rel_tol, changes)

    def _link_load_range(self, chosen: list[str], links: list[str] | None, rel_tol: float,
                         changes: dict) -> xr.Dataset:
        from scipy.sparse import csc_array

        from ..lp.solver import HIGHS_OPTIONS

        r = self.solve(**changes)
        inp = self.inp
        if self.formulation == "path":
            arc_market = type(self)(self.scenario, transfer_aware=self._ta, formulation="arc",
                                latency_limits_ms=self._lat or None, value_of_lost_load=self._voll)
            exact = bool(np.all(arc_market.arc.com_o == -1))
            if exact:
                return arc_market.link_load_range(links, rel_tol=rel_tol, demand_scale=self.demand_scale)
            arr, _ = self._path_arrays(self.demand_scale)
        else:
            exact = True
            arr = self.arc.lp(inp, self.demand_scale)
        z = r.objective
        load_rows = arr.row_ub.shape[0] - inp.L + np.arange(inp.L)
        A = csc_array((arr.data, arr.indices, arr.indptr), shape=(arr.n_rows, arr.n_cols)).tocsr()
        obj_row, cscale, slack = optimal_face(arr, z, rel_tol, "link load range")
        live = LiveLP()
        live.sync(obj_row)
        feas = float(HIGHS_OPTIONS["primal_feasibility_tolerance"])
        lo, hi, excess = [], [], 0.0
        for lk in chosen:
            i = load_rows[inp.link_ids.index(lk)]
            cols_i, vals_i = A.indices[A.indptr[i]:A.indptr[i + 1]], A.data[A.indptr[i]:A.indptr[i + 1]]
            vals = []
            for sign in (1.0, -1.0):
                cost = np.zeros(arr.n_cols)
                cost[cols_i] = sign * vals_i
                live.sync(dataclasses.replace(obj_row, cost=cost))
                if live.run() != "optimal":
                    raise SolverError(f"link load range of {lk}: HiGHS did not find an optimum")
                x = np.asarray(live.h.getSolution().col_value)
                true_cost = float(arr.cost @ x)
                # the solver may break the scaled cost row by its feasibility tolerance
                allowed = slack + feas * (1.0 / cscale + float(np.abs(arr.cost) @ np.abs(x)))
                if true_cost - z > allowed:
                    raise SolverError(f"link load range of {lk}: a range solution costs {true_cost - z:.6g} $/h "
                                      f"more than the optimum {z:.6g} $/h (allowed {allowed:.3g}); refused")
                # rows and column bounds of the market itself (primal check only)
                verify(dataclasses.replace(arr, cost=np.zeros(arr.n_cols)), x, np.zeros(arr.n_rows),
                       lambda j, lk=lk: f"range solution of {lk}: row {j}",
                       lambda j, lk=lk: f"range solution of {lk}: column {j}")
                excess = max(excess, true_cost - z)
                vals.append(float(vals_i @ x[cols_i]))
            lo.append(vals[0]), hi.append(vals[1])
        cap = inp.arc_capacity_gbh[[inp.link_ids.index(lk) for lk in chosen]]
        lo, hi = np.maximum(np.array(lo), 0.0), np.array(hi)
        ds = xr.Dataset(
            {"min_load": ("link", lo, {"unit": "GB/h"}), "max_load": ("link", hi, {"unit": "GB/h"}),
             "min_utilization": ("link", lo / cap, {"unit": "1"}),
             "max_utilization": ("link", hi / cap, {"unit": "1"}),
             "unique": ("link", (hi - lo) <= 1e-6 * cap)},
            coords={"link": chosen})
        ds.attrs.update({"exact": int(exact), "objective": z, "rel_tol": rel_tol,
                         "formulation": self.formulation, "demand_scale": self.demand_scale,
                         "max_excess_cost": excess, "cost_row_scale": cscale})
        return ds


def optimal_face(arr: LPArrays, z: float, rel_tol: float, what: str) -> tuple[LPArrays, float, float]:
    """``arr`` with one more row, ``cost . x <= z + slack`` (slack = ``rel_tol`` max(|z|, 1) $/h),
    and a zero objective: the LP of every dispatch within ``slack`` of the optimum ``z``.

    The cost row is scaled by one factor, the geometric centre of its entries (their ratios
    kept), not by 1/z: that pushed small costs (batch training's ~8e-6 $/M-token link cost)
    below what HiGHS keeps (:data:`tokenflow.lp.model.SMALL`).  A row whose entries span more
    than the solver can hold raises :class:`SolverError` naming ``what``.  Returns the LP, the
    row's scale and the slack."""
    from scipy.sparse import csc_array, vstack

    from ..lp import model  # SMALL read at call time (tests lower the solver's threshold)

    SMALL = model.SMALL
    nz = np.abs(arr.cost[arr.cost != 0])
    # the geometric centre in logs: min x max underflows to 0 for a subnormal cost (5e-324)
    lo_log, hi_log = (math.log(float(nz.min())), math.log(float(nz.max()))) if len(nz) else (0.0, 0.0)
    cscale = math.exp(-(lo_log + hi_log) / 2)
    if len(nz) and (lo_log - hi_log) / 2 < math.log(10 * SMALL):
        raise SolverError(f"{what}: cost coefficients span {math.exp(min(hi_log - lo_log, 700.0)):.3g}x, "
                          "more than the solver can hold in one row")
    slack = rel_tol * max(abs(z), 1.0)
    A = csc_array((arr.data, arr.indices, arr.indptr), shape=(arr.n_rows, arr.n_cols))
    full = vstack([A, csc_array(arr.cost[None, :])]).tocsc()
    full.sort_indices()
    lp = LPArrays(cost=np.zeros(arr.n_cols), col_lb=arr.col_lb, col_ub=arr.col_ub,
                  row_lb=np.r_[arr.row_lb, -np.inf], row_ub=np.r_[arr.row_ub, z + slack],
                  indptr=full.indptr.astype(np.int64), indices=full.indices.astype(np.int32), data=full.data,
                  row_scale=np.r_[arr.row_scale, cscale])
    return lp, cscale, slack
