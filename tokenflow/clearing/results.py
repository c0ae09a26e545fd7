"""MarketResult: the cleared market as a labelled xarray Dataset.

Building a result is cheap: it keeps the solver's arrays (:class:`tokenflow.clearing.engine.Solution`)
and makes the Dataset, the price decomposition and path labels only when asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..lp.inputs import GBPS_TO_GB_PER_H

COMPONENTS = ["processing", "compute_rent", "transfer", "congestion_rent"]


def describe_options() -> str:
    """Solver and options used, for result metadata."""
    import highspy
    import linopy

    from ..lp.solver import HIGHS_OPTIONS

    return json.dumps({"solver": "highs", "highspy": getattr(highspy, "__version__", "?"),
                       "linopy": linopy.__version__, **HIGHS_OPTIONS})


class MarketResult:
    """Outcome of one market clearing.

    ``dataset`` holds every quantity with units in ``attrs["unit"]``; the
    properties below are the common ones.  Prices are in $/M tokens, flows in
    M tokens/h, link traffic in Gbps, costs in $/h.
    """

    def __init__(self, dataset: xr.Dataset | None = None, *, solution=None) -> None:
        self._ds = dataset
        self._sol = solution
        self._prices = None

    @classmethod
    def from_solution(cls, sol) -> MarketResult:
        """A lazy result over the engine's arrays."""
        return cls(solution=sol)

    @property
    def dataset(self) -> xr.Dataset:
        if self._ds is None:
            self._ds = _assemble(self._sol)
        return self._ds

    # ------------------------------------------------------------------ accessors
    @property
    def objective(self) -> float:
        """Total operating cost, $/h."""
        if self._ds is None and self._sol is not None:
            return float(self._sol.objective)
        return float(self.dataset["objective"])

    @property
    def prices(self) -> xr.DataArray:
        """Locational prices lambda[node, workload], $/M tokens."""
        if self._ds is None and self._sol is not None:
            if self._prices is None:
                inp = self._sol.inp
                self._prices = xr.DataArray(self._sol.lam, dims=("node", "workload"), name="price",
                                            coords={"node": inp.node_ids, "workload": inp.workload_ids},
                                            attrs={"unit": "$/M tokens",
                                                   "description": "locational price (demand dual)"})
            return self._prices
        return self.dataset["price"]

    def arrays(self) -> dict[str, np.ndarray]:
        """The common outcomes as plain numpy arrays (no Dataset is built when the result comes
        from the engine): ``demand``, ``unserved``, ``price`` (node x workload), ``cost``
        (energy, other_opex, transfer, lost_load; $/h), ``compute_used``/``compute_capacity``
        (node, kW), ``link_utilization`` (link)."""
        if self._ds is not None or self._sol is None:
            ds = self.dataset
            return {k: np.asarray(ds[k].values) for k in ("demand", "unserved", "price", "cost", "compute_used",
                                                          "compute_capacity", "link_utilization")}
        sol = self._sol
        inp = sol.inp
        proc, _, link_tok, transfer, unserved = _flows(sol, origins=False)
        tok_rev = link_tok[inp.rev_arc] if inp.L else link_tok
        with np.errstate(divide="ignore", invalid="ignore"):
            util = (link_tok @ inp.fwd_gb + tok_rev @ inp.rev_gb) / inp.arc_capacity_gbh
        energy = float((proc * inp.energy_cost).sum())
        return {"demand": inp.base_demand * sol.scale, "unserved": unserved, "price": sol.lam,
                "cost": np.array([energy, float((proc * inp.proc_cost).sum()) - energy, transfer,
                                  float((unserved * np.nan_to_num(inp.voll)[None, :]).sum())]),
                "compute_used": proc @ inp.intensity, "compute_capacity": inp.capacity_kw,
                "link_utilization": util}

    @property
    def processing(self) -> xr.DataArray:
        """Tokens processed at each node, M tokens/h."""
        return self.dataset["processing"]

    @property
    def link_utilization(self) -> xr.DataArray:
        """Share (0-1) of each directed link's capacity used, as the model counts traffic
        (physical bytes in the transfer-aware model, reference payload in the baseline)."""
        if self._ds is None and self._sol is not None:
            return xr.DataArray(self.arrays()["link_utilization"], dims="link", name="link_utilization",
                                coords={"link": self._sol.inp.link_ids}, attrs={"unit": "1"})
        return self.dataset["link_utilization"]

    @property
    def transfer_aware(self) -> bool:
        if self._ds is None and self._sol is not None:
            return bool(self._sol.inp.transfer_aware)
        return bool(self.dataset.attrs["transfer_aware"])

    @property
    def choices(self) -> dict[str, str]:
        """The modelling choices this result was computed with."""
        return json.loads(self.dataset.attrs.get("choices", "{}"))

    def saturated_links(self, tol: float = 1e-6) -> list[str]:
        """Directed links used to within ``tol`` of capacity."""
        u = self.link_utilization
        return [str(v) for v in u["link"].values[u.values >= 1 - tol]]

    def price_decomposition(self) -> xr.Dataset:
        """lambda[node, workload] split into processing cost + compute rent + transfer cost
        + congestion rent along the path in use (via ``via`` node on ``path``);
        ``residual`` = lambda - sum of components (zero up to solver tolerance)."""
        ds = self.dataset
        if "price_processing" not in ds and self._sol is not None:
            ds = self._ds = ds.merge(_decomposition(self._sol))
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
            f"total operating cost: {self.objective:z,.2f} $/h  "
            + "(" + ", ".join(f"{c} {float(ds['cost'].sel(component=c)):z,.2f}"
                              for c in ds["component"].values) + ")",
            "",
            "locational prices ($/M tokens):",
            self.prices.to_pandas().to_string(float_format=lambda v: f"{v:z.5f}"),
            "",
            "compute: used / capacity (MW), rent ($/kWh):",
        ]
        comp = pd.DataFrame({
            "used_MW": ds["compute_used"].values / 1000, "capacity_MW": ds["compute_capacity"].values / 1000,
            "rent_$/kWh": ds["compute_rent"].values}, index=ds["node"].values)
        lines.append(comp.to_string(float_format=lambda v: f"{v:z.4f}"))
        sat = self.saturated_links()
        lines.append("")
        lines.append(f"saturated links ({len(sat)}): " + (", ".join(sat) if sat else "none"))
        for link in sat:
            lines.append(f"  {link}: congestion rent {float(ds['congestion_rent'].sel(link=link)):z.5f} $/GB")
        full = [str(n) for n in ds["node"].values[ds["compute_rent"].values > 1e-9]]
        lines.append("binding compute: " + (", ".join(full) if full else "none"))
        return "\n".join(lines)

    def to_netcdf(self, path: str | Path) -> Path:
        """Write the dataset (with the price decomposition) to netCDF; the file appears whole
        or not at all (temporary file in the target folder, then renamed)."""
        from ..core.io import write_netcdf

        self.price_decomposition()
        return write_netcdf(self.dataset, path, what="result file")

    @classmethod
    def from_netcdf(cls, path: str | Path) -> MarketResult:
        """Read a result written by :meth:`to_netcdf`; a missing, damaged or foreign file
        raises :class:`~tokenflow.core.errors.TokenflowError` naming it."""
        from ..core.errors import TokenflowError

        path = Path(path)
        if not path.is_file():
            raise TokenflowError(f"cannot read result file {path}: no such file")
        try:
            with xr.open_dataset(path) as ds:
                ds = ds.load()
        except Exception as exc:  # noqa: BLE001 - any reader failure is one clear message
            raise TokenflowError(f"cannot read result file {path}: not a readable netCDF file "
                                 f"({exc.__class__.__name__})") from None
        missing = [v for v in ("price", "objective", "demand") if v not in ds]
        if missing:
            raise TokenflowError(f"cannot read result file {path}: not a tokenflow market result "
                                 f"(no {', '.join(missing)})")
        return cls(ds)

    def __repr__(self) -> str:
        a = self.dataset.attrs
        return (f"<MarketResult {a['scenario']} transfer_aware={a['transfer_aware']} "
                f"scale={a['demand_scale']:g} objective={self.objective:z,.2f} $/h>")


# ---------------------------------------------------------------------- construction

def _flows(sol, origins: bool = True) -> tuple:
    """(processing N x K, transfers N x N x K, link tokens L x K, transfer $/h, unserved N x K)."""
    inp = sol.inp
    N, K, L = inp.N, inp.K, inp.L
    x = np.where(sol.x > 0, sol.x, 0.0)
    unserved = x[:N * K].reshape(N, K)
    proc = np.zeros((N, K))
    link_tok = np.zeros((L, K))
    if sol.formulation == "path":
        f = x[N * K:]
        origin, target, ptr, flat = sol.routes
        r, k = sol.col_route, sol.col_k
        o, n = origin[r], target[r]
        np.add.at(proc, (n, k), f)
        trans = None
        if origins:
            trans = np.zeros((N, N, K))
            np.add.at(trans, (o, n, k), f)
        lens = ptr[r + 1] - ptr[r]
        if lens.sum():
            offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
            arcs = flat[np.repeat(ptr[r], lens) + offs]
            np.add.at(link_tok, (arcs, np.repeat(k, lens)), np.repeat(f, lens))
    else:
        st = sol.arc
        f = x[N * K:N * K + st.n_flow]
        y = x[N * K + st.n_flow:]
        k_f, k_y = st.com_k[st.f_c], st.com_k[st.y_c]
        np.add.at(proc, (st.y_n, k_y), y)
        np.add.at(link_tok, (st.f_a, k_f), f)
        trans = np.full((N, N, K), np.nan)
        for kk in range(K):
            if np.any((st.com_k == kk) & (st.com_o >= 0)):
                trans[:, :, kk] = 0.0
        o_y = st.com_o[st.y_c]
        spec = o_y >= 0
        np.add.at(trans, (o_y[spec], st.y_n[spec], k_y[spec]), y[spec])
    rev = inp.rev_arc
    transfer = float((link_tok * (inp.fwd_gb[None, :] * inp.arc_cost[:, None]
                                  + inp.rev_gb[None, :] * inp.arc_cost[rev][:, None])).sum()) if L else 0.0
    return proc, trans, link_tok, transfer, unserved


def _decomposition(sol) -> xr.Dataset:
    """lambda split along the route in use (largest flow, else cheapest; at zero demand the
    first token's route); NaN components in the arc formulation (it has no routes)."""
    inp = sol.inp
    N, K = inp.N, inp.K
    comp = {c: np.full((N, K), np.nan) for c in COMPONENTS}
    via = np.full((N, K), "", dtype=object)
    path = np.full((N, K), "", dtype=object)
    mu, rho = sol.mu, sol.rho
    rev = inp.rev_arc

    def fill(o, k, n, arcs):
        arcs = np.asarray(arcs, dtype=np.int64)
        comp["processing"][o, k] = inp.proc_cost[n, k]
        comp["compute_rent"][o, k] = inp.intensity[k] * mu[n]
        comp["transfer"][o, k] = (inp.fwd_gb[k] * inp.arc_cost[arcs].sum()
                                  + inp.rev_gb[k] * inp.arc_cost[rev[arcs]].sum())
        comp["congestion_rent"][o, k] = inp.fwd_gb[k] * rho[arcs].sum() + inp.rev_gb[k] * rho[rev[arcs]].sum()
        via[o, k] = inp.node_ids[n]
        path[o, k] = " > ".join([inp.node_ids[o], *(inp.node_ids[inp.av[a]] for a in arcs)])

    zero = set((sol.first_token or {}).keys())
    if sol.formulation == "path":
        x = np.where(sol.x > 0, sol.x, 0.0)[N * K:]
        origin, target, ptr, flat = sol.routes
        r, k = sol.col_route, sol.col_k
        o, n = origin[r], target[r]
        pf = np.array([inp.arc_cost[flat[ptr[i]:ptr[i + 1]]].sum() for i in range(len(ptr) - 1)])
        pr = np.array([inp.arc_cost[rev[flat[ptr[i]:ptr[i + 1]]]].sum() for i in range(len(ptr) - 1)]) \
            if inp.L else pf
        rf = np.array([rho[flat[ptr[i]:ptr[i + 1]]].sum() for i in range(len(ptr) - 1)])
        rr = np.array([rho[rev[flat[ptr[i]:ptr[i + 1]]]].sum() for i in range(len(ptr) - 1)]) if inp.L else rf
        full = (inp.proc_cost[n, k] + inp.intensity[k] * mu[n] + inp.fwd_gb[k] * (pf[r] + rf[r])
                + inp.rev_gb[k] * (pr[r] + rr[r]))
        on = 2.0 * np.array([inp.arc_latency_ms[flat[ptr[i]:ptr[i + 1]]].sum()
                             for i in range(len(ptr) - 1)])[r] <= inp.latency_ms[k] + 1e-9
        key = o * K + k
        score = np.where(x > 1e-9 * max(1.0, x.max(initial=0)), -x, np.where(on, full, np.inf) + 1e12)
        order = np.lexsort((score, key))
        first = order[np.r_[True, key[order][1:] != key[order][:-1]]] if len(order) else order
        for c in first:
            if (int(o[c]), int(k[c])) in zero or not np.isfinite(score[c]):
                continue
            fill(int(o[c]), int(k[c]), int(n[c]), flat[ptr[r[c]]:ptr[r[c] + 1]])
        for (oo, kk), (_, nn, arcs) in (sol.first_token or {}).items():
            fill(oo, kk, nn, arcs)
    dims = ("node", "workload")
    ds = xr.Dataset({f"price_{c}": (dims, v, {"unit": "$/M tokens", "description": f"price component: {c}"})
                     for c, v in comp.items()})
    ds["price_via"] = (dims, via.astype(str), {"unit": "", "description": "processing node of the path in use"})
    ds["price_path"] = (dims, path.astype(str), {"unit": "", "description": "path in use"})
    return ds.assign_coords(node=inp.node_ids, workload=inp.workload_ids)


def _assemble(sol) -> xr.Dataset:
    """The labelled Dataset of a solution (without the price decomposition)."""
    inp = sol.inp
    s = inp.scenario
    nodes, wls, links = inp.node_ids, inp.workload_ids, inp.link_ids
    N = len(nodes)
    proc, trans, link_tok, transfer, unserved = _flows(sol)
    rev = inp.rev_arc
    tok_rev = link_tok[rev] if inp.L else link_tok
    load_gbh = link_tok @ inp.fwd_gb + tok_rev @ inp.rev_gb
    phys = link_tok * inp.phys_fwd_gb[None, :] + tok_rev * inp.phys_rev_gb[None, :]
    cap = inp.arc_capacity_gbh
    used_kw = proc @ inp.intensity
    energy = float((proc * inp.energy_cost).sum())
    processing_total = float((proc * inp.proc_cost).sum())
    lost = float((unserved * np.nan_to_num(inp.voll)[None, :]).sum())
    cost = [energy, processing_total - energy, transfer, lost]
    info = sol.info
    coords = {"node": nodes, "workload": wls, "origin": nodes, "link": links,
              "component": ["energy", "other_opex", "transfer", "lost_load"]}

    def da(values, dims, unit, desc):
        return (dims, values, {"unit": unit, "description": desc})

    with np.errstate(divide="ignore", invalid="ignore"):
        util = load_gbh / cap
        util_phys = phys.sum(axis=1) / cap
    ds = xr.Dataset(
        {
            "demand": da(inp.base_demand * sol.scale, ("node", "workload"), "M tokens/h", "demand at this scale"),
            "unserved": da(unserved, ("node", "workload"), "M tokens/h",
                           "demand not served (only with a value of lost load)"),
            "processing": da(proc, ("node", "workload"), "M tokens/h", "tokens processed at node"),
            "transfers": da(trans, ("origin", "node", "workload"), "M tokens/h",
                            "demand at origin processed at node (NaN where the formulation does not "
                            "track origins)"),
            "link_flow": da(link_tok, ("link", "workload"), "M tokens/h", "tokens carried on link (route direction)"),
            "link_traffic": da(phys / GBPS_TO_GB_PER_H, ("link", "workload"), "Gbps",
                               "physical traffic on link (actual payloads, both directions of a route counted)"),
            "link_capacity": da(cap / GBPS_TO_GB_PER_H, ("link",), "Gbps", "link capacity per direction"),
            "link_utilization": da(util, ("link",), "1", "share of capacity used as the model counts traffic"),
            "link_utilization_physical": da(util_phys, ("link",), "1", "share of capacity used by actual payloads"),
            "price": da(sol.lam, ("node", "workload"), "$/M tokens", "locational price (demand dual)"),
            "compute_rent": da(sol.mu, ("node",), "$/kWh", "compute scarcity rent (capacity dual)"),
            "congestion_rent": da(sol.rho, ("link",), "$/GB", "bandwidth congestion rent (capacity dual)"),
            "compute_used": da(used_kw, ("node",), "kW", "IT power used"),
            "compute_capacity": da(inp.capacity_kw, ("node",), "kW", "AI compute capacity"),
            "compute_utilization": da(np.divide(used_kw, inp.capacity_kw, out=np.zeros(N),
                                                where=inp.capacity_kw > 0), ("node",), "1", "used/capacity"),
            "processing_cost": da(inp.proc_cost, ("node", "workload"), "$/M tokens",
                                  "energy + other operating cost per token"),
            "payload": da(inp.payload_gb * 1000, ("workload",), "B/token", "physical payload per token"),
            "link_weight": da(inp.fwd_gb * 1000, ("workload",), "B/token",
                              "payload per token as the model counts it on the route's links"),
            "link_weight_reverse": da(inp.rev_gb * 1000, ("workload",), "B/token",
                                      "payload per token counted on the opposite links of the route"),
            "cost": da(np.array(cost), ("component",), "$/h", "operating cost breakdown"),
            "objective": da(float(sol.objective), (), "$/h", "total operating cost"),
        },
        coords={**coords,
                "link_origin": ("link", np.array([nodes[i] for i in inp.au], dtype=str)),
                "link_target": ("link", np.array([nodes[i] for i in inp.av], dtype=str)),
                "link_transfer_cost": ("link", inp.arc_cost),
                "lat": ("node", s.nodes["lat"].to_numpy()), "lon": ("node", s.nodes["lon"].to_numpy())},
    )
    if inp.has_voll:
        ds["value_of_lost_load"] = da(inp.voll, ("workload",), "$/M tokens", "value of lost load (NaN: none)")
    ds.attrs = {
        "scenario": s.name,
        "formulation": sol.formulation,
        "transfer_aware": int(inp.transfer_aware),
        "demand_scale": float(sol.scale),
        "latency_limits_ms": inp.latency_json(),
        "choices": json.dumps(inp.choices, sort_keys=True),
        "n_variables": int(info["n_vars"]),
        "n_constraints": int(info["n_cons"]),
        "build_seconds": float(info["build_s"]),
        "solve_seconds": float(info["solve_s"]),
        "cg_rounds": int(info.get("cg_rounds", 1)),
        "solver": describe_options(),
    }
    return ds
