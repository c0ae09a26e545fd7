"""The largest demand scale s* at which a market clears and what binds there: the max-scale LP
(with column generation in the path formulation, seeded on large networks by the arc
formulation's routes), the checks before it, and the explanation of a demand that does not
clear.  A mixin of :class:`~tokenflow.clearing.engine.Market`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import InfeasibleMarketError, ScenarioError, SolverError
from ..lp.arc import ArcStructure
from ..lp.inputs import Inputs
from ..lp.model import LARGE, SMALL, check_magnitudes
from ..lp.solver import LiveLP, verify
from .rules import check_resolution, check_sizes

#: path formulation, networks of at least this many nodes: s* column generation starts from
#: the routes of the arc formulation's max-scale solution (see :meth:`Market._arc_seed`)
ARC_SEED_MIN_NODES = 100


@dataclass
class ScaleLimit:
    """Largest feasible demand scale s* and what binds there."""

    max_scale: float
    aggregate_bound: float
    binding: str
    saturated_nodes: list[str]
    binding_links: list[str]


class ScaleLimits:
    """Mixin of :class:`~tokenflow.clearing.engine.Market`: s* and demand that does not clear."""

    def _aggregate(self) -> tuple[float, float]:
        inp = self.inp
        total_load = float((inp.base_demand * inp.intensity[None, :]).sum())
        return total_load, (float(inp.capacity_kw.sum() / total_load) if total_load > 0 else math.inf)

    def scale_limit(self, **changes) -> ScaleLimit:
        """The largest demand scale s* at which the market clears (exact: the max-scale LP,
        with column generation in the path formulation) and what binds there.  ``changes``
        as for :meth:`solve` (they persist; a refused call changes nothing)."""
        with self._transaction():
            return self._scale_limit(**changes)

    def _scale_limit(self, **changes) -> ScaleLimit:
        self._apply(changes)
        if self._limit_cache is not None:
            return self._limit_cache
        inp = self.inp
        total_load, agg = self._aggregate()
        if total_load == 0:
            return ScaleLimit(math.inf, math.inf, "no demand", [], [])
        self._check_resolution()
        self._check_demand_span()
        lost = self._unreachable(with_voll=True)
        if lost:  # only possible with a value of lost load: no scale > 0 serves every token
            self._limit_cache = ScaleLimit(0.0, agg, "; ".join(lost) + " (it can only go unserved, at the value of "
                                           "lost load)", [], [])
            return self._limit_cache
        if self.formulation == "path":
            if inp.N >= ARC_SEED_MIN_NODES:
                self._arc_seed()
            cond, _, sol = self._cg(self._smax, None)
            n_first = inp.N * inp.K
        else:
            arr = self.arc.lp(inp, None)
            self._smax.sync(arr)
            cond = self._smax.run()
            sol = (*self._smax.solution(), arr) if cond == "optimal" else None
            n_first = len(self.arc.r_c)
        if cond != "optimal":
            raise SolverError(f"max-scale LP ended with '{cond}'")
        x, y, _, arr = sol
        verify(arr, x, y, self._row_name(n_first), self._col_name)
        dmax = float(inp.base_demand.max())
        s_star = max(float(x[0]), 0.0) / dmax + 0.0  # x[0] = s* x (largest demand cell)
        _, mu, rho = self._duals(y, n_first)
        ytol = 1e-9 * max(1.0, float(np.abs(mu).max(initial=0.0)), float(np.abs(rho).max(initial=0.0)))
        nodes = [inp.node_ids[i] for i in np.nonzero(mu > ytol)[0]]
        links = [inp.link_ids[i] for i in np.nonzero(rho > ytol)[0]]
        if s_star >= agg * (1 - 1e-6):
            binding = f"aggregate compute capacity ({inp.capacity_kw.sum() / 1000:.6g} MW of AI compute)"
        elif links:
            binding = ("bandwidth on links " + ", ".join(links)
                       + (f" (with compute at {', '.join(nodes)})" if nodes else ""))
        elif nodes:
            binding = ("compute reachable within latency limits: nodes " + ", ".join(nodes)
                       + f" are full while aggregate capacity would allow s = {agg:.6g}")
        else:
            binding = (f"compute reachable within latency limits (aggregate capacity would allow "
                       f"s = {agg:.6g}); no single node or link has a positive rent")
        self._limit_cache = ScaleLimit(s_star, agg, binding, nodes, links)
        return self._limit_cache

    def _arc_seed(self) -> int:
        """Path formulation: add the routes of the arc formulation's max-scale solution as
        columns (flow decomposition).  On large sparse networks column generation for s*
        from scratch takes hundreds of rounds of a degenerate LP (a 1,005-node star: ~290 s
        against 2 s for the arc LP); from these routes it needs a few.  The result stays
        the path formulation's exact s*: column generation still prices every route, and a
        route the arc LP found that breaks a latency limit is switched off like any other.
        The arc LP is solved without latency limits (one commodity per workload), so it
        stays small where limits bind.
        Returns the number of columns added."""
        inp = self.inp
        # latency limits left out: one commodity per workload keeps the arc LP small (its
        # routes that break a limit are switched off; column generation finds the others)
        loose = dataclasses.replace(inp, latency_ms=np.full(inp.K, np.inf))
        try:
            st = ArcStructure(loose)
        except ScenarioError:
            return 0
        arr = st.lp(loose, None)
        live = LiveLP()
        live.sync(arr)
        if live.run() != "optimal":
            return 0
        x = live.solution()[0]
        dmax = float(inp.base_demand.max()) or 1.0
        t = max(float(x[0]), 0.0)
        f = x[1:1 + st.n_flow]
        y = x[1 + st.n_flow:1 + st.n_flow + st.n_proc]
        tol = 1e-9 * max(1.0, float(np.abs(x).max(initial=0.0)))
        items = []
        for ci in range(len(st.com_k)):
            k, o = int(st.com_k[ci]), int(st.com_o[ci])
            supply = np.zeros(inp.N)
            if o < 0:
                supply += t * inp.base_demand[:, k] / dmax
            else:
                supply[o] = t * inp.base_demand[o, k] / dmax
            sink = np.zeros(inp.N)
            sel = st.y_c == ci
            np.add.at(sink, st.y_n[sel], y[sel])
            fsel = np.nonzero((st.f_c == ci) & (f > tol))[0]
            items += _decompose(inp, k, supply, sink, st.f_a[fsel], f[fsel].copy(), tol)
        return self.cols.add(items)

    def _check_resolution(self) -> None:
        """:func:`check_resolution` of the market's inputs."""
        check_resolution(self.inp)

    def _check_demand_span(self) -> None:
        """The max-scale LP has one column with the demand cells as coefficients (relative
        to the largest); HiGHS drops coefficients below 1e-9, so cells spanning more than
        nine orders of magnitude would silently drop out of s*: refuse them."""
        d = self.inp.base_demand
        pos = d[d > 0]
        if len(pos) and float(pos.min()) < SMALL * float(pos.max()):
            lo, hi = np.unravel_index(np.argmin(np.where(d > 0, d, np.inf)), d.shape), \
                np.unravel_index(np.argmax(d), d.shape)
            name = self.inp.node_ids
            wl = self.inp.workload_ids
            raise ScenarioError(
                f"demand: the demand cells span more than 9 orders of magnitude ({float(pos.min()):g} M tokens/h "
                f"at {name[lo[0]]}/{wl[lo[1]]} .. {float(pos.max()):g} at {name[hi[0]]}/{wl[hi[1]]}); "
                "the LP solver cannot resolve s* for them (set the negligible cells to 0)")

    def _infeasible(self, scale: float) -> InfeasibleMarketError:
        lim = self._explain_limit(scale)
        return InfeasibleMarketError(scale, lim.max_scale, lim.binding)

    def _explain_limit(self, scale: float) -> ScaleLimit:
        """s* to explain a scale already known not to clear.  Where s* itself cannot be
        resolved (demand cells spanning more than nine orders of magnitude, which
        :meth:`scale_limit` refuses) the market is still infeasible at ``scale``: raise
        :class:`InfeasibleMarketError` with s* = NaN and the reason, not a ScenarioError
        (only for demand this market has cleared before; other demand is refused as such)."""
        try:
            return self._scale_limit()
        except ScenarioError as exc:
            # demand this market has cleared before (at a smaller scale) makes it infeasible
            # here; demand never cleared is refused as such (a refused change is undone)
            cleared = getattr(self, "_cleared_demand", None)
            if "span more than 9 orders" not in str(exc) or cleared is None \
                    or cleared.shape != self.inp.base_demand.shape or not np.array_equal(cleared,
                                                                                       self.inp.base_demand):
                raise
            raise InfeasibleMarketError(scale, math.nan, f"s* not computed: {exc}") from None

    def _precheck(self, scale: float) -> None:
        """Demand beyond aggregate capacity is infeasible whatever its magnitude (no solve
        needed); right-hand sides the solver cannot represent are refused."""
        inp = self.inp
        if self._pre is None or self._pre[0] is not inp:
            no_voll = np.isnan(inp.voll)
            load = float((inp.base_demand[:, no_voll] * inp.intensity[None, no_voll]).sum())
            check_sizes(inp)
            self._pre = (inp, load, float(inp.capacity_kw.sum()), float(inp.base_demand.max(initial=0.0)))
        _, load, cap, dmax = self._pre
        if scale * load > cap * (1 + 1e-9):
            raise self._infeasible(scale)
        if scale * dmax > LARGE:
            check_magnitudes("demand (demand_scale x base demand)", scale * inp.base_demand, "M tokens/h")


def _decompose(inp: Inputs, k: int, supply: np.ndarray, sink: np.ndarray, arcs: np.ndarray, flow: np.ndarray,
               tol: float) -> list[tuple[int, int, tuple[int, ...], int]]:
    """Routes (origin, processing node, arcs, k) of one commodity's arc flow (greedy flow
    decomposition; cycles are cancelled).  Bounded: every step removes an arc or empties
    a source or a sink."""
    out: dict[int, list[int]] = {}
    for i, a in enumerate(arcs):
        out.setdefault(int(inp.au[a]), []).append(i)
    supply, sink = supply.copy(), sink.copy()
    routes = []
    budget = 4 * (len(arcs) + 2 * inp.N) + 10
    for u in np.nonzero(supply > tol)[0]:
        u = int(u)
        while supply[u] > tol and budget > 0:
            budget -= 1
            v, path, seen = u, [], {u: 0}
            while sink[v] <= tol:
                nxt = [i for i in out.get(v, []) if flow[i] > tol]
                if not nxt:
                    break
                i = nxt[0]
                w = int(inp.av[arcs[i]])
                if w in seen:  # a cycle: cancel it and continue from w
                    cyc = path[seen[w]:] + [i]
                    flow[cyc] -= float(flow[cyc].min())
                    path = path[:seen[w]]
                    seen = {n: j for n, j in seen.items() if j <= seen[w]}
                    v = w
                    continue
                path.append(i)
                seen[w] = len(path)
                v = w
            if sink[v] <= tol:
                break
            amount = min(float(supply[u]), float(sink[v]), float(flow[path].min()) if path else math.inf)
            if amount <= tol:
                break
            supply[u] -= amount
            sink[v] -= amount
            if path:
                flow[path] -= amount
            routes.append((u, v, tuple(int(arcs[i]) for i in path), k))
    return routes
