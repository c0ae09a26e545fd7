"""Sweeps over demand scale and latency limit, returning labelled xarray Datasets."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from .errors import InfeasibleMarketError
from .market import solve
from .scenario import Scenario


def demand_sweep(s: Scenario, scales: Iterable[float], **solve_kwargs) -> xr.Dataset:
    """Solve at each demand scale.  Infeasible points are kept with ``feasible = False``
    and NaN outcomes.  Variables: ``mean_price`` (workload; demand-weighted, $/M tokens),
    ``objective`` ($/h), ``cost`` (component, $/h), ``cost_per_mtok`` ($/M tokens),
    ``compute_utilization`` (system-wide, 0-1), ``node_utilization`` (node),
    ``saturated_links`` (count), ``max_link_utilization``."""
    scales = [float(x) for x in scales]
    rows = []
    template = None
    for sc in scales:
        try:
            r = solve(s, demand_scale=sc, **solve_kwargs)
        except InfeasibleMarketError:
            rows.append(None)
            continue
        ds = r.dataset
        template = template or r
        dem = ds["demand"]
        wsum = dem.sum("node")
        mean_price = (ds["price"] * dem).sum("node") / wsum.where(wsum > 0)
        rows.append(xr.Dataset({
            "mean_price": mean_price,
            "objective": ds["objective"],
            "cost": ds["cost"],
            "cost_per_mtok": ds["objective"] / dem.sum(),
            "compute_utilization": ds["compute_used"].sum() / ds["compute_capacity"].sum(),
            "node_utilization": ds["compute_utilization"],
            "saturated_links": xr.DataArray(float(len(r.saturated_links(1e-3)))),
            "max_link_utilization": ds["link_utilization"].max(),
            "feasible": xr.DataArray(True),
        }))
    if template is None:
        raise InfeasibleMarketError(min(scales), float("nan"), "every point of the sweep is infeasible")
    blank = xr.full_like(next(r for r in rows if r is not None), np.nan).drop_vars("feasible")
    blank["feasible"] = xr.DataArray(False)
    out = xr.concat([r if r is not None else blank for r in rows], dim="demand_scale", coords="minimal",
                    compat="override")
    out = out.assign_coords(demand_scale=scales)
    out["feasible"] = out["feasible"].astype(bool)
    units = {"mean_price": "$/M tokens", "objective": "$/h", "cost": "$/h", "cost_per_mtok": "$/M tokens",
             "compute_utilization": "1", "node_utilization": "1", "max_link_utilization": "1"}
    for k, u in units.items():
        out[k].attrs["unit"] = u
    return out


def latency_sweep(s: Scenario, workload: str, limits_ms: Iterable[float], **solve_kwargs) -> xr.Dataset:
    """Prices and price components for ``workload`` as its latency limit varies."""
    rows, limits = [], [float(x) for x in limits_ms]
    for lim in limits:
        r = solve(s, latency_limits_ms={workload: lim}, **solve_kwargs)
        dec = r.price_decomposition().sel(workload=workload)
        rows.append(dec[["price", "processing", "compute_rent", "transfer", "congestion_rent"]])
    out = xr.concat(rows, dim="latency_limit_ms").assign_coords(latency_limit_ms=limits)
    for v in out.data_vars:
        out[v].attrs["unit"] = "$/M tokens"
    return out
