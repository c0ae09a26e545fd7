"""Sweeps over demand scale and latency limit, returning labelled xarray Datasets."""

from __future__ import annotations

from collections.abc import Iterable

import xarray as xr

from ..clearing.engine import pooled_market
from ..core.errors import InfeasibleMarketError, TokenflowError
from ..scenarios.scenario_class import Scenario


def demand_sweep(s: Scenario, scales: Iterable[float], **solve_kwargs) -> xr.Dataset:
    """Solve at each demand scale (serially, through :func:`tokenflow.sweep`).  Infeasible
    points are kept with ``feasible = False`` and NaN outcomes; any other error is raised.
    Variables as :func:`tokenflow.studies.sweep_evaluate.evaluate_market`: ``mean_price`` (workload;
    demand-weighted, $/M tokens), ``objective`` and ``cost`` ($/h), ``cost_per_mtok``,
    ``compute_utilization`` (system), ``node_utilization``, ``saturated_links``,
    ``max_link_utilization``, ``unserved`` (workload, M tokens/h)."""
    from .sweep import sweep
    from .sweep_evaluate import evaluate_market

    out = sweep(s, grid={"demand_scale": [float(x) for x in scales]}, evaluate=evaluate_market,
                evaluate_kwargs=solve_kwargs, n_workers=0, progress=False)
    errors = out["message"].values[out["status"].values == "error"]
    if len(errors):
        raise TokenflowError(f"demand sweep failed: {errors[0]}")
    out["feasible"] = out["status"] == "ok"
    if not bool(out["feasible"].any()):
        raise InfeasibleMarketError(float(out["demand_scale"].min()), float("nan"),
                                    "every point of the sweep is infeasible")
    units = {"mean_price": "$/M tokens", "objective": "$/h", "cost": "$/h", "cost_per_mtok": "$/M tokens",
             "compute_utilization": "1", "node_utilization": "1", "max_link_utilization": "1",
             "unserved": "M tokens/h"}
    for k, u in units.items():
        out[k].attrs["unit"] = u
    return out


def latency_sweep(s: Scenario, workload: str, limits_ms: Iterable[float], **solve_kwargs) -> xr.Dataset:
    """Prices and price components for ``workload`` as its latency limit varies (one live
    market, the limit changed in place: columns switched off by bounds, new routes priced in)."""
    rows, limits = [], [float(x) for x in limits_ms]
    kw = dict(solve_kwargs)
    base_lat = dict(kw.pop("latency_limits_ms", None) or {})
    market = pooled_market(s, transfer_aware=kw.get("transfer_aware", True),
                           formulation=kw.get("formulation", "path"),
                           latency_limits_ms=base_lat or None, value_of_lost_load=kw.get("value_of_lost_load"),
                           tag=f"latency sweep of {workload}")
    for lim in limits:
        r = market.resolve(s, latency_limits_ms={**base_lat, workload: lim}, **kw)
        dec = r.price_decomposition().sel(workload=workload)
        rows.append(dec[["price", "processing", "compute_rent", "transfer", "congestion_rent"]])
    out = xr.concat(rows, dim="latency_limit_ms").assign_coords(latency_limit_ms=limits)
    for v in out.data_vars:
        out[v].attrs["unit"] = "$/M tokens"
    return out
