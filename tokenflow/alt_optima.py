"""Is the optimal flow pattern unique?  Range of every link's load over all optimal solutions.

Locational prices are unique wherever the dual is; the primal (which path carries what) need
not be.  :func:`link_load_range` fixes the total cost at its optimum (up to a relative ``tol``)
and then minimises and maximises each directed link's load, as the model counts it (GB/h over
capacity), over the optimal face, on the engine's live HiGHS instances
(:meth:`tokenflow.engine.Market.link_load_range`).  Where no latency limit binds the range is
computed on the arc formulation, which holds every route, so it is exact; with binding limits
it covers the routes column generation has found (``attrs["exact"] = 0``).
"""

from __future__ import annotations

import xarray as xr

from .engine import Market
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
                     "exact": rng.attrs["exact"]})
    return ds


def saturated_count_range(rng: xr.Dataset, threshold: float = 0.999) -> tuple[int, int]:
    """(links saturated in every optimum, links saturated in some optimum) at ``threshold``."""
    return int((rng["min"] >= threshold).sum()), int((rng["max"] >= threshold).sum())
