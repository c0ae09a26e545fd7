"""Statistics of a dispatch over the whole optimal face, not at the vertex the solver returns.

Where the market's optimum is not unique, a share, a count or a rank read off the solver's
dispatch is one point of a set; a printed value must then be a range.  :func:`statistic_range`
holds the total cost at its optimum ``z`` (row ``cost <= z + rel_tol max(|z|, 1)``,
:func:`tokenflow.clearing.load_range.optimal_face`) and minimises and maximises a linear statistic of the
dispatch on an arc LP with one commodity per (workload, origin), so that where a token is
processed relative to its origin is a variable.  The arc LP's optimum is checked against the
market's (path formulation, column generation) before any range is computed: they must agree
to ``1e-9`` relative, or the range is refused (:class:`~tokenflow.core.errors.SolverError`).

:func:`local_share_range` gives B1 (image minus chat tokens processed at their origin) and
:func:`utilization_range` each node's compute utilisation (F1's ranks) over the face.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..core.errors import SolverError
from ..lp.arc import ArcStructure
from ..lp.inputs import build_inputs
from ..lp.solver import LiveLP
from ..scenarios.scenario_class import Scenario
from .load_range import optimal_face
from .market import solve

OBJECTIVE_RTOL = 1e-9  # arc LP optimum vs the market's, relative


class Face:
    """The optimal face of one market (``transfer_aware``, ``demand_scale``, default limits)."""

    def __init__(self, s: Scenario, *, demand_scale: float, transfer_aware: bool = True,
                 rel_tol: float = 1e-9) -> None:
        self.market = solve(s, transfer_aware=transfer_aware, demand_scale=demand_scale)
        self.inp = build_inputs(s, transfer_aware=transfer_aware)
        self.st = ArcStructure(self.inp, by_origin=True)
        self.scale = float(demand_scale)
        self.arr = self.st.lp(self.inp, self.scale)
        live = LiveLP()
        live.sync(self.arr)
        if live.run() != "optimal":
            raise SolverError("optimal face: the origin-tracked arc LP did not solve")
        z_arc = float(live.h.getInfo().objective_function_value)
        z = float(self.market.objective)
        if abs(z_arc - z) > OBJECTIVE_RTOL * max(abs(z), 1.0):
            raise SolverError(f"optimal face: the origin-tracked arc LP's optimum {z_arc:.12g} $/h differs from the "
                              f"market's {z:.12g} $/h (a latency limit binds on a route the arc LP relaxes); "
                              "no range computed")
        self.objective = z
        self.face, _, _ = optimal_face(self.arr, max(z, z_arc), rel_tol, "optimal face")
        self.live = LiveLP()
        self.live.sync(self.face)
        self.offset_y = self.inp.N * self.inp.K + self.st.n_flow

    def proc_columns(self, k: int, *, at_origin: bool | None = None, node: int | None = None) -> np.ndarray:
        """Columns of processing of workload ``k`` (at the token's origin only, or at ``node``)."""
        st = self.st
        j = np.nonzero(st.com_k[st.y_c] == k)[0]
        if at_origin:
            j = j[st.y_n[j] == st.com_o[st.y_c[j]]]
        if node is not None:
            j = j[st.y_n[j] == node]
        return self.offset_y + j

    def extremes(self, cost: np.ndarray, what: str) -> tuple[float, float, np.ndarray, np.ndarray]:
        """(min, max) of ``cost @ x`` over the face and the two dispatches."""
        out, xs = [], []
        for sign in (1.0, -1.0):
            self.live.sync(dataclasses.replace(self.face, cost=sign * cost))
            if self.live.run() != "optimal":
                raise SolverError(f"optimal face: the range of {what} did not solve")
            x = np.asarray(self.live.h.getSolution().col_value)
            xs.append(x)
            out.append(float(cost @ x))
        return out[0], out[1], xs[0], xs[1]


def local_share_range(s: Scenario, *, demand_scale: float, workloads: tuple[str, str] = ("image", "chat"),
                      transfer_aware: bool = True) -> dict[str, float]:
    """Over every optimal dispatch: the smallest and largest difference, in percentage points,
    between the share of ``workloads[0]``'s tokens processed at their origin and
    ``workloads[1]``'s; with each share's own range.  Returns ``low``, ``high`` and
    ``<workload>_low``/``<workload>_high`` (%)."""
    f = Face(s, demand_scale=demand_scale, transfer_aware=transfer_aware)
    wid = f.inp.workload_ids
    total = {w: float(f.inp.base_demand[:, wid.index(w)].sum()) * f.scale for w in workloads}
    cost = np.zeros(f.face.n_cols)
    out: dict[str, float] = {}
    for sign, w in zip((1.0, -1.0), workloads):
        one = np.zeros(f.face.n_cols)
        one[f.proc_columns(wid.index(w), at_origin=True)] = 100.0 / total[w]
        lo, hi, _, _ = f.extremes(one, f"{w}'s local share")
        out[f"{w}_low"], out[f"{w}_high"] = lo, hi
        cost += sign * one
    out["low"], out["high"], _, _ = f.extremes(cost, "the local-share difference")
    return out


def utilization_range(s: Scenario, *, demand_scale: float, transfer_aware: bool = True,
                      statistic: Callable[[np.ndarray], float] | None = None) -> dict:
    """Each node's compute utilisation (0-1) over every optimal dispatch: ``low``/``high``
    arrays (node order of the scenario) and ``unique`` (every range within 1e-9).  With
    ``statistic`` (a function of the utilisation vector), also its values at the 2N extreme
    dispatches computed (``stat_low``/``stat_high``: a range over those dispatches, exact when
    every utilisation is unique)."""
    f = Face(s, demand_scale=demand_scale, transfer_aware=transfer_aware)
    inp, st = f.inp, f.st
    cap = inp.capacity_kw
    n_y = st.n_proc
    use = np.zeros((inp.N, f.face.n_cols))
    use[st.y_n, f.offset_y + np.arange(n_y)] = inp.intensity[st.com_k[st.y_c]]
    lo, hi, stats = np.zeros(inp.N), np.zeros(inp.N), []
    for n in range(inp.N):
        if cap[n] <= 0:
            lo[n] = hi[n] = 0.0
            continue
        a, b, xa, xb = f.extremes(use[n] / cap[n], f"the utilisation of {inp.node_ids[n]}")
        lo[n], hi[n] = a, b
        if statistic is not None:
            for x in (xa, xb):
                u = np.divide(use @ x, cap, out=np.zeros(inp.N), where=cap > 0)
                stats.append(statistic(u))
    out = {"node": list(inp.node_ids), "low": lo, "high": hi, "unique": bool(np.all(hi - lo <= 1e-9))}
    if statistic is not None:
        out["stat_low"], out["stat_high"] = float(np.nanmin(stats)), float(np.nanmax(stats))
    return out
