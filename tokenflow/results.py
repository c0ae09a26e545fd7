"""MarketResult: the cleared market as a labelled xarray Dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .market import GBPS_TO_GB_PER_H, Coefficients, MarketData, describe_options
from .network import path_labels

COMPONENTS = ["processing", "compute_rent", "transfer", "congestion_rent"]


class MarketResult:
    """Outcome of one market clearing.

    ``dataset`` holds every quantity with units in ``attrs["unit"]``; the
    properties below are the common ones.  Prices are in $/M tokens, flows in
    M tokens/h, link traffic in Gbps, costs in $/h.
    """

    def __init__(self, dataset: xr.Dataset) -> None:
        self.dataset = dataset

    # ------------------------------------------------------------------ accessors
    @property
    def objective(self) -> float:
        """Total operating cost, $/h."""
        return float(self.dataset["objective"])

    @property
    def prices(self) -> xr.DataArray:
        """Locational prices lambda[node, workload], $/M tokens."""
        return self.dataset["price"]

    @property
    def processing(self) -> xr.DataArray:
        """Tokens processed at each node, M tokens/h."""
        return self.dataset["processing"]

    @property
    def link_utilization(self) -> xr.DataArray:
        """Share (0-1) of each directed link's capacity used, as the model counts traffic
        (physical bytes in the transfer-aware model, reference payload in the baseline)."""
        return self.dataset["link_utilization"]

    @property
    def choices(self) -> dict[str, str]:
        """The modelling choices the result was computed with (see ``tokenflow.CHOICES``)."""
        return json.loads(self.dataset.attrs.get("choices", "{}"))

    @property
    def transfer_aware(self) -> bool:
        return bool(self.dataset.attrs["transfer_aware"])

    def saturated_links(self, tol: float = 1e-6) -> list[str]:
        """Directed links used to within ``tol`` of capacity."""
        u = self.link_utilization
        return [str(v) for v in u["link"].values[u.values >= 1 - tol]]

    def price_decomposition(self) -> xr.Dataset:
        """lambda[node, workload] split into processing cost + compute rent + transfer cost
        + congestion rent along the path in use (via ``via`` node on ``path``);
        ``residual`` = lambda - sum of components (zero up to solver tolerance)."""
        ds = self.dataset
        out = xr.Dataset({c: ds[f"price_{c}"] for c in COMPONENTS})
        out["price"] = ds["price"]
        out["residual"] = ds["price"] - sum(out[c] for c in COMPONENTS)
        out["via"] = ds["price_via"]
        out["path"] = ds["price_path"]
        return out

    def settlement(self) -> xr.Dataset:
        """Who pays and who is paid ($/h).  Demand pays lambda for every token served;
        that money covers processing cost, transfer charges, compute scarcity rents
        (per node) and congestion rents (merchandising surplus, per link).  By LP
        duality the books balance: ``imbalance`` is zero up to solver tolerance."""
        ds = self.dataset
        served = ds["demand"] - ds["unserved"]
        payments = (ds["price"].fillna(0.0) * served).rename("payments")
        processing = (ds["processing_cost"] * ds["processing"]).sum("workload")
        compute_rent = ds["compute_rent"] * ds["compute_used"]
        load_gbh = ds["link_utilization"] * ds["link_capacity"] * GBPS_TO_GB_PER_H
        congestion_rent = ds["congestion_rent"] * load_gbh
        transfer = ds["cost"].sel(component="transfer")
        out = xr.Dataset({
            "payments": payments,
            "processing_cost": processing,
            "transfer_charges": transfer,
            "compute_rent": compute_rent,
            "congestion_rent": congestion_rent,
        })
        out["total_payments"] = payments.sum()
        out["total_costs_and_rents"] = processing.sum() + transfer + compute_rent.sum() + congestion_rent.sum()
        out["imbalance"] = out["total_payments"] - out["total_costs_and_rents"]
        for v in out.data_vars:
            out[v].attrs["unit"] = "$/h"
        return out.drop_vars("component", errors="ignore")

    def summary(self) -> str:
        """A readable text summary (objective, prices, saturated links, binding compute)."""
        ds = self.dataset
        variant = "transfer-aware" if self.transfer_aware else "token-equivalent baseline"
        lines = [
            f"scenario {ds.attrs['scenario']} | {variant} | demand scale {ds.attrs['demand_scale']:g}",
            f"latency limits (ms): {ds.attrs['latency_limits_ms']}",
            f"total operating cost: {self.objective:,.2f} $/h  "
            + "(" + ", ".join(f"{c} {float(ds['cost'].sel(component=c)):,.2f}"
                              for c in ds["component"].values) + ")",
            "",
            "locational prices ($/M tokens):",
            self.prices.to_pandas().to_string(float_format=lambda v: f"{v:.5f}"),
            "",
            "compute: used / capacity (MW), rent ($/kWh):",
        ]
        comp = pd.DataFrame({
            "used_MW": ds["compute_used"].values / 1000, "capacity_MW": ds["compute_capacity"].values / 1000,
            "rent_$/kWh": ds["compute_rent"].values}, index=ds["node"].values)
        lines.append(comp.to_string(float_format=lambda v: f"{v:.4f}"))
        sat = self.saturated_links()
        lines.append("")
        lines.append(f"saturated links ({len(sat)}): " + (", ".join(sat) if sat else "none"))
        for link in sat:
            lines.append(f"  {link}: congestion rent {float(ds['congestion_rent'].sel(link=link)):.5f} $/GB")
        full = [str(n) for n in ds["node"].values[ds["compute_rent"].values > 1e-9]]
        lines.append("binding compute: " + (", ".join(full) if full else "none"))
        return "\n".join(lines)

    def to_netcdf(self, path: str | Path) -> Path:
        """Write the dataset to netCDF (string variables kept as text)."""
        path = Path(path)
        self.dataset.to_netcdf(path)
        return path

    @classmethod
    def from_netcdf(cls, path: str | Path) -> MarketResult:
        with xr.open_dataset(path) as ds:
            return cls(ds.load())

    def __repr__(self) -> str:
        a = self.dataset.attrs
        return (f"<MarketResult {a['scenario']} transfer_aware={a['transfer_aware']} "
                f"scale={a['demand_scale']:g} objective={self.objective:,.2f} $/h>")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_solution(cls, md: MarketData, scale: float, x: np.ndarray, lam: np.ndarray,
                      mu: np.ndarray, rho: np.ndarray, info: dict,
                      unserved: np.ndarray | None = None) -> MarketResult:
        """Result of the path formulation (columns ``x``)."""
        s = md.scenario
        nodes = s.node_ids
        N, K, L = len(nodes), len(s.workload_ids), len(md.arcs)
        x = np.where(x > 0, x, 0.0)
        proc = np.zeros((N, K))
        np.add.at(proc, (md.col_node, md.col_workload), x)
        trans = np.zeros((N, N, K))
        np.add.at(trans, (md.col_origin, md.col_node, md.col_workload), x)
        link_tok = np.zeros((L, K))
        np.add.at(link_tok, (md.entry_arc, md.col_workload[md.entry_col]), x[md.entry_col])
        transfer = float((x * md.col_transfer_cost).sum())

        # price decomposition along the path in use (largest flow), else cheapest column
        rent_col = md.intensity[md.col_workload] * mu[md.col_node]
        ek = md.col_workload[md.entry_col]
        cong_entry = rho[md.entry_arc] * md.weight_gb[ek]
        if md.has_reverse:  # response bytes on the reverse arcs pay those arcs' rents
            cong_entry = cong_entry + rho[md.arc_reverse[md.entry_arc]] * md.reverse_gb[ek]
        cong_col = np.bincount(md.entry_col, weights=cong_entry, minlength=md.n_cols)
        full = md.col_cost + rent_col + cong_col
        key = md.col_origin * K + md.col_workload
        score = np.where(x > 1e-9 * max(1.0, x.max(initial=0)), -x, full + 1e12)
        order = np.lexsort((score, key))
        first = order[np.r_[True, key[order][1:] != key[order][:-1]]] if len(order) else order
        comp = {c: np.full((N, K), np.nan) for c in COMPONENTS}
        via = np.full((N, K), "", dtype=object)
        path = np.full((N, K), "", dtype=object)
        labels = path_labels(s, md.paths, md.col_path[first])
        for c, label in zip(first, labels):
            o, k = md.col_origin[c], md.col_workload[c]
            comp["processing"][o, k] = md.col_proc_cost[c]
            comp["compute_rent"][o, k] = rent_col[c]
            comp["transfer"][o, k] = md.col_transfer_cost[c]
            comp["congestion_rent"][o, k] = cong_col[c]
            via[o, k] = nodes[md.col_node[c]]
            path[o, k] = label
        return cls.assemble(md, scale, proc, trans, link_tok, transfer, lam, mu, rho, info,
                            unserved=unserved, components=comp, via=via, path=path, formulation="path")

    @classmethod
    def assemble(cls, c: Coefficients, scale: float, proc: np.ndarray, trans: np.ndarray, link_tok: np.ndarray,
                 transfer: float, lam: np.ndarray, mu: np.ndarray, rho: np.ndarray, info: dict, *,
                 unserved: np.ndarray | None = None, components: dict | None = None,
                 via: np.ndarray | None = None, path: np.ndarray | None = None,
                 formulation: str = "path") -> MarketResult:
        """Build the labelled Dataset from formulation-independent arrays."""
        s = c.scenario
        nodes, wls, links = s.node_ids, s.workload_ids, list(c.arcs.index)
        N, K = len(nodes), len(wls)
        load_gbh = link_tok @ c.weight_gb
        phys_gbh = link_tok * (c.payload_gb if c.phys_fwd_gb is None else c.phys_fwd_gb)[None, :]
        if c.arc_reverse is not None and c.reverse_gb is not None and len(link_tok):
            # response bytes of the flows on the reverse arc
            load_gbh = load_gbh + link_tok[c.arc_reverse] @ c.reverse_gb
            phys_gbh = phys_gbh + link_tok[c.arc_reverse] * c.phys_rev_gb[None, :]
        cap = c.arc_capacity_gbh
        used_kw = proc @ c.intensity
        unserved = np.zeros((N, K)) if unserved is None else np.where(unserved > 0, unserved, 0.0)
        energy = float((proc * c.energy_cost).sum())
        processing_total = float((proc * c.proc_cost).sum())
        lost = float((unserved * np.nan_to_num(c.voll)[None, :]).sum()) if c.voll is not None else 0.0
        cost = [energy, processing_total - energy, transfer, lost]
        components = components or {k: np.full((N, K), np.nan) for k in COMPONENTS}
        via = np.full((N, K), "", dtype=object) if via is None else via
        path = np.full((N, K), "", dtype=object) if path is None else path
        coords = {"node": nodes, "workload": wls, "origin": nodes, "link": links,
                  "component": ["energy", "other_opex", "transfer", "lost_load"]}

        def da(values, dims, unit, desc):
            return xr.DataArray(values, dims=dims, attrs={"unit": unit, "description": desc})

        ds = xr.Dataset(
            {
                "demand": da(c.base_demand * scale, ("node", "workload"), "M tokens/h", "demand at this scale"),
                "unserved": da(unserved, ("node", "workload"), "M tokens/h",
                               "demand not served (only with a value of lost load)"),
                "processing": da(proc, ("node", "workload"), "M tokens/h", "tokens processed at node"),
                "transfers": da(trans, ("origin", "node", "workload"), "M tokens/h",
                                "demand at origin processed at node (NaN where the formulation does not "
                                "track origins)"),
                "link_flow": da(link_tok, ("link", "workload"), "M tokens/h", "tokens carried on link"),
                "link_traffic": da(phys_gbh / GBPS_TO_GB_PER_H, ("link", "workload"), "Gbps",
                                   "physical traffic on link (actual payloads)"),
                "link_capacity": da(cap / GBPS_TO_GB_PER_H, ("link",), "Gbps", "link capacity per direction"),
                "link_utilization": da(load_gbh / cap, ("link",), "1",
                                       "share of capacity used as the model counts traffic"),
                "link_utilization_physical": da(phys_gbh.sum(axis=1) / cap, ("link",), "1",
                                                "share of capacity used by actual payloads"),
                "price": da(lam, ("node", "workload"), "$/M tokens", "locational price (demand dual)"),
                "compute_rent": da(mu, ("node",), "$/kWh", "compute scarcity rent (capacity dual)"),
                "congestion_rent": da(rho, ("link",), "$/GB", "bandwidth congestion rent (capacity dual)"),
                "compute_used": da(used_kw, ("node",), "kW", "IT power used"),
                "compute_capacity": da(c.capacity_kw, ("node",), "kW", "AI compute capacity"),
                "compute_utilization": da(np.divide(used_kw, c.capacity_kw, out=np.zeros(N),
                                                    where=c.capacity_kw > 0), ("node",), "1", "used/capacity"),
                "processing_cost": da(c.proc_cost, ("node", "workload"), "$/M tokens",
                                      "energy + other operating cost per token"),
                "payload": da(c.payload_gb * 1000, ("workload",), "B/token", "physical payload per token"),
                "link_weight": da(c.weight_gb * 1000, ("workload",), "B/token",
                                  "payload per token as the model counts it on links"),
                "link_weight_reverse": da((np.zeros(K) if c.reverse_gb is None else c.reverse_gb) * 1000,
                                          ("workload",), "B/token",
                                          "payload per token counted on the reverse arcs of a route"),
                "cost": da(np.array(cost), ("component",), "$/h", "operating cost breakdown"),
                "objective": da(float(info["objective"]), (), "$/h", "total operating cost"),
                **{f"price_{k}": da(v, ("node", "workload"), "$/M tokens", f"price component: {k}")
                   for k, v in components.items()},
                "price_via": da(via.astype(str), ("node", "workload"), "", "processing node of the path in use"),
                "price_path": da(path.astype(str), ("node", "workload"), "", "path in use"),
            },
            coords=coords,
        )
        ds["link_origin"] = ("link", c.arcs["origin"].to_numpy().astype(str))
        ds["link_target"] = ("link", c.arcs["target"].to_numpy().astype(str))
        ds["link_transfer_cost"] = ("link", c.arcs["transfer_cost_usd_per_gb"].to_numpy())
        ds["lat"] = ("node", s.nodes["lat"].to_numpy())
        ds["lon"] = ("node", s.nodes["lon"].to_numpy())
        ds = ds.set_coords(["link_origin", "link_target", "link_transfer_cost", "lat", "lon"])
        if c.voll is not None:
            ds["value_of_lost_load"] = da(c.voll, ("workload",), "$/M tokens", "value of lost load (NaN: none)")
        ds.attrs = {
            "scenario": s.name,
            "formulation": formulation,
            "transfer_aware": int(c.transfer_aware),
            "demand_scale": float(scale),
            "latency_limits_ms": json.dumps({k: float(v) for k, v in c.latency_ms.items()}),
            "n_variables": info["n_vars"],
            "n_constraints": info["n_cons"],
            "build_seconds": info["build_s"],
            "solve_seconds": info["solve_s"],
            "cg_rounds": int(info.get("cg_rounds", 1)),
            "solver": describe_options(),
            "choices": json.dumps(s.choices),
        }
        return cls(ds)
