"""The rules the market shares with the planner and the bids: prices where demand is zero (the
marginal cost of the first token) and the size checks of one market's inputs.

Used by :class:`tokenflow.clearing.engine.Market`, :func:`tokenflow.plan` and
:func:`tokenflow.clear_bids` alike, so that each prices and refuses the same way.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ScenarioError
from ..lp.arc import ArcStructure
from ..lp.inputs import Inputs
from ..lp.model import check_magnitudes
from ..lp.routes import Graph, arc_lengths, cheapest, shared_graph

#: M tokens/h (one token per hour): demand below this is below what the solver resolves
#: (its primal tolerance is 1e-9); such a row is priced as a row without demand, at the
#: marginal cost of its first token
DEMAND_RESOLUTION = 1e-6


def first_token_prices(inp: Inputs, lam: np.ndarray, mu: np.ndarray, rho: np.ndarray, scale: float, *,
                       graph: Graph | None = None, arc: ArcStructure | None = None) -> dict:
    """Where demand is zero the LP's dual is not unique; the price is the marginal cost of
    the first token: the cheapest admissible route at the current rents (or the VoLL).
    Demand below :data:`DEMAND_RESOLUTION` is below the solver's resolution and priced
    the same way (its price tends to that value as demand vanishes).  ``lam`` (node x
    workload, $/M tokens) is overwritten in place at those cells; ``mu`` ($/kWh) and ``rho``
    ($/GB) are the rents of the LP that produced ``lam``.  Routes by the path formulation's
    exact search (``graph``, built from ``inp`` when not given) or, with ``arc``, over that
    arc structure's admissible arcs.  Returns {(o, k): (cost, node, arcs)} of the cells
    priced.  Used by :class:`Market`, :func:`tokenflow.plan` and :func:`tokenflow.clear_bids`."""
    zero = (scale * inp.base_demand) < DEMAND_RESOLUTION
    if not zero.any():
        return {}
    if arc is None:
        best = cheapest(inp, graph if graph is not None else shared_graph(inp), mu, rho, zero)
    else:
        best = _arc_cheapest(inp, arc, mu, rho, zero)
    for o, k in np.argwhere(zero):
        c = best.get((int(o), int(k)), (np.nan,))[0]
        v = inp.voll[k]
        lam[o, k] = np.nanmin([c, v]) + 0.0 if np.isfinite(c) or np.isfinite(v) else np.nan
    return best


def _arc_cheapest(inp: Inputs, st: ArcStructure, mu: np.ndarray, rho: np.ndarray, rows: np.ndarray) -> dict:
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import dijkstra

    node_cost = inp.proc_cost + inp.intensity[None, :] * mu[:, None]
    lengths = arc_lengths(inp, rho, True) if inp.L else np.zeros((inp.K, 0))
    out = {}
    for o, k in np.argwhere(rows):
        ci = st.commodity(int(o), int(k))
        arcs, nodes = st.allowed(ci)
        if len(arcs):
            ln = lengths[k][arcs]
            g = csr_array((ln + 1e-12 * (1 + ln.max()), (inp.au[arcs], inp.av[arcs])), shape=(inp.N, inp.N))
            dist = dijkstra(g, directed=True, indices=int(o))
        else:
            dist = np.where(np.arange(inp.N) == o, 0.0, np.inf)
        if len(nodes):
            full = node_cost[nodes, k] + dist[nodes]
            i = int(np.argmin(full))
            if np.isfinite(full[i]):
                out[(int(o), int(k))] = (float(full[i]), int(nodes[i]), None)
    return out


def check_resolution(inp: Inputs, what: str = "capacity_mw") -> None:
    """A compute capacity that is positive but serves less than one token per hour
    (:data:`DEMAND_RESOLUTION`) of the most energy-intensive workload is below what the
    solver resolves: its rent, and so the prices, would be arbitrary.  Refuse it."""
    gmax = float(np.max(inp.intensity))
    tiny = (inp.capacity_kw > 0) & (inp.capacity_kw < DEMAND_RESOLUTION * gmax)
    if tiny.any():
        raise ScenarioError([f"{what}.{inp.node_ids[i]}: {inp.capacity_kw[i] / 1000 / inp.ai_share:g} MW "
                             "serves less than one token per hour, below what the LP solver resolves; "
                             "set it to 0 (no compute) or to a real capacity" for i in np.nonzero(tiny)[0]])


def check_sizes(inp: Inputs, scale: float | None = None) -> None:
    """The engine's size checks of one market's inputs (used by :class:`Market` and by
    :func:`tokenflow.plan` and :func:`tokenflow.clear_bids`, which build their own LPs):
    compute capacity and link capacity per token within what the LP solver represents,
    no capacity below its resolution (:func:`check_resolution`) and, with ``scale``, the
    demand at that scale within range.  Raises :class:`ScenarioError`."""
    check_magnitudes("compute capacity", inp.capacity_kw, "kW")
    wmax = max(float(np.max(np.r_[inp.fwd_gb, inp.rev_gb], initial=0.0)), 1e-300)
    check_magnitudes("link capacity / link weight", inp.arc_capacity_gbh / wmax, "M tokens/h")
    check_resolution(inp)
    if scale is not None:
        check_magnitudes("demand (demand_scale x base demand)", scale * inp.base_demand, "M tokens/h")
