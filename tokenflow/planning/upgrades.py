"""What one more gigabit or megawatt is worth on the short-run market.

For every fibre link and every node of a cleared market:

* the *marginal value* of capacity, read from the duals: one more Gbps on a fibre link
  (both directions, as :meth:`~tokenflow.clearing.engine.Market.solve`'s ``link_bandwidth_gbps``
  changes it) saves ``450 x (rho[a->b] + rho[b->a])`` $/h (``rho`` in $/GB, 1 Gbps for an
  hour = 450 GB); one more MW of AI compute (IT power) at a node saves ``1000 x mu`` $/h
  (``mu`` in $/kWh);
* the value of a *discrete* upgrade (default +100 Gbps per link, +50 MW of AI compute per
  node), by a warm re-solve of the live :class:`~tokenflow.clearing.engine.Market`: the operating
  cost saved and the congestion and compute rents removed ($/h).

Node sizes are MW of AI compute (what the market's compute rows count); the metro's
``capacity_mw`` grows by that amount divided by the scenario's ``ai_share``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..clearing.engine import Market
from ..core import validate as _v
from ..core.errors import ScenarioError
from ..lp.inputs import GBPS_TO_GB_PER_H, check_number
from ..scenarios.scenario_class import Scenario

MARKET_KEYWORDS = ("transfer_aware", "formulation", "latency_limits_ms", "value_of_lost_load")
RANK_BY = ("cost_saving", "congestion_rent_reduction", "rent_reduction", "marginal_value")


def _check_market_kwargs(kwargs: Mapping, fn: str) -> None:
    unknown = sorted(set(kwargs) - set(MARKET_KEYWORDS))
    if unknown:
        raise ScenarioError(f"{fn}: unknown keyword(s) {unknown}; a Market takes {', '.join(MARKET_KEYWORDS)}")


def _rents(r) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(congestion rent $/h, compute rent $/h, rho $/GB per arc, mu $/kWh per node) of a result."""
    ds = r.dataset
    load_gbh = ds["link_utilization"].values * ds["link_capacity"].values * GBPS_TO_GB_PER_H
    rho, mu = ds["congestion_rent"].values, ds["compute_rent"].values
    return (float(np.nansum(rho * load_gbh)), float(np.nansum(mu * ds["compute_used"].values)), rho, mu)


def upgrade_values(market: Market | Scenario, *, demand_scale: float | None = None,
                   link_step_gbps: float = 100.0, node_step_mw: float = 50.0,
                   links: Sequence[str] | None = None, nodes: Sequence[str] | None = None,
                   **market_kwargs) -> xr.Dataset:
    """Marginal and discrete upgrade values of every fibre link and node (dim ``asset``).

    ``market``: a live :class:`Market` (left as it was found) or a :class:`Scenario`
    (a Market is built with ``market_kwargs``).  ``demand_scale``: defaults to the
    market's.  Steps: Gbps per direction added to one fibre link; MW of AI compute added
    at one node.  Returns a Dataset with, per asset: ``kind`` (link/node), ``today``
    (Gbps or MW of AI compute), ``marginal_value`` ($/h per Gbps or per MW),
    ``step``, ``cost_saving`` ($/h), ``saving_per_unit`` ($/h per Gbps or MW),
    ``congestion_rent_reduction``, ``compute_rent_reduction`` and ``rent_reduction`` ($/h);
    attrs: the base objective and rents."""
    if isinstance(market, Scenario):
        _check_market_kwargs(market_kwargs, "upgrade_values")
        m = Market(market, **market_kwargs)
    elif isinstance(market, Market):
        if market_kwargs:
            raise ScenarioError(f"upgrade_values: {', '.join(market_kwargs)} apply only when a Scenario is given")
        m = market
    else:
        raise ScenarioError(f"market: expected a tokenflow.Market or Scenario, got {type(market).__name__}")
    link_step = check_number(link_step_gbps, "link_step_gbps", "Gbps", allow_zero=False)
    node_step = check_number(node_step_mw, "node_step_mw", "MW", allow_zero=False)
    old_scale = m.demand_scale
    scale = old_scale if demand_scale is None else check_number(demand_scale, "demand_scale", "(multiplier)")
    s = m.scenario
    inp = m.inp
    fibre = list(s.links.index)
    link_list = fibre if links is None else _v.names(links, "links", "upgrade_values", allowed=fibre,
                                                       kind="fibre link names")
    node_list = list(inp.node_ids) if nodes is None else _v.names(nodes, "nodes", "upgrade_values",
                                                                  allowed=inp.node_ids, kind="node names")
    if not link_list and not node_list:
        raise ScenarioError("upgrade_values: links and nodes are both empty: nothing to value")
    bw = dict(zip(fibre, inp.arc_capacity_gbh[0::2] / GBPS_TO_GB_PER_H))
    cap_mw = dict(zip(inp.node_ids, s.nodes["capacity_mw"].to_numpy(float)))
    ai_share = float(inp.ai_share)
    rows = []
    # one what-if per asset inside one for the whole call: however it ends, the market is
    # exactly as found (no bandwidth or capacity written explicitly that was a default, so a
    # later scenario-wide change still reaches every link and node)
    with m.what_if():
        r0 = m.solve(demand_scale=scale)
        obj0 = r0.objective
        cong0, comp0, rho, mu = _rents(r0)
        for lk in link_list:
            i = fibre.index(lk)
            with m.what_if():
                r = m.solve(link_bandwidth_gbps={lk: bw[lk] + link_step})
            cong, comp, _, _ = _rents(r)
            rows.append(("link", lk, bw[lk], GBPS_TO_GB_PER_H * (rho[2 * i] + rho[2 * i + 1]), link_step,
                         obj0 - r.objective, cong0 - cong, comp0 - comp))
        for n in node_list:
            j = inp.node_ids.index(n)
            with m.what_if():
                r = m.solve(capacity_mw={n: cap_mw[n] + node_step / ai_share})
            cong, comp, _, _ = _rents(r)
            rows.append(("node", n, cap_mw[n] * ai_share, 1000.0 * mu[j], node_step, obj0 - r.objective,
                         cong0 - cong, comp0 - comp))
    df = pd.DataFrame(rows, columns=["kind", "asset", "today", "marginal_value", "step", "cost_saving",
                                     "congestion_rent_reduction", "compute_rent_reduction"]).set_index("asset")
    df["saving_per_unit"] = df["cost_saving"] / df["step"]
    df["rent_reduction"] = df["congestion_rent_reduction"] + df["compute_rent_reduction"]
    ds = xr.Dataset.from_dataframe(df)
    units = {"kind": "", "today": "Gbps per direction (link) / MW of AI compute (node)",
             "marginal_value": "$/h per Gbps (link) / per MW (node)", "step": "Gbps (link) / MW (node)",
             "cost_saving": "$/h", "saving_per_unit": "$/h per Gbps (link) / per MW (node)",
             "congestion_rent_reduction": "$/h", "compute_rent_reduction": "$/h", "rent_reduction": "$/h"}
    for v, u in units.items():
        ds[v].attrs["unit"] = u
    ds.attrs.update({"demand_scale": scale, "objective": obj0, "congestion_rent": cong0, "compute_rent": comp0,
                     "scenario": s.name})
    return ds


def rank_upgrades(values: xr.Dataset, by: str = "cost_saving", top: int | None = None) -> pd.DataFrame:
    """The upgrades of :func:`upgrade_values` as a table, largest ``by`` first."""
    if not isinstance(values, xr.Dataset) or "asset" not in values.dims or "cost_saving" not in values:
        raise ScenarioError(f"rank_upgrades: values must be the Dataset of upgrade_values(), "
                            f"got {type(values).__name__}")
    if not isinstance(by, str) or by not in RANK_BY:
        raise ScenarioError(f"rank_upgrades: by must be one of {', '.join(RANK_BY)}, got {by!r:.80}")
    if top is not None:
        top = _v.integer(top, "top", "rank_upgrades", lo=1)
    df = values.to_dataframe()
    df = df.sort_values(by, ascending=False, kind="stable")
    return df if top is None else df.head(top)


def upgrade_sweep(scenario: Scenario, demand_scales: Sequence[float], *, link_step_gbps: float = 100.0,
                  node_step_mw: float = 50.0, **market_kwargs: Mapping) -> xr.Dataset:
    """:func:`upgrade_values` at each demand scale on one live market (dims ``demand_scale``,
    ``asset``).  Scales at which the market cannot clear raise
    :class:`~tokenflow.core.errors.InfeasibleMarketError`."""
    scales = [check_number(x, "demand_scales", "(multiplier)")
              for x in _v.items_of(demand_scales, "demand_scales", "upgrade_sweep", kind="demand scales")]
    if not scales:
        raise ScenarioError("demand_scales: give at least one demand scale")
    _check_market_kwargs(market_kwargs, "upgrade_sweep")
    m = Market(scenario, **market_kwargs)
    parts = [upgrade_values(m, demand_scale=x, link_step_gbps=link_step_gbps, node_step_mw=node_step_mw)
             for x in scales]
    kind = parts[0]["kind"]
    out = xr.concat([p.drop_vars("kind") for p in parts], dim=pd.Index(scales, name="demand_scale"))
    out["kind"] = kind
    for v in ("objective", "congestion_rent", "compute_rent"):
        out[f"base_{v}"] = ("demand_scale", [p.attrs[v] for p in parts], {"unit": "$/h"})
    out.attrs = {"scenario": parts[0].attrs["scenario"]}
    return out
