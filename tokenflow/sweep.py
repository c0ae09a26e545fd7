"""Sweeps: many market solves over a grid, random samples or a list of input points,
run in parallel with Dask (a local cluster by default, or an existing one), returned
as one labelled xarray Dataset.  A point that is infeasible or fails is recorded with
its status and message; it never aborts the sweep.

Input keys (what a sweep may vary):

* ``demand_scale``, ``transfer_aware``   - arguments of :func:`tokenflow.solve`
* ``latency.<workload>``                 - round-trip latency limit (ms)
* ``param.<name>``                       - a scenario parameter, e.g. ``param.link_bandwidth_gbps``
* ``workload.<workload>.<field>``        - e.g. ``workload.image.payload_bytes_per_token``
* ``scale.electricity`` / ``scale.capacity`` / ``scale.payload`` / ``scale.bandwidth``
                                         - multipliers on every node's price or capacity,
                                           every workload's payload, every link's bandwidth
"""

from __future__ import annotations

import itertools
import math
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import InfeasibleMarketError, ScenarioError, TokenflowError
from .scenario import PARAMETER_FIELDS, Scenario, load_scenario

SOLVE_KEYS = {"demand_scale", "transfer_aware", "formulation"}
SCALES = {"electricity", "capacity", "payload", "bandwidth"}


def check_key(key: str, s: Scenario) -> None:
    parts = key.split(".")
    ok = (key in SOLVE_KEYS
          or (parts[0] == "latency" and len(parts) == 2 and parts[1] in s.workload_ids)
          or (parts[0] == "param" and len(parts) == 2 and parts[1] in PARAMETER_FIELDS)
          or (parts[0] == "workload" and len(parts) == 3 and parts[1] in s.workload_ids
              and parts[2] in s.workloads.columns)
          or (parts[0] == "scale" and len(parts) == 2 and parts[1] in SCALES))
    if not ok:
        raise ScenarioError(f"sweep: unknown input {key!r}; use demand_scale, transfer_aware, latency.<workload>, "
                            "param.<name>, workload.<workload>.<field> or scale.<electricity|capacity|payload|"
                            "bandwidth>")


def apply_inputs(s: Scenario, point: dict[str, Any]) -> tuple[Scenario, dict[str, Any]]:
    """The scenario and solve keyword arguments for one sweep point."""
    params, workloads, nodes, links = {}, {}, {}, {}
    kwargs: dict[str, Any] = {}
    # multipliers first, so that a specific value given in the same point wins over them
    ordered = sorted(point.items(), key=lambda kv: not kv[0].startswith("scale."))
    for key, val in ordered:
        parts = key.split(".")
        if key in SOLVE_KEYS:
            kwargs[key] = bool(val) if key == "transfer_aware" else val
        elif parts[0] == "latency":
            kwargs.setdefault("latency_limits_ms", {})[parts[1]] = float(val)
        elif parts[0] == "param":
            params[parts[1]] = float(val)
        elif parts[0] == "workload":
            workloads.setdefault(parts[1], {})[parts[2]] = float(val)
        elif parts[0] == "scale":
            f = float(val)
            if parts[1] == "electricity":
                for n, v in s.nodes["electricity_usd_per_kwh"].items():
                    nodes.setdefault(n, {})["electricity_usd_per_kwh"] = v * f
            elif parts[1] == "capacity":
                for n, v in s.nodes["capacity_mw"].items():
                    nodes.setdefault(n, {})["capacity_mw"] = v * f
            elif parts[1] == "payload":
                for w, v in s.workloads["payload_bytes_per_token"].items():
                    workloads.setdefault(w, {})["payload_bytes_per_token"] = v * f
            elif parts[1] == "bandwidth":
                for lk, v in s.link_bandwidth_gbps.items():
                    links.setdefault(lk, {})["bandwidth_gbps"] = v * f
    if params or workloads or nodes or links:
        s = s.replace(params=params, workloads=workloads, nodes=nodes, links=links)
    return s, kwargs


# ----------------------------------------------------------------------------- evaluators

def evaluate_market(s: Scenario, point: dict[str, Any], **solve_kwargs) -> dict[str, Any]:
    """Default evaluator: one market solve (``solve_kwargs`` apply to every point; the
    point's own inputs win).  Returns prices by node and workload and summary figures.
    Solves on a live market of this process (:func:`tokenflow.engine.pooled_solve`)."""
    from .engine import pooled_solve

    s2, kwargs = apply_inputs(s, point)
    lat = {**(solve_kwargs.get("latency_limits_ms") or {}), **kwargs.pop("latency_limits_ms", {})}
    merged = {**solve_kwargs, **kwargs}
    if lat:
        merged["latency_limits_ms"] = lat
    r = pooled_solve(s2, **merged)
    a = r.arrays()
    nodes, wls = s2.node_ids, s2.workload_ids
    dem, price = a["demand"], a["price"]
    wsum = dem.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_price = np.where(wsum > 0, (price * dem).sum(axis=0) / wsum, np.nan)
        node_util = np.divide(a["compute_used"], a["compute_capacity"], out=np.zeros(len(nodes)),
                              where=a["compute_capacity"] > 0)
    util = a["link_utilization"]
    return {
        "objective": r.objective,
        "price": xr.DataArray(price, coords={"node": nodes, "workload": wls}, dims=("node", "workload")),
        "mean_price": xr.DataArray(mean_price, coords={"workload": wls}, dims="workload"),
        "cost": xr.DataArray(a["cost"], coords={"component": ["energy", "other_opex", "transfer", "lost_load"]},
                             dims="component"),
        "cost_per_mtok": float(r.objective / dem.sum()),
        "compute_utilization": float(a["compute_used"].sum() / a["compute_capacity"].sum()),
        "node_utilization": xr.DataArray(node_util, coords={"node": nodes}, dims="node"),
        "saturated_links": float((util >= 1 - 1e-3).sum()),
        "max_link_utilization": float(util.max()) if len(util) else 0.0,
        "unserved": xr.DataArray(a["unserved"].sum(axis=0), coords={"workload": wls}, dims="workload"),
    }


def evaluate_claims(s: Scenario, point: dict[str, Any], s20: Scenario | None = None) -> dict[str, Any]:
    """C1-C4 metrics at one input point: saturated-link count (C1), cost uplift % (C2),
    largest chat price rise % and where (C3), s*/aggregate bound on the 20-node network (C4)."""
    from .claims import CASE_SCALE, CHAT_LIMITS_MS, SATURATION
    from .engine import pooled_scale_limit as demand_scale_limit
    from .engine import pooled_solve as solve

    s5, kwargs = apply_inputs(s, point)
    scale = kwargs.pop("demand_scale", CASE_SCALE)
    lat = kwargs.pop("latency_limits_ms", {})
    ta = solve(s5, demand_scale=scale, latency_limits_ms={**lat, "chat": CHAT_LIMITS_MS[0]}, **kwargs)
    bl = solve(s5, demand_scale=scale, transfer_aware=False, latency_limits_ms={**lat, "chat": CHAT_LIMITS_MS[0]})
    tight = solve(s5, demand_scale=scale, latency_limits_ms={**lat, "chat": CHAT_LIMITS_MS[1]}, **kwargs)
    k = s5.workload_ids.index("chat")
    rise = 100 * (tight.arrays()["price"][:, k] / ta.arrays()["price"][:, k] - 1)
    util = ta.arrays()["link_utilization"]
    out = {
        "c1_saturated": float((util >= SATURATION).sum()),
        "c2_uplift_pct": 100 * (ta.objective / bl.objective - 1),
        "c3_rise_pct": float(np.nanmax(rise)),
        "c3_node": str(s5.node_ids[int(np.nanargmax(rise))]),
    }
    if s20 is not None:
        s20b, _ = apply_inputs(s20, {k: v for k, v in point.items() if k not in SOLVE_KEYS})
        lim = demand_scale_limit(s20b)
        out["c4_ratio"] = lim.max_scale / lim.aggregate_bound
    return out


def _run_points(evaluate: Callable, s: Scenario, points: list[dict[str, Any]],
                extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Evaluate a chunk of points (runs on a worker)."""
    out = []
    for p in points:
        t0 = time.perf_counter()
        try:
            res = evaluate(s, p, **extra)
            res["status"], res["message"] = "ok", ""
        except InfeasibleMarketError as exc:
            res = {"status": "infeasible", "message": str(exc)}
        except TokenflowError as exc:
            res = {"status": "error", "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a failing point must never abort the sweep
            res = {"status": "error", "message": f"{exc.__class__.__name__}: {exc} "
                   f"({traceback.extract_tb(exc.__traceback__)[-1].name})"}
        res["seconds"] = time.perf_counter() - t0
        out.append(res)
    return out


# ----------------------------------------------------------------------------- sweep

def make_points(s: Scenario, *, grid: dict[str, Sequence] | None = None,
                ranges: dict[str, tuple[float, float]] | None = None, n_samples: int = 0, seed: int = 0,
                points: list[dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], str]:
    """Expand a grid (outer product), uniform random samples over ``ranges``, or take
    an explicit list of points.  Returns (points, kind)."""
    given = sum(x is not None for x in (grid, ranges, points))
    if given != 1:
        raise ScenarioError("sweep: give exactly one of grid, ranges (with n_samples) or points")
    if grid is not None:
        for k in grid:
            check_key(k, s)
        keys = list(grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(list(grid[k]) for k in keys))], "grid"
    if ranges is not None:
        if n_samples < 1:
            raise ScenarioError("sweep: ranges need n_samples >= 1")
        rng = np.random.default_rng(seed)
        for k, (lo, hi) in ranges.items():
            check_key(k, s)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ScenarioError(f"sweep: range of {k!r} must be [low, high] with low <= high, got {lo, hi}")
        draws = {k: rng.uniform(lo, hi, n_samples) for k, (lo, hi) in ranges.items()}
        return [{k: float(v[i]) for k, v in draws.items()} for i in range(n_samples)], "sample"
    for p in points:
        for k in p:
            check_key(k, s)
    return [dict(p) for p in points], "point"


def sweep(scenario: Scenario | str, *, grid: dict[str, Sequence] | None = None,
          ranges: dict[str, tuple[float, float]] | None = None, n_samples: int = 0, seed: int = 0,
          points: list[dict[str, Any]] | None = None, fixed: dict[str, Any] | None = None,
          evaluate: Callable | str = "market", evaluate_kwargs: dict[str, Any] | None = None,
          client: Any = None, scheduler: str | None = None, n_workers: int | None = None,
          chunk_size: int | None = None, progress: bool = True) -> xr.Dataset:
    """Solve the market at many input points in parallel with Dask.

    Give one of ``grid`` (dict key -> values; outer product, one dimension per key),
    ``ranges`` + ``n_samples`` (uniform draws; dimension ``sample``) or ``points``
    (list of dicts; dimension ``point``).  ``fixed`` inputs apply to every point.
    ``evaluate`` is ``"market"``, ``"claims"`` or a picklable callable
    ``f(scenario, point, **evaluate_kwargs) -> dict``.  Runs on ``client`` (a
    ``distributed.Client``), on the cluster at ``scheduler``, or on a new local cluster
    of ``n_workers`` processes (default: one per core).  ``n_workers=0`` runs in this
    process without Dask.  Every point gets ``status`` (ok / infeasible / error) and
    ``message``; a failing point never aborts the sweep.
    """
    s = load_scenario(scenario) if isinstance(scenario, (str, Path)) else scenario
    pts, kind = make_points(s, grid=grid, ranges=ranges, n_samples=n_samples, seed=seed, points=points)
    for k in fixed or {}:
        check_key(k, s)
    full = [{**(fixed or {}), **p} for p in pts]
    extra = dict(evaluate_kwargs or {})
    if isinstance(evaluate, str):
        if evaluate not in {"market", "claims"}:
            raise ScenarioError(f"sweep: evaluate must be 'market', 'claims' or a callable, got {evaluate!r}")
        if evaluate == "claims":
            extra.setdefault("s20", load_scenario("us20"))
        evaluate = evaluate_market if evaluate == "market" else evaluate_claims
    t0 = time.perf_counter()
    results = _dispatch(evaluate, s, full, extra, client, scheduler, n_workers, chunk_size, progress)
    ds = _assemble(pts, kind, results, grid)
    ds.attrs.update({"scenario": s.name, "kind": kind, "n_points": len(pts), "wall_seconds": time.perf_counter() - t0,
                     "fixed": repr(fixed or {}), "evaluate": getattr(evaluate, "__name__", str(evaluate))})
    return ds


def _dispatch(evaluate, s, points, extra, client, scheduler, n_workers, chunk_size, progress) -> list[dict]:
    n = len(points)
    if n_workers == 0 and client is None and scheduler is None:
        return _run_points(evaluate, s, points, extra)
    from distributed import Client, LocalCluster, as_completed

    own_cluster = own_client = None
    if client is None:
        if scheduler:
            client = own_client = Client(scheduler)
        else:
            import os

            workers = n_workers or os.cpu_count() or 1
            own_cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
            client = own_client = Client(own_cluster)
    try:
        n_w = max(1, len(client.scheduler_info().get("workers", {})) or 1)
        size = chunk_size or max(1, min(25, math.ceil(n / (2 * n_w))))
        # points that share a market structure (solve settings) go into the same chunks, so a
        # chunk re-solves one live Market of its worker (tokenflow.engine.pooled_market)
        order = sorted(range(n), key=lambda i: tuple(sorted((k, repr(v)) for k, v in points[i].items()
                                                            if k in SOLVE_KEYS and k != "demand_scale")))
        chunks = [order[i:i + size] for i in range(0, n, size)]
        s_f = client.scatter(s, broadcast=True)
        extra_f = client.scatter(extra, broadcast=True) if extra else {}
        futures = {client.submit(_run_chunk, evaluate, s_f, [points[i] for i in idx], extra_f, pure=False): idx
                   for idx in chunks}
        results: list[dict | None] = [None] * n
        bar = _progress(n, progress)
        for fut in as_completed(futures):
            idx = futures[fut]
            try:
                chunk_res = fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker marks its points failed
                chunk_res = [{"status": "error", "message": f"worker failed: {exc}"} for _ in idx]
            for i, r in zip(idx, chunk_res):
                results[i] = r
            bar.update(len(idx))
        bar.close()
        return results  # type: ignore[return-value]
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def _run_chunk(evaluate, s, points, extra):
    return _run_points(evaluate, s, points, extra)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, show: bool):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sweep", unit="point")


def _assemble(points: list[dict], kind: str, results: list[dict], grid: dict | None) -> xr.Dataset:
    """One Dataset: sweep dimension(s) + the evaluator's outputs; failed points are NaN."""
    n = len(points)
    keys = sorted({k for r in results for k in r})
    data: dict[str, Any] = {}
    for key in keys:
        vals = [r.get(key) for r in results]
        proto = next((v for v in vals if v is not None), None)
        if isinstance(proto, xr.DataArray):
            filled = [v if isinstance(v, xr.DataArray) else xr.full_like(proto, np.nan, dtype=float) for v in vals]
            data[key] = xr.concat(filled, dim="point", coords="minimal", compat="override")
        elif isinstance(proto, str):
            data[key] = xr.DataArray(np.array([v if isinstance(v, str) else "" for v in vals], dtype=str),
                                     dims="point")
        else:
            data[key] = xr.DataArray(np.array([np.nan if v is None else float(v) for v in vals]), dims="point")
    ds = xr.Dataset(data).assign_coords(point=np.arange(n))
    in_keys = list(dict.fromkeys(k for p in points for k in p))
    for k in in_keys:
        ds.coords[k] = ("point", np.array([float(p.get(k, np.nan)) for p in points]))
    if kind == "grid" and grid:
        dims = list(grid)
        if len(dims) == 1:
            ds = ds.swap_dims(point=dims[0]).drop_vars("point")
        else:
            ds = ds.set_index(point=dims).unstack("point")
    elif kind == "sample":
        ds = ds.rename(point="sample")
    return ds


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read a sweep specification (YAML); see ``tokenflow sweep --help``."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"sweep spec not found: {path}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(spec, dict) or "scenario" not in spec:
        raise ScenarioError(f"{path}: a sweep spec is a mapping with 'scenario' and one of grid, samples, points")
    known = {"scenario", "grid", "samples", "points", "fixed", "evaluate"}
    unknown = set(spec) - known
    if unknown:
        raise ScenarioError(f"{path}: unknown keys {sorted(unknown)} (allowed: {sorted(known)})")
    samples = spec.get("samples") or {}
    if samples and ("ranges" not in samples or "n" not in samples):
        raise ScenarioError(f"{path}: samples needs 'n' and 'ranges'")
    return {
        "scenario": spec["scenario"],
        "grid": spec.get("grid"),
        "ranges": {k: tuple(v) for k, v in samples["ranges"].items()} if samples else None,
        "n_samples": int(samples.get("n", 0)) if samples else 0,
        "seed": int(samples.get("seed", 0)) if samples else 0,
        "points": spec.get("points"),
        "fixed": spec.get("fixed"),
        "evaluate": spec.get("evaluate", "market"),
    }


def summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """Counts of point statuses."""
    return ds["status"].to_series().value_counts().rename("points").to_frame()
