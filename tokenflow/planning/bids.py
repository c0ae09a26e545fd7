"""Clearing against bids and offers: price-responsive demand and priced capacity.

``clear_bids(scenario, bids, offers)`` maximises welfare on the market LP:

* **bids**: piecewise-linear demand per (node, workload), steps of ``quantity`` (M tokens/h)
  at ``price`` ($/M tokens, the willingness to pay), strictly decreasing from step to step.
  The demand row of the pair asks for the bids' total; a column per step lets up to its
  quantity go unserved at its price (what the consumer gives up), so the LP's cost is
  ``operating cost + sum price x declined`` = ``sum price x quantity - welfare``.  Where a
  pair has no bid its demand is the scenario's at ``demand_scale`` (with the value of lost
  load, if given): the value-of-lost-load market is the one-step special case.
* **offers**: capacity by provider per node, ``capacity_mw`` of AI compute (IT power) at
  ``price`` ($/kWh, the provider's ask on top of the node's operating cost).  A node with
  offers has exactly the offered capacity; a node without keeps the scenario's capacity,
  offered at price 0 by provider ``"scenario"``.

Prices are the duals: ``price[node, workload]`` ($/M tokens), ``compute_rent[node]``
($/kWh; at least the price of every offer used), ``congestion_rent[link]`` ($/GB).  The
settlement shows consumer surplus (bids), producer surplus (offers), congestion rents and
that the money balances.  Path formulation (default; routes by exact column generation,
latency limits exact) or arc (where no latency limit binds).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..clearing.results import _flows
from ..core.errors import ScenarioError
from ..lp.arc import exact_arc_structure
from ..lp.inputs import build_inputs, check_bool, check_number, check_scenario
from ..lp.solver import LiveLP, verify
from ..scenarios.datafiles import MAX_PROBLEMS, limit_problems, number_column, read_csv, read_yaml
from ..scenarios.scenario_class import Scenario
from .plan import _solve_live, arc_dispatch, insert_columns, path_column_generation

BID_COLUMNS = ("node", "workload", "quantity", "price")
# values a YAML bid file may hold (about 11,000 bid rows; reading YAML costs ~20 us a value):
# larger bid sets go into a CSV file the bid file names (100,000 rows checked in well under a second)
MAX_BID_FILE_VALUES = 100_000
OFFER_COLUMNS = ("provider", "node", "capacity_mw", "price")


def _table(obj, columns: tuple[str, ...], what: str) -> tuple[pd.DataFrame, bool]:
    """(the table's required columns, whether its cells are text read from a CSV file)."""
    if isinstance(obj, (str, Path)):
        where = str(obj)
        if not Path(obj).exists():
            raise ScenarioError(f"{what}: no such file {obj}")
        df = read_csv(obj, columns=columns, label=where, what=f"{what} file (CSV)", comment="#", allow_empty=True)
    elif isinstance(obj, pd.DataFrame):
        df, where = obj.reset_index(drop=True), what
    elif isinstance(obj, (list, tuple)):
        if not all(isinstance(r, Mapping) for r in obj):
            bad = next(r for r in obj if not isinstance(r, Mapping))
            raise ScenarioError(f"{what}: every row must be a mapping of {', '.join(columns)}, got "
                                f"{type(bad).__name__} {bad!r:.60}")
        df, where = pd.DataFrame(list(obj)), what
    else:
        raise ScenarioError(f"{what}: expected a table (DataFrame, list of rows or CSV path), got "
                            f"{type(obj).__name__}")
    dup = sorted({str(c) for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise ScenarioError(f"{where}: column(s) {', '.join(dup)} given more than once")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ScenarioError(f"{where}: missing column(s) {', '.join(missing)} (need {', '.join(columns)})")
    return df[list(columns)].copy(), isinstance(obj, (str, Path))


def _num(v, name: str, unit: str, positive: bool) -> float:
    """One number: finite, >= 0 (> 0 if ``positive``); an integer too large for a float is refused."""
    vals, problems = number_column([v], [name.rsplit(".", 1)[0]], name.rsplit(".", 1)[-1], unit,
                                   lo=0.0, lo_open=positive, text=False)
    if problems:
        raise ScenarioError(problems)
    return float(vals[0])


def _names(col: pd.Series, known: list[str]) -> np.ndarray:
    """Which entries of ``col`` are one of ``known`` (text only; unhashable values are not)."""
    ok = set(known)
    return np.fromiter((isinstance(x, str) and x in ok for x in col.to_numpy(object)), dtype=bool, count=len(col))


def _where(df: pd.DataFrame, kind: str, a: str, b: str):
    """Row labels ``'<kind> row i (a, b)'``, built only for the rows asked for."""
    va, vb = df[a].to_numpy(object), df[b].to_numpy(object)

    class _W:
        def __getitem__(self, i: int) -> str:
            return f"{kind} row {i} ({va[i]}, {vb[i]})"

    return _W()


def check_bids(s: Scenario, bids) -> pd.DataFrame:
    """Bids as a table (node, workload, step, quantity, price); every problem is a ScenarioError:
    unknown names, negative or zero quantities, negative prices, willingness to pay that does
    not strictly decrease from step to step.  Checked column by column (vectorised)."""
    df, text = _table(bids, BID_COLUMNS, "bids")
    df = df.reset_index(drop=True)
    where = _where(df, "bids", "node", "workload")
    problems: list[str] = []
    for col, known, kind in (("node", s.node_ids, "node"), ("workload", s.workload_ids, "workload")):
        bad = np.flatnonzero(~_names(df[col], known))
        problems += [f"{where[i]}: unknown {kind} {df[col].iat[i]!r:.60}" for i in bad[:MAX_PROBLEMS]]
        if len(bad) > MAX_PROBLEMS:
            problems.append(f"... and {len(bad) - MAX_PROBLEMS:,} more unknown {kind}s")
    q, pq = number_column(df["quantity"], where, "quantity", "M tokens/h", lo=0.0, lo_open=True, text=text)
    p, pp = number_column(df["price"], where, "price", "$/M tokens", lo=0.0, text=text)
    problems += pq + pp
    if problems:
        raise ScenarioError(limit_problems(problems))
    df["quantity"], df["price"] = q, p
    df["node"], df["workload"] = df["node"].astype(str), df["workload"].astype(str)
    groups = df.groupby(["node", "workload"], sort=False)
    df["step"] = groups.cumcount()
    rising = groups["price"].diff().to_numpy() >= 0  # NaN (a pair's first step) compares False
    if rising.any():
        for n, k in df.loc[rising, ["node", "workload"]].drop_duplicates().itertuples(index=False):
            pr = df.loc[(df["node"] == n) & (df["workload"] == k), "price"].to_numpy()
            problems.append(f"bids ({n}, {k}): willingness to pay must strictly decrease from step to step, "
                            f"got {', '.join(f'{x:g}' for x in pr[:12])}{' ...' if len(pr) > 12 else ''} "
                            "$/M tokens")
            if len(problems) >= MAX_PROBLEMS:
                break
        raise ScenarioError(problems)
    return df


def check_offers(s: Scenario, offers) -> pd.DataFrame:
    """Offers as a table (provider, node, capacity_mw, price); bad rows are a ScenarioError."""
    df, text = _table(offers, OFFER_COLUMNS, "offers")
    df = df.reset_index(drop=True)
    where = _where(df, "offers", "provider", "node")
    problems: list[str] = []
    bad = np.flatnonzero(~_names(df["node"], s.node_ids))
    problems += [f"{where[i]}: unknown node {df['node'].iat[i]!r:.60}" for i in bad[:MAX_PROBLEMS]]
    prov = df["provider"].to_numpy(object)
    bad_p = [i for i, x in enumerate(prov) if not isinstance(x, (str, numbers.Integral)) or isinstance(x, bool)]
    problems += [f"{where[i]}: provider must be a name, got {prov[i]!r:.60}" for i in bad_p[:MAX_PROBLEMS]]
    c, pc = number_column(df["capacity_mw"], where, "capacity_mw", "MW", lo=0.0, text=text)
    p, pp = number_column(df["price"], where, "price", "$/kWh", lo=0.0, text=text)
    problems += pc + pp
    if problems:
        raise ScenarioError(limit_problems(problems))
    df["capacity_mw"], df["price"] = c, p
    df["provider"], df["node"] = df["provider"].astype(str), df["node"].astype(str)
    dup = df.duplicated(["provider", "node"], keep=False)
    if dup.any():
        raise ScenarioError(f"offers: provider and node repeated: "
                            f"{df.loc[dup, ['provider', 'node']].values.tolist()[:MAX_PROBLEMS]}")
    return df


class BidResult:
    """A market cleared against bids and offers: ``dataset`` (dims ``node``, ``workload``,
    ``link``, ``bid``, ``offer``) and :meth:`settlement`."""

    def __init__(self, dataset: xr.Dataset) -> None:
        self.dataset = dataset

    @property
    def prices(self) -> xr.DataArray:
        return self.dataset["price"]

    @property
    def objective(self) -> float:
        """The LP's cost: operating cost + offer costs + value of what bids gave up, $/h."""
        return float(self.dataset["objective"])

    def settlement(self) -> xr.Dataset:
        """Money per hour ($/h): consumers pay ``price`` for every token served; it covers
        processing and transfer cost, the offers' payments (compute rent x capacity used: the
        offers' cost plus producer surplus) and congestion rents.  ``imbalance`` is zero up to
        solver tolerance; ``welfare`` = gross value of accepted bids - every cost, and
        ``consumer_surplus + producer_surplus + congestion_rent = welfare + payments of the
        fixed (unbid) demand`` (``surplus_identity`` is that difference, ~0)."""
        ds = self.dataset
        out = xr.Dataset()
        served = ds["demand"] - ds["unserved"]
        out["payments"] = (ds["price"] * served).sum()
        out["processing_cost"] = ds["processing_cost"]
        out["transfer_cost"] = ds["transfer_cost"]
        out["offer_payments"] = (ds["compute_rent"] * ds["compute_used"]).sum()
        out["offer_cost"] = (ds["offer_price"] * ds["offer_used_kw"]).sum()
        out["congestion_rent"] = ds["congestion_rent_total"]
        out["imbalance"] = out["payments"] - (out["processing_cost"] + out["transfer_cost"] + out["offer_payments"]
                                              + out["congestion_rent"])
        bid_price = ds["price"].sel(node=ds["bid_node"], workload=ds["bid_workload"])
        out["gross_value"] = (ds["bid_price"] * ds["bid_accepted"]).sum()
        out["consumer_surplus"] = ((ds["bid_price"] - bid_price) * ds["bid_accepted"]).sum()
        rent_at = ds["compute_rent"].sel(node=ds["offer_node"])
        out["producer_surplus"] = ((rent_at - ds["offer_price"]) * ds["offer_used_kw"]).sum()
        fixed = served.where(~ds["has_bid"], 0.0)
        out["fixed_payments"] = (ds["price"] * fixed).sum()
        out["welfare"] = out["gross_value"] - (out["processing_cost"] + out["transfer_cost"] + out["offer_cost"])
        out["surplus_identity"] = (out["consumer_surplus"] + out["producer_surplus"] + out["congestion_rent"]
                                   - out["welfare"] - out["fixed_payments"])
        for v in out.data_vars:
            out[v].attrs["unit"] = "$/h"
        return out.drop_vars([c for c in out.coords], errors="ignore")


def clear_bids(scenario: Scenario, bids=None, offers=None, *, demand_scale: float = 1.0,
               transfer_aware: bool = True, latency_limits_ms: Mapping[str, float] | None = None,
               value_of_lost_load: float | Mapping[str, float] | None = None, formulation: str = "path") -> BidResult:
    """Clear the market against ``bids`` (table or CSV: node, workload, quantity M tokens/h,
    price $/M tokens; steps in order, strictly decreasing price) and ``offers`` (table or
    CSV: provider, node, capacity_mw of AI compute, price $/kWh).  Returns a
    :class:`BidResult`.  Unbid pairs keep the scenario's demand at ``demand_scale``.
    ``formulation``: ``"path"`` (exact column generation, latency limits exact; default) or
    ``"arc"`` (refuses binding latency limits rather than relax them)."""
    from ..clearing.rules import check_sizes, first_token_prices
    from ..lp.inputs import check_formulation
    from ..lp.model import check_magnitudes

    s = check_scenario(scenario)
    formulation = check_formulation(formulation)
    scale = check_number(demand_scale, "demand_scale", "(multiplier)")
    transfer_aware = check_bool(transfer_aware, "transfer_aware")
    inp = build_inputs(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms,
                       value_of_lost_load=value_of_lost_load)
    N, K = inp.N, inp.K
    b = check_bids(s, bids) if bids is not None else check_bids(s, pd.DataFrame(columns=BID_COLUMNS))
    o = check_offers(s, offers) if offers is not None else check_offers(s, pd.DataFrame(columns=OFFER_COLUMNS))
    npos = {n: i for i, n in enumerate(inp.node_ids)}
    kpos = {k: i for i, k in enumerate(inp.workload_ids)}
    b_n = b["node"].map(npos).to_numpy(int)
    b_k = b["workload"].map(kpos).to_numpy(int)
    has_bid = np.zeros((N, K), dtype=bool)
    has_bid[b_n, b_k] = True
    demand = scale * inp.base_demand
    totals = np.zeros((N, K))
    np.add.at(totals, (b_n, b_k), b["quantity"].to_numpy(float))
    demand = np.where(has_bid, totals, demand)
    # capacity: offers where given, else the scenario's at price 0
    offered = set(o["node"])
    scen_rows = [{"provider": "scenario", "node": n, "capacity_mw": inp.capacity_kw[i] / 1000.0, "price": 0.0}
                 for i, n in enumerate(inp.node_ids) if n not in offered and inp.capacity_kw[i] > 0]
    o = pd.concat([o, pd.DataFrame(scen_rows, columns=OFFER_COLUMNS)], ignore_index=True) if scen_rows else o
    o_n = o["node"].map(npos).to_numpy(int)
    cap_kw = np.zeros(N)
    np.add.at(cap_kw, o_n, 1000.0 * o["capacity_mw"].to_numpy(float))
    if not (cap_kw > 0).any():
        raise ScenarioError("offers: no node would have compute capacity")
    new = dataclasses.replace(inp, base_demand=demand, capacity_kw=cap_kw)
    # the engine's size checks: offered capacity within the solver's range and resolution,
    # demand (bid quantities) and the bid and offer prices representable
    check_sizes(new, 1.0)
    check_magnitudes("bid price", b["price"].to_numpy(float), "$/M tokens")
    check_magnitudes("offer price", o["price"].to_numpy(float), "$/kWh")
    zero_cap = dataclasses.replace(new, capacity_kw=np.zeros(N))  # compute rows: sum g y - sum offers <= 0
    nK = N * K
    nbid, noff = len(b), len(o)
    b_n_k = b_n * K + b_k
    extra_cost = np.r_[b["price"].to_numpy(float), o["price"].to_numpy(float)]
    extra_ub = np.r_[b["quantity"].to_numpy(float), 1000.0 * o["capacity_mw"].to_numpy(float)]
    extra_val = np.r_[np.ones(nbid), -np.ones(noff)]

    def no_voll_on_bids(arr):
        ub = arr.col_ub.copy()
        ub[:nK][has_bid.reshape(-1)] = 0.0  # bid pairs: no lost load beyond the bids
        return dataclasses.replace(arr, col_ub=ub)

    if formulation == "arc":
        st = exact_arc_structure(new, "clear_bids")
        arr = no_voll_on_bids(st.lp(zero_cap, 1.0))
        nb = len(st.r_c)
        full = insert_columns(arr, nK, extra_cost, np.zeros(nbid + noff), extra_ub,
                              np.r_[st.origin_row[b_n, b_k], nb + o_n], np.arange(nbid + noff), extra_val)
        x, y, obj = _solve_live(LiveLP(), full, 1.0, "clear_bids")
        lam = y[st.origin_row.reshape(-1)].reshape(N, K)
        xs = np.r_[x[:nK], x[nK + nbid + noff:]]
        proc, link_tok = arc_dispatch(st, inp, xs, nK)
    else:
        nb = nK

        def extend(arr):
            return insert_columns(no_voll_on_bids(arr), nK, extra_cost, np.zeros(nbid + noff), extra_ub,
                                  np.r_[b_n_k, nK + o_n], np.arange(nbid + noff), extra_val)

        x, y, obj, full, _, _, sol = path_column_generation(zero_cap, new, 1.0, extend, "clear_bids")
        lam = sol.lam
        proc, _, link_tok, _, _ = _flows(sol, origins=False)
    verify(full, x, y, lambda i: f"row {i}", lambda j: f"column {j}")
    declined = np.maximum(x[nK:nK + nbid], 0.0)
    used = np.maximum(x[nK + nbid:nK + nbid + noff], 0.0)
    mu = np.maximum(-y[nb:nb + N], 0.0)
    rho = np.maximum(-y[nb + N:nb + N + inp.L], 0.0)
    # zero-demand cells: the engine's price of the first token at these rents
    lam = np.array(lam, dtype=float)
    first_token_prices(new, lam, mu, rho, 1.0, arc=st if formulation == "arc" else None)
    lam = lam + 0.0
    unserved = np.maximum(x[:nK], 0).reshape(N, K)
    np.add.at(unserved, (b_n, b_k), declined)
    # a pair whose bids are all declined trades nothing; its dual is degenerate there (anything
    # from its highest bid up is optimal): report the highest bid, the engine's convention
    # (a price at the value of lost load where everything is lost), never above every bid
    qty = b["quantity"].to_numpy(float)
    accepted_pair = np.zeros((N, K))
    np.add.at(accepted_pair, (b_n, b_k), qty - declined)
    top_bid = np.full((N, K), -np.inf)
    np.maximum.at(top_bid, (b_n, b_k), b["price"].to_numpy(float))
    all_declined = has_bid & (accepted_pair <= 1e-9 * np.maximum(1.0, totals))
    lam = np.where(all_declined, np.minimum(lam, top_bid), lam) + 0.0
    load_gbh = link_tok @ inp.fwd_gb + link_tok[inp.rev_arc] @ inp.rev_gb if inp.L else np.zeros(0)
    transfer = float((link_tok * (inp.fwd_gb[None, :] * inp.arc_cost[:, None]
                                  + inp.rev_gb[None, :] * inp.arc_cost[inp.rev_arc][:, None])).sum()) if inp.L else 0.0

    def da(values, dims, unit, desc):
        return (dims, values, {"unit": unit, "description": desc})

    ds = xr.Dataset({
        "demand": da(demand, ("node", "workload"), "M tokens/h", "bid total (bid pairs) or fixed demand"),
        "unserved": da(unserved, ("node", "workload"), "M tokens/h", "declined bids and lost load"),
        "has_bid": da(has_bid, ("node", "workload"), "", "demand given by bids"),
        "price": da(lam, ("node", "workload"), "$/M tokens", "locational price (demand dual)"),
        "processing": da(proc, ("node", "workload"), "M tokens/h", "tokens processed at node"),
        "compute_rent": da(mu, "node", "$/kWh", "compute rent (capacity dual)"),
        "compute_used": da(proc @ inp.intensity, "node", "kW", "IT power used"),
        "compute_capacity": da(cap_kw, "node", "kW", "offered AI compute"),
        "congestion_rent": da(rho, "link", "$/GB", "congestion rent (capacity dual)"),
        "link_flow": da(link_tok, ("link", "workload"), "M tokens/h", "tokens carried on link"),
        "link_load": da(load_gbh, "link", "GB/h", "load as the model counts it"),
        "bid_price": da(b["price"].to_numpy(float), "bid", "$/M tokens", "willingness to pay"),
        "bid_quantity": da(b["quantity"].to_numpy(float), "bid", "M tokens/h", "step quantity"),
        "bid_accepted": da(b["quantity"].to_numpy(float) - declined, "bid", "M tokens/h", "quantity served"),
        "offer_price": da(o["price"].to_numpy(float), "offer", "$/kWh", "offered price"),
        "offer_capacity_mw": da(o["capacity_mw"].to_numpy(float), "offer", "MW", "offered AI compute"),
        "offer_used_kw": da(used, "offer", "kW", "offered capacity used"),
        "processing_cost": da(float((proc * inp.proc_cost).sum()), (), "$/h", "energy + other opex"),
        "transfer_cost": da(transfer, (), "$/h", "transfer charges"),
        "congestion_rent_total": da(float((rho * load_gbh).sum()), (), "$/h", "congestion rents"),
        "objective": da(obj, (), "$/h", "LP cost: operating + offers + value given up"),
    }, coords={"node": inp.node_ids, "workload": inp.workload_ids, "link": inp.link_ids,
               "bid_node": ("bid", b["node"].astype(str).to_numpy()),
               "bid_workload": ("bid", b["workload"].astype(str).to_numpy()),
               "bid_step": ("bid", b["step"].to_numpy(int)),
               "offer_provider": ("offer", o["provider"].astype(str).to_numpy()),
               "offer_node": ("offer", o["node"].astype(str).to_numpy())})
    ds.attrs = {"scenario": s.name, "demand_scale": scale, "transfer_aware": int(transfer_aware),
                "formulation": formulation}
    return BidResult(ds)


def voll_bids(scenario: Scenario, demand_scale: float, value_of_lost_load: float) -> pd.DataFrame:
    """The value-of-lost-load market as bids: one step per (node, workload) with positive
    demand, the whole demand at ``value_of_lost_load``."""
    inp = build_inputs(check_scenario(scenario))
    v = check_number(value_of_lost_load, "value_of_lost_load", "$/M tokens", allow_zero=False)
    rows = [{"node": n, "workload": k, "quantity": demand_scale * inp.base_demand[i, j], "price": v}
            for i, n in enumerate(inp.node_ids) for j, k in enumerate(inp.workload_ids)
            if demand_scale * inp.base_demand[i, j] > 0]
    return pd.DataFrame(rows, columns=BID_COLUMNS)


def load_bid_file(path: str | Path) -> dict:
    """A market-with-bids file (YAML): ``scenario`` (a packaged name or a path relative to
    the file), optional ``demand_scale``, ``transfer_aware``, ``value_of_lost_load``, and
    ``bids`` / ``offers`` as lists of rows (the columns of :func:`clear_bids`) or as the name
    of a CSV file next to it (for large bid sets: a bid file holds at most
    :data:`MAX_BID_FILE_VALUES` YAML values, about 11,000 rows).  Returns
    the keyword arguments of :func:`clear_bids` (scenario loaded); every problem is a
    :class:`ScenarioError` naming the file.  Read with the scenario loader's limits
    (:mod:`tokenflow.scenarios.datafiles`): regular files only, size, nesting depth, alias expansion;
    a repeated key (a second ``bids:``) is refused, never silently the last one kept."""
    from ..scenarios.scenario import load_scenario

    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise ScenarioError(f"bid file: expected a file path, got {type(path).__name__} {path!r:.80}")
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"{path}: no such bid file")
    # the scenario loader's limits: regular file, size, depth, aliases, repeated keys
    doc = read_yaml(path, "bid file", max_values=MAX_BID_FILE_VALUES)
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: expected a mapping with 'scenario', 'bids' and/or 'offers'")
    known = {"scenario", "demand_scale", "transfer_aware", "value_of_lost_load", "bids", "offers"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ScenarioError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if "scenario" not in doc or not isinstance(doc["scenario"], str):
        raise ScenarioError(f"{path}: 'scenario' must name a packaged scenario or a scenario file")
    def local(ref: str) -> Path | None:
        try:
            p = path.parent / ref
            return p if p.exists() else None
        except (OSError, ValueError):
            return None

    ref = doc["scenario"]
    s = load_scenario(local(ref) or ref)
    out: dict = {"scenario": s}
    for key in ("bids", "offers"):
        if key in doc:
            rows = doc[key]
            if isinstance(rows, str):  # a CSV file next to the bid file (large bid sets)
                if local(rows) is None:
                    raise ScenarioError(f"{path}: '{key}': no such CSV file {rows!r} (relative to the bid file)")
                rows = local(rows)
            elif not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ScenarioError(f"{path}: '{key}' must be a list of rows (mappings) or a CSV file name")
            else:
                rows = pd.DataFrame(rows)
            try:
                out[key] = (check_bids if key == "bids" else check_offers)(s, rows)
            except ScenarioError as exc:
                raise ScenarioError([f"{path}: {p}" for p in exc.problems]) from None
    for key in ("demand_scale", "transfer_aware", "value_of_lost_load"):
        if key in doc:
            out[key] = doc[key]
    return out


def clear_bid_file(path: str | Path) -> BidResult:
    """Clear the market described by a bid file (see :func:`load_bid_file`)."""
    kw = load_bid_file(path)
    return clear_bids(kw.pop("scenario"), kw.pop("bids", None), kw.pop("offers", None), **kw)
