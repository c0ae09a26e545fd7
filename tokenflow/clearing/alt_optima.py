"""Is the optimal flow pattern unique?  Range of every link's load over all optimal solutions.

Locational prices are unique wherever the dual is; the primal (which path carries what) need
not be.  :func:`link_load_range` fixes the total cost at its optimum (up to a relative ``tol``)
and then minimises and maximises each directed link's load, as the model counts it (GB/h over
capacity), over the optimal face, on the engine's live HiGHS instances
(:meth:`tokenflow.clearing.engine.Market.link_load_range`).  Where no latency limit binds the range is
computed on the arc formulation, which holds every route, so it is exact; with binding limits
it covers the routes column generation has found (``attrs["exact"] = 0``).  The cost row keeps
every objective coefficient (batch training's transfer cost is about 8e-6 $/M tokens per link)
above the solver's small-coefficient threshold, and every range solution's cost is checked.
"""

from __future__ import annotations

import xarray as xr

from ..scenarios.scenario_class import Scenario
from .engine import Market

UNIQUE_TOL = 1e-6  # a utilisation range narrower than this counts as unique


def link_load_range(s: Scenario, *, demand_scale: float = 1.0, transfer_aware: bool = True,
                    latency_limits_ms: dict[str, float] | None = None, tol: float = 1e-9) -> xr.Dataset:
    """Minimum and maximum utilisation (0-1, as the model counts traffic) of every directed
    link over all cost-optimal flows at ``demand_scale``.

    Returns a Dataset over ``link`` with ``min``, ``max`` and ``width`` (= max - min), and the
    attributes ``unique`` (every width <= 1e-6), ``objective`` ($/h), ``tol`` (the relative
    slack allowed on the total cost) and ``max_excess_cost`` ($/h: the largest cost of a
    range solution above the optimum, recomputed as cost @ x; the engine refuses a range
    whose solutions cost more than the slack allows).
    """
    m = Market(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms)
    rng = m.link_load_range(rel_tol=tol, demand_scale=demand_scale)
    ds = xr.Dataset({
        "min": xr.DataArray(rng["min_utilization"].values, dims="link",
                            attrs={"unit": "1", "description": "lowest utilisation over optima"}),
        "max": xr.DataArray(rng["max_utilization"].values, dims="link",
                            attrs={"unit": "1", "description": "highest utilisation over optima"}),
    }, coords={"link": rng["link"].values})
    ds["width"] = ds["max"] - ds["min"]
    ds.attrs.update({"unique": int(bool((ds["width"] <= UNIQUE_TOL).all())), "objective": rng.attrs["objective"],
                     "tol": tol, "demand_scale": float(demand_scale), "scenario": s.name,
                     "exact": rng.attrs["exact"], "max_excess_cost": rng.attrs["max_excess_cost"]})
    return ds


def saturated_count_range(rng: xr.Dataset, threshold: float = 0.999) -> tuple[int, int]:
    """(links saturated in every optimum, links saturated in some optimum) at ``threshold``."""
    return int((rng["min"] >= threshold).sum()), int((rng["max"] >= threshold).sum())


def rent_links_at_capacity(rng: xr.Dataset, rent: xr.DataArray, rent_tol: float = 1e-9,
                           threshold: float = 1 - 1e-6) -> tuple[list[str], list[str]]:
    """(links with a congestion rent above ``rent_tol`` $/GB, those of them whose minimum
    utilisation over all optima is at least ``threshold``).  By complementary slackness
    the two lists must be equal; the book states the check."""
    r = rent.sel(link=rng["link"])
    pos = [str(lk) for lk in rng["link"].values[r.values > rent_tol]]
    full = [lk for lk in pos if float(rng["min"].sel(link=lk)) >= threshold]
    return pos, full
