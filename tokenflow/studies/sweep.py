"""Sweeps: many market solves over a grid, random samples or a list of input points,
run in parallel (on a pool of local worker processes by default, or on an existing Dask
cluster), returned as one labelled xarray Dataset.  A point that is infeasible or fails is recorded with
its status and message; it never aborts the sweep.

Input keys (what a sweep may vary):

* ``demand_scale``, ``transfer_aware``   - arguments of :func:`tokenflow.solve`
* ``latency.<workload>``                 - round-trip latency limit (ms)
* ``param.<name>``                       - a scenario parameter, e.g. ``param.link_bandwidth_gbps``
* ``workload.<workload>.<field>``        - e.g. ``workload.image.payload_bytes_per_token``
* ``scale.electricity`` / ``scale.capacity`` / ``scale.payload`` / ``scale.bandwidth``
                                         - multipliers on every node's price or capacity,
                                           every workload's payload, every link's bandwidth
* ``choice.<name>``                      - a modelling choice (categorical), e.g.
                                           ``choice.payload_direction: both`` (see tokenflow.CHOICES)
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import math
import numbers
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..core.errors import InfeasibleMarketError, ScenarioError, TokenflowError
from ..scenarios.choices import CHOICES, check_choices
from ..scenarios.scenario import load_scenario
from ..scenarios.scenario_class import Scenario
from ..scenarios.scenario_fields import PARAMETER_FIELDS

SOLVE_KEYS = {"demand_scale", "transfer_aware", "formulation"}
SCALES = {"electricity", "capacity", "payload", "bandwidth"}


def check_key(key: str, s: Scenario) -> None:
    parts = key.split(".")
    ok = (key in SOLVE_KEYS
          or (parts[0] == "latency" and len(parts) == 2 and parts[1] in s.workload_ids)
          or (parts[0] == "param" and len(parts) == 2 and parts[1] in PARAMETER_FIELDS)
          or (parts[0] == "workload" and len(parts) == 3 and parts[1] in s.workload_ids
              and parts[2] in s.workloads.columns)
          or (parts[0] == "scale" and len(parts) == 2 and parts[1] in SCALES)
          or (parts[0] == "choice" and len(parts) == 2 and parts[1] in CHOICES))
    if not ok:
        raise ScenarioError(f"sweep: unknown input {key!r}; use demand_scale, transfer_aware, latency.<workload>, "
                            "param.<name>, workload.<workload>.<field>, scale.<electricity|capacity|payload|"
                            f"bandwidth> or choice.<{'|'.join(CHOICES)}>")


_CHOSEN: dict[tuple, tuple[Scenario, Scenario]] = {}
_CHOSEN_SIZE = 256


def _with_choices(s: Scenario, choices: dict[str, str]) -> Scenario:
    """``s.with_choices(**choices)``, built once per process for each scenario and set of
    choices (a Monte Carlo over the modelling choices draws the same few sets again and
    again; a scenario is immutable, so the copy is shared).  The cache holds ``s`` itself,
    so its ``id`` cannot be reused while the entry lives."""
    key = (id(s), tuple(sorted(choices.items())))
    hit = _CHOSEN.get(key)
    if hit is not None and hit[0] is s:
        return hit[1]
    out = s.with_choices(**choices)
    _CHOSEN[key] = (s, out)
    while len(_CHOSEN) > _CHOSEN_SIZE:
        _CHOSEN.pop(next(iter(_CHOSEN)))
    return out


def apply_inputs(s: Scenario, point: dict[str, Any]) -> tuple[Scenario, dict[str, Any]]:
    """The scenario and solve keyword arguments for one sweep point."""
    params, workloads, nodes, links = {}, {}, {}, {}
    kwargs: dict[str, Any] = {}
    # modelling choices first: multipliers and values then apply to the chosen inputs
    choices = {k.split(".", 1)[1]: v for k, v in point.items() if k.startswith("choice.")}
    if choices:
        s = _with_choices(s, check_choices(choices, "sweep: choice"))
    # multipliers first, so that a specific value given in the same point wins over them
    ordered = sorted(point.items(), key=lambda kv: not kv[0].startswith("scale."))
    for key, val in ordered:
        parts = key.split(".")
        if parts[0] == "choice":
            continue
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
    Solves on a live market of this process (:func:`tokenflow.clearing.engine.pooled_solve`)."""
    from ..clearing.engine import pooled_solve

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
    tm = _templates(tuple(nodes), tuple(wls))
    return {
        "objective": r.objective,
        "price": tm["price"].copy(deep=False, data=price),
        "mean_price": tm["workload"].copy(deep=False, data=mean_price),
        "cost": tm["cost"].copy(deep=False, data=a["cost"]),
        "cost_per_mtok": float(r.objective / dem.sum()),
        "compute_utilization": float(a["compute_used"].sum() / a["compute_capacity"].sum()),
        "node_utilization": tm["node"].copy(deep=False, data=node_util),
        "saturated_links": float((util >= 1 - 1e-3).sum()),
        "max_link_utilization": float(util.max()) if len(util) else 0.0,
        "unserved": tm["workload"].copy(deep=False, data=a["unserved"].sum(axis=0)),
    }


_TEMPLATES: dict[tuple, dict[str, xr.DataArray]] = {}


def _templates(nodes: tuple[str, ...], wls: tuple[str, ...]) -> dict[str, xr.DataArray]:
    """Labelled arrays of :func:`evaluate_market`'s shapes, built once per network and
    filled by a shallow copy (building a DataArray's indexes costs ~0.3 ms; a copy ~0.06 ms)."""
    key = (nodes, wls)
    hit = _TEMPLATES.get(key)
    if hit is None:
        if len(_TEMPLATES) >= 16:
            _TEMPLATES.pop(next(iter(_TEMPLATES)))
        hit = _TEMPLATES[key] = {
            "price": xr.DataArray(np.zeros((len(nodes), len(wls))), coords={"node": list(nodes), "workload": list(wls)},
                                  dims=("node", "workload")),
            "workload": xr.DataArray(np.zeros(len(wls)), coords={"workload": list(wls)}, dims="workload"),
            "node": xr.DataArray(np.zeros(len(nodes)), coords={"node": list(nodes)}, dims="node"),
            "cost": xr.DataArray(np.zeros(4), coords={"component": ["energy", "other_opex", "transfer", "lost_load"]},
                                 dims="component"),
        }
    return hit


def evaluate_claims(s: Scenario, point: dict[str, Any], s20: Scenario | None = None) -> dict[str, Any]:
    """C1-C4 metrics at one input point: saturated-link count (C1), cost uplift % (C2),
    largest chat price rise % and where (C3; the first node in scenario order among equal
    rises, "" where no price rises), s*/aggregate bound on the 20-node network (C4).  C2 and C3 are rounded to
    :data:`tokenflow.studies.claims.CLAIM_DECIMALS`."""
    from ..clearing.engine import pooled_scale_limit as demand_scale_limit
    from ..clearing.engine import pooled_solve as solve
    from .cases import CASE_SCALE, CHAT_LIMITS_MS, CLAIM_DECIMALS, SATURATION

    s5, kwargs = apply_inputs(s, point)
    scale = kwargs.pop("demand_scale", CASE_SCALE)
    lat = kwargs.pop("latency_limits_ms", {})
    ta = solve(s5, demand_scale=scale, latency_limits_ms={**lat, "chat": CHAT_LIMITS_MS[0]}, **kwargs)
    bl = solve(s5, demand_scale=scale, transfer_aware=False, latency_limits_ms={**lat, "chat": CHAT_LIMITS_MS[0]})
    tight = solve(s5, demand_scale=scale, latency_limits_ms={**lat, "chat": CHAT_LIMITS_MS[1]}, **kwargs)
    k = s5.workload_ids.index("chat")
    rise = np.round(100 * (tight.arrays()["price"][:, k] / ta.arrays()["price"][:, k] - 1), CLAIM_DECIMALS) + 0.0
    util = ta.arrays()["link_utilization"]
    out = {
        "c1_saturated": float((util >= SATURATION).sum()),
        "c2_uplift_pct": round(100 * (ta.objective / bl.objective - 1), CLAIM_DECIMALS) + 0.0,  # (no -0.0)
        "c3_rise_pct": float(np.nanmax(rise)),
        "c3_node": str(s5.node_ids[int(np.nanargmax(rise))]) if np.nanmax(rise) > 0 else "",  # "": no rise
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

MAX_POINTS = 1_000_000


def _is_number(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def check_value(key: str, value: Any, where: str = "sweep") -> None:
    """Type check of one input value before anything is solved: numbers where numbers
    are meant (finite, not text or booleans), ``transfer_aware`` true/false,
    ``formulation`` path/arc.  Whether a number is in range is checked per point (a bad
    point is recorded as failed; it does not abort the sweep).  Keys other than the
    built-in ones are left to their own checks."""
    family = key.split(".")[0]
    if key == "transfer_aware":
        if not (isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1))):
            raise ScenarioError(f"{where}: transfer_aware must be true or false, got {value!r}")
    elif key == "formulation":
        if value not in ("path", "arc"):
            raise ScenarioError(f"{where}: formulation must be 'path' or 'arc', got {value!r}")
    elif key == "demand_scale" or family in {"latency", "param", "workload", "scale"}:
        if not _is_number(value):
            raise ScenarioError(f"{where}: {key} must be a finite number, got {value!r}")


def _key(key: Any, s: Scenario) -> None:
    if not isinstance(key, str):
        raise ScenarioError(f"sweep: input names are text, got {key!r}")
    check_key(key, s)


def _values(key: str, vals: Any, where: str) -> list:
    if isinstance(vals, (str, bytes, Mapping)) or not isinstance(vals, (Sequence, np.ndarray, pd.Index)):
        raise ScenarioError(f"{where}: grid values of {key!r} must be a list, got {vals!r}")
    vals = list(vals)
    if not vals:
        raise ScenarioError(f"{where}: grid values of {key!r} are empty")
    for v in vals:
        check_value(key, v, where)
    if len({repr(v) for v in vals}) != len(vals):
        raise ScenarioError(f"{where}: grid values of {key!r} repeat a value: {vals!r}")
    return vals


def make_points(s: Scenario, *, grid: dict[str, Sequence] | None = None,
                ranges: dict[str, tuple[float, float]] | None = None, n_samples: int = 0, seed: int = 0,
                points: list[dict[str, Any]] | None = None,
                max_points: int = MAX_POINTS) -> tuple[list[dict[str, Any]], str]:
    """Expand a grid (outer product), uniform random samples over ``ranges``, or take
    an explicit list of points.  Returns (points, kind).  Everything is checked before
    a point is built: keys, value types, and the number of points (at most
    ``max_points``, default 10^6)."""
    given = sum(x is not None for x in (grid, ranges, points))
    if given != 1:
        raise ScenarioError("sweep: give exactly one of grid, ranges (with n_samples) or points")
    if isinstance(max_points, bool) or not isinstance(max_points, numbers.Integral) or max_points < 1:
        raise ScenarioError(f"sweep: max_points must be a whole number >= 1, got {max_points!r}")
    if grid is not None:
        if not isinstance(grid, Mapping) or not grid:
            raise ScenarioError(f"sweep: grid must be a non-empty mapping of input to list of values, got {grid!r}")
        for k in grid:
            _key(k, s)
        keys = list(grid)
        values = [_values(k, grid[k], "sweep") for k in keys]
        size = math.prod(len(v) for v in values)
        if size > max_points:
            raise ScenarioError(f"sweep: the grid has {size:,} points, more than max_points = {max_points:,}; "
                                "raise max_points (tokenflow sweep --max-points) if you mean it")
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)], "grid"
    if ranges is not None:
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ScenarioError(f"sweep: ranges need n_samples >= 1 (a whole number), got {n_samples!r}")
        if n_samples > max_points:
            raise ScenarioError(f"sweep: {n_samples:,} samples is more than max_points = {max_points:,}; "
                                "raise max_points (tokenflow sweep --max-points) if you mean it")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ScenarioError(f"sweep: seed must be a whole number >= 0, got {seed!r}")
        if not isinstance(ranges, Mapping) or not ranges:
            raise ScenarioError(f"sweep: ranges must be a non-empty mapping of input to [low, high], got {ranges!r}")
        rng = np.random.default_rng(seed)
        for k, lohi in ranges.items():
            _key(k, s)
            if k in {"transfer_aware", "formulation"}:
                raise ScenarioError(f"sweep: {k} cannot be sampled from a range; use a grid or points")
            if isinstance(lohi, (str, bytes, Mapping)) or not isinstance(lohi, (Sequence, np.ndarray)) \
                    or len(lohi) != 2 or not all(map(_is_number, lohi)) or lohi[0] > lohi[1]:
                raise ScenarioError(f"sweep: range of {k!r} must be [low, high], two finite numbers with "
                                    f"low <= high, got {lohi!r}")
        draws = {k: rng.uniform(lo, hi, n_samples) for k, (lo, hi) in ranges.items()}
        return [{k: float(v[i]) for k, v in draws.items()} for i in range(n_samples)], "sample"
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Sequence) or not points:
        raise ScenarioError(f"sweep: points must be a non-empty list of {{input: value}} mappings, got {points!r}")
    if len(points) > max_points:
        raise ScenarioError(f"sweep: {len(points):,} points is more than max_points = {max_points:,}; "
                            "raise max_points (tokenflow sweep --max-points) if you mean it")
    for i, p in enumerate(points):
        if not isinstance(p, Mapping):
            raise ScenarioError(f"sweep: points[{i}] must be a mapping of input to value, got {p!r}")
        for k, v in p.items():
            _key(k, s)
            check_value(k, v, f"sweep: points[{i}]")
    return [dict(p) for p in points], "point"


# Connecting to an existing Dask scheduler (``scheduler=`` / ``--scheduler``): only these
# schemes (and, from the API, ``inproc://`` of a scheduler running in this very process);
# the address is probed (TCP connect, then Dask's "identity" call) within CONNECT_TIMEOUT_S
# seconds before any work is sent, so a wrong port, a listener that never answers or a web
# server is one clear ClusterError, not a hang.
SCHEDULER_SCHEMES = ("tcp", "tls")
CONNECT_TIMEOUT_S = 10.0


def check_scheduler_address(address: object, *, in_process: bool = False) -> str:
    """A Dask scheduler address ``tcp://host:port`` or ``tls://host:port`` (a bare
    ``host:port`` means tcp; with ``in_process``, also ``inproc://`` of a scheduler in this
    process); anything else is a :class:`ScenarioError`."""
    from distributed.comm.addressing import parse_address, parse_host_port

    if not isinstance(address, str) or not address.strip():
        raise ScenarioError(f"scheduler: expected an address such as tcp://host:8786, got {address!r:.80}")
    try:
        scheme, loc = parse_address(address.strip())
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"scheduler {address!r}: not a Dask scheduler address (e.g. tcp://host:8786): "
                            f"{exc}") from None
    if in_process and scheme == "inproc":
        return address.strip()
    if scheme not in SCHEDULER_SCHEMES:
        raise ScenarioError(f"scheduler {address!r}: unsupported address scheme {scheme + '://'!r}; use "
                            + " or ".join(f"{s}://host:port" for s in SCHEDULER_SCHEMES))
    try:
        host, port = parse_host_port(loc)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"scheduler {address!r}: not a Dask scheduler address (e.g. tcp://host:8786): "
                            f"{exc}") from None
    if not host or port is None or not 0 < int(port) < 65536:
        raise ScenarioError(f"scheduler {address!r}: not a Dask scheduler address: needs a host and a port "
                            "in 1-65535 (e.g. tcp://host:8786)")
    return f"{scheme}://{loc}"


def probe_scheduler(address: str, timeout: float | None = None) -> None:
    """Check within ``timeout`` seconds (default :data:`CONNECT_TIMEOUT_S`) that a Dask
    scheduler answers at ``address``; a :class:`ClusterError` says what answered instead."""
    import asyncio
    import socket
    import threading

    from distributed.comm.addressing import parse_address, parse_host_port

    from ..core.errors import ClusterError

    timeout = CONNECT_TIMEOUT_S if timeout is None else float(timeout)
    address = check_scheduler_address(address, in_process=True)
    if address.startswith("inproc://"):
        from distributed.comm.inproc import global_manager

        try:
            listener = global_manager.get_listener_for(parse_address(address)[1])
        except ValueError:  # an inproc address of another process or host
            listener = None
        if listener is None:
            raise ClusterError(f"no Dask scheduler at {address} in this process")
        return
    host, port = parse_host_port(parse_address(address)[1])
    t0 = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        raise ClusterError(f"no answer from {address} within {timeout:g} s (a firewall or a wrong host?)") from None
    except OSError as exc:
        raise ClusterError(f"cannot connect to the Dask scheduler at {address}: {exc.strerror or exc}") from None
    left = max(1.0, timeout - (time.monotonic() - t0))
    out: dict[str, Any] = {}

    async def identity():
        from distributed.comm import connect
        from distributed.security import Security

        comm = await connect(address, timeout=left, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    def run() -> None:
        try:
            out["reply"] = asyncio.run(asyncio.wait_for(identity(), left))
        except BaseException as exc:  # noqa: BLE001 - any failure (incl. MemoryError on garbage) is reported
            out["error"] = exc

    th = threading.Thread(target=run, name="tokenflow-probe-scheduler", daemon=True)
    th.start()
    th.join(left + 2.0)
    reply = out.get("reply")
    if isinstance(reply, dict) and reply.get("type") == "Scheduler":
        return
    err = out.get("error")
    why = ("it did not answer" if err is None or isinstance(err, (TimeoutError, asyncio.TimeoutError))
           else f"{type(err).__name__}: {str(err)[:120]}" if not isinstance(err, MemoryError)
           else "it sent something that is not Dask's protocol")
    raise ClusterError(f"something listens at {address} but it is not a Dask scheduler ({why} within "
                       f"{timeout:g} s; a wrong port, or a web server such as the dashboard?)")


def sweep(scenario: Scenario | str, *, grid: dict[str, Sequence] | None = None,
          ranges: dict[str, tuple[float, float]] | None = None, n_samples: int = 0, seed: int = 0,
          points: list[dict[str, Any]] | None = None, fixed: dict[str, Any] | None = None,
          evaluate: Callable | str = "market", evaluate_kwargs: dict[str, Any] | None = None,
          client: Any = None, scheduler: str | None = None, n_workers: int | None = None,
          chunk_size: int | None = None, progress: bool = True, max_points: int = MAX_POINTS) -> xr.Dataset:
    """Solve the market at many input points in parallel.

    Give one of ``grid`` (dict key -> values; outer product, one dimension per key),
    ``ranges`` + ``n_samples`` (uniform draws; dimension ``sample``) or ``points``
    (list of dicts; dimension ``point``).  ``fixed`` inputs apply to every point.
    ``evaluate`` is ``"market"``, ``"claims"`` or a callable
    ``f(scenario, point, **evaluate_kwargs) -> dict`` (pickled with cloudpickle, so a function
    defined in a notebook works).  Runs on ``client`` (a ``distributed.Client``), on the Dask
    cluster at ``scheduler``, or on a local pool of ``n_workers`` worker processes (default:
    one per usable core; more than :func:`max_workers`, 4 per core, is a :class:`ScenarioError`;
    started by the first such sweep of the process and kept for the next ones, see
    :func:`local_pool`).  ``n_workers=0`` runs in this process.  ``scheduler`` must be
    ``tcp://`` or ``tls://`` (else :class:`ScenarioError`); when nothing there answers as a Dask scheduler within
    :data:`CONNECT_TIMEOUT_S` (10 s) the sweep stops with :class:`~tokenflow.core.errors.ClusterError`.
    Every point gets ``status`` (ok / infeasible / error) and
    ``message``; a failing point never aborts the sweep.
    """
    s = load_scenario(scenario) if isinstance(scenario, (str, Path)) or not isinstance(scenario, Scenario) \
        else scenario
    for name, v, low in (("n_workers", n_workers, 0), ("chunk_size", chunk_size, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low):
            raise ScenarioError(f"sweep: {name} must be a whole number >= {low}, got {v!r}")
    if n_workers is not None:
        n_workers = check_workers(n_workers)
    if scheduler is not None:
        scheduler = check_scheduler_address(scheduler, in_process=True)
    if client is not None and not all(hasattr(client, a) for a in ("submit", "scatter", "scheduler_info")):
        raise ScenarioError(f"sweep: client must be a distributed.Client, got {type(client).__name__}")
    if client is not None and scheduler is not None:
        raise ScenarioError("sweep: give client or scheduler, not both")
    pts, kind = make_points(s, grid=grid, ranges=ranges, n_samples=n_samples, seed=seed, points=points,
                            max_points=max_points)
    if fixed is not None and not isinstance(fixed, Mapping):
        raise ScenarioError(f"sweep: fixed must be a mapping of input to value, got {fixed!r}")
    for k, v in (fixed or {}).items():
        _key(k, s)
        check_value(k, v, "sweep: fixed")
    if evaluate_kwargs is not None and not isinstance(evaluate_kwargs, Mapping):
        raise ScenarioError(f"sweep: evaluate_kwargs must be a mapping, got {evaluate_kwargs!r}")
    if not isinstance(evaluate, str) and not callable(evaluate):
        raise ScenarioError(f"sweep: evaluate must be 'market', 'claims' or a callable, got {evaluate!r}")
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


def _chunks(points: list[dict], n_w: int, chunk_size: int | None) -> list[list[int]]:
    """Point indices in chunks: points that share a market structure (solve settings) go into
    the same chunks, so a chunk re-solves one live Market of its worker
    (tokenflow.clearing.engine.pooled_market)."""
    n = len(points)
    size = chunk_size or max(1, min(25, math.ceil(n / (2 * n_w))))
    order = sorted(range(n), key=lambda i: tuple(sorted((k, repr(v)) for k, v in points[i].items()
                                                        if k in SOLVE_KEYS and k != "demand_scale")))
    return [order[i:i + size] for i in range(0, n, size)]


def _dispatch(evaluate, s, points, extra, client, scheduler, n_workers, chunk_size, progress) -> list[dict]:
    n = len(points)
    if (n_workers == 0 or _IN_WORKER) and client is None and scheduler is None:
        # (a sweep inside a pool worker runs in that worker: a pool kept there would outlive it)
        return _run_points(evaluate, s, points, extra)
    if client is None and scheduler is None:
        return _dispatch_pool(evaluate, s, points, extra, n_workers or usable_cores(), chunk_size, progress)
    from distributed import Client, as_completed

    own_client = None
    if scheduler:
        probe_scheduler(scheduler)
        try:
            client = own_client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
            from ..core.errors import ClusterError

            raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: "
                               f"{type(exc).__name__}: {exc}") from None
        try:  # a scheduler without workers would leave every point waiting forever
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            from ..core.errors import ClusterError

            client.close()
            raise ClusterError(f"the Dask scheduler at {scheduler} has no worker (none joined within "
                               f"{CONNECT_TIMEOUT_S:g} s)") from exc
    try:
        n_w = max(1, len(client.scheduler_info().get("workers", {})) or 1)
        chunks = _chunks(points, n_w, chunk_size)
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


# ----------------------------------------------------------------------------- local worker pool

#: modules the pool's fork server imports once; each worker is forked from it with them loaded
POOL_PRELOAD = ["tokenflow", "tokenflow.studies.sweep", "tokenflow.studies.claims", "tokenflow.clearing.engine"]
#: pools a chunk may break (running when a worker died) before its points run one at a time,
#: each on up to POOL_RETRIES + 1 pools of its own (then it is marked failed)
POOL_RETRIES = 2
_POOLS: dict[int, Any] = {}  # workers -> ProcessPoolExecutor of this process
_JOB: dict[str, tuple] = {}  # in a worker: sweep id -> (evaluate, scenario, extra), the latest only


#: local worker processes allowed per usable core (:func:`max_workers`).  The solves are
#: CPU-bound: beyond one worker per core a sweep gets no faster, each extra worker only costs
#: memory (a process with the stack and its own solver); a few per core are allowed (e.g. to
#: exercise a pool on a small machine), not the thousands a typo asks for
WORKERS_PER_CORE = 4


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells, else the count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def max_workers() -> int:
    """The most local worker processes a sweep may start: :data:`WORKERS_PER_CORE` per usable core."""
    return WORKERS_PER_CORE * usable_cores()


def check_workers(n_workers: Any, what: str = "n_workers") -> int:
    """``n_workers`` as an int in 0 .. :func:`max_workers`; else :class:`ScenarioError` naming the cap."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, numbers.Integral) or n_workers < 0:
        raise ScenarioError(f"sweep: {what} must be a whole number >= 0, got {n_workers!r}")
    cap, cores = max_workers(), usable_cores()
    if n_workers > cap:
        raise ScenarioError(
            f"sweep: {what} = {n_workers} is more than this machine allows: at most {cap} local worker processes "
            f"({WORKERS_PER_CORE} per core, {cores} core(s) usable; the solves are CPU-bound, so workers beyond "
            f"one per core only cost memory). Use {cores} (one per core), or a Dask cluster (scheduler) for more")
    return int(n_workers)


def local_pool(n_workers: int) -> Any:
    """A pool of ``n_workers`` local worker processes for sweeps (a
    ``concurrent.futures.ProcessPoolExecutor``), started on first use and kept for the next
    sweeps of this process; :func:`close_local_pools` stops it, as does the end of the
    process.  Workers are forked from multiprocessing's fork server, which imports tokenflow
    once (about a second), so a worker starts in milliseconds with the stack loaded and no
    thread of this process copied into it (and with the working folder, ``sys.path`` and
    environment this process had when the server started).  A pool that lost a worker is
    replaced.  :class:`~tokenflow.core.errors.ClusterError` when the workers do not start within
    :data:`POOL_START_TIMEOUT_S`; :class:`ScenarioError` for more than :func:`max_workers`."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    n_workers = check_workers(n_workers)
    if n_workers < 1:
        raise ScenarioError("sweep: a local pool needs n_workers >= 1 (0 runs a sweep in this process)")
    with _POOL_LOCK:
        pool = _POOLS.get(n_workers)
        if pool is not None and not getattr(pool, "_broken", False) and not getattr(pool, "_shutdown_thread", False):
            return pool
        if pool is not None:
            _close_pool(n_workers, pool, kill=True)
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(POOL_PRELOAD)  # applies when the fork server starts (once per process)
        _start_fork_server()
        pool = _POOLS[n_workers] = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx,
                                                       initializer=_worker_start)
        try:
            _wait_started(pool, n_workers)
        except BaseException as exc:
            _close_pool(n_workers, pool, kill=True)
            if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM through the CLI
                raise
            from ..core.errors import ClusterError

            raise ClusterError(f"the sweep's {n_workers} worker processes did not start: "
                               f"{type(exc).__name__}: {exc}") from None
    return pool


_POOL_LOCK = threading.RLock()
#: seconds a new pool's workers have to start (the first one of a process also waits for the
#: fork server to import tokenflow)
POOL_START_TIMEOUT_S = 120.0


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C (SIGINT) and SIGTERM arriving inside the block are delivered when it ends; the
    same signal a second time is delivered at once (in the main thread, and only where Python
    installed the handlers in place; elsewhere the block runs as it is)."""
    import signal

    sigs = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or any(signal.getsignal(s) is None for s in sigs):
        yield
        return
    got: list[int] = []
    old = {sig: signal.getsignal(sig) for sig in sigs}

    def record(sig, frame):
        if sig in got:  # insisted on: now
            for s_, h in old.items():
                signal.signal(s_, h)
            signal.raise_signal(sig)
        got.append(sig)

    for sig in sigs:
        signal.signal(sig, record)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        for sig in dict.fromkeys(got):
            signal.raise_signal(sig)  # now, to the handler that was in place (or the default action)


def _ready(delay: float) -> int:
    time.sleep(delay)
    return os.getpid()


def _wait_started(pool: Any, n_workers: int) -> None:
    """Return once every worker of a new pool has started (each has run a task); TimeoutError
    after :data:`POOL_START_TIMEOUT_S`.  Ctrl-C and SIGTERM wait while a worker is being
    forked (one stopped half-way would be left without its queues and die with a traceback),
    not while the workers start."""
    from concurrent.futures import wait

    seen: set[int] = set()
    deadline = time.monotonic() + POOL_START_TIMEOUT_S
    for _ in range(100):  # bounded; each round gives every started worker a short task
        with _signals_deferred(), _main_not_rerun():  # (workers are forked in these submissions)
            futs = [pool.submit(_ready, 0.02) for _ in range(n_workers)]
        done, pending = wait(futs, timeout=max(0.0, deadline - time.monotonic()))
        if pending:
            raise TimeoutError(f"not all started within {POOL_START_TIMEOUT_S:g} s")
        seen |= {f.result() for f in futs}
        if len(seen) >= n_workers:
            break


def _start_fork_server() -> None:
    """Start multiprocessing's fork server (once per process) with Ctrl-C ignored, which it
    and the workers forked from it inherit: a Ctrl-C sent to the process group while it imports
    tokenflow would otherwise stop it with a traceback (the sweep's own process stops its pool)."""
    import signal
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        forkserver.ensure_running()
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, old)


_IN_WORKER = False  # True in a pool worker: a sweep there runs in the worker's own process


def _worker_start() -> None:
    """A pool worker ignores Ctrl-C (SIGINT to the process group, as a terminal or a notebook
    kernel's interrupt and shutdown send it): the sweep's own process stops its pool."""
    import signal

    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def close_local_pools(n_workers: int | None = None, *, kill: bool = False) -> None:
    """Stop the local pool of ``n_workers`` workers kept by :func:`local_pool` (all of them
    when ``None``): chunks not started are cancelled; ``kill`` also stops the running ones
    (an interrupted sweep does not wait for them)."""
    with _POOL_LOCK:
        for n in ([n_workers] if n_workers is not None else list(_POOLS)):
            pool = _POOLS.get(n)
            if pool is not None:
                _close_pool(n, pool, kill=kill)


atexit.register(close_local_pools)  # (no pool: nothing to do)


def _close_pool(n_workers: int, pool: Any, *, kill: bool = False) -> None:
    """Stop ``pool``, and forget it if it is still the one kept for ``n_workers`` (another
    thread's sweep may have replaced it already)."""
    with _POOL_LOCK:
        if _POOLS.get(n_workers) is pool:
            del _POOLS[n_workers]
    if kill:
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _main_not_rerun():
    """While pool workers start: without this, each worker would re-run this process's main
    script (multiprocessing's rule for spawned processes, which needs an ``if __name__ ==
    "__main__"`` guard); the sweep's functions travel pickled by value, so no worker needs it."""
    import sys
    import types

    main = sys.modules.get("__main__")
    if main is None or (getattr(main, "__spec__", None) is None and getattr(main, "__file__", None) is None):
        yield  # a notebook or an interactive session: nothing to re-run
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _pool_chunk(job_id: str, payload: bytes, points: list[dict]) -> list[dict]:
    """Evaluate a chunk on a pool worker; the sweep's inputs are unpickled once per worker."""
    job = _JOB.get(job_id)
    if job is None:
        import pickle

        _JOB.clear()
        job = _JOB[job_id] = pickle.loads(payload)
    evaluate, s, extra = job
    return _pack(_run_points(evaluate, s, points, extra))


def _dispatch_pool(evaluate, s, points, extra, n_workers: int, chunk_size, progress) -> list[dict]:
    """Run the chunks on :func:`local_pool`.  A worker that dies breaks its pool: the chunks
    not finished go to a fresh pool.  The chunks that were running then (the oldest unfinished
    ones: a pool runs its chunks in order) are suspects; a suspect that has broken
    :data:`POOL_RETRIES` + 1 pools is run again one point at a time, so that a point that kills
    its worker fails alone ("worker failed: ...") and takes no other point with it.  An
    interrupt stops the pool, running chunks included, and propagates."""
    import uuid
    from concurrent.futures import FIRST_COMPLETED, CancelledError, wait
    from concurrent.futures.process import BrokenProcessPool

    import cloudpickle

    payload = cloudpickle.dumps((evaluate, s, extra))
    job_id = uuid.uuid4().hex
    results: list[dict | None] = [None] * len(points)
    todo = [(idx, 0) for idx in _chunks(points, n_workers, chunk_size)]  # (point indices, pools it broke)
    alone: list[int] = []  # points of chunks that broke too many pools: one at a time
    bar = _progress(len(points), progress)
    pool = None
    lost_work = (BrokenProcessPool, CancelledError, RuntimeError)  # (RuntimeError: a pool shut down meanwhile)

    def record(idx, res) -> None:
        for i, r in zip(idx, res):
            results[i] = r
        bar.update(len(idx))

    def failed(exc: BaseException) -> list[dict]:
        return [{"status": "error", "message": f"worker failed: {type(exc).__name__}: {exc}"}]

    try:
        while todo:
            pool = local_pool(n_workers)
            futures: dict = {}
            try:
                for idx, tries in todo:
                    futures[pool.submit(_pool_chunk, job_id, payload, [points[i] for i in idx])] = (idx, tries)
            except lost_work:
                pass
            lost = todo[len(futures):]
            pending = set(futures)
            order = list(futures)  # submission order: the pool runs the oldest first
            while pending:
                done, pending = wait(pending, timeout=5.0, return_when=FIRST_COMPLETED)
                if not done and getattr(pool, "_broken", False):  # (a future a broken pool never ends)
                    done, pending = pending, set()
                for fut in done:
                    idx, tries = futures[fut]
                    try:
                        chunk_res = fut.result(timeout=0)
                    except lost_work + (TimeoutError,):
                        lost.append((idx, tries))
                        continue
                    except Exception as exc:  # noqa: BLE001 - e.g. inputs that do not unpickle on a worker
                        chunk_res = failed(exc) * len(idx)
                    record(idx, chunk_res)
            if not lost:
                break
            _close_pool(n_workers, pool, kill=True)  # a broken pool takes no more work
            lost_set = {tuple(idx) for idx, _ in lost}
            running = [futures[f][0] for f in order if tuple(futures[f][0]) in lost_set][:n_workers + 1]
            suspects = {tuple(idx) for idx in running} or lost_set
            todo = []
            for idx, tries in lost:
                tries += tuple(idx) in suspects
                if tries > POOL_RETRIES:
                    alone.extend(idx)
                else:
                    todo.append((idx, tries))
        for i in alone:  # one point at a time: a point that kills its worker fails alone
            for _ in range(POOL_RETRIES + 1):
                pool = local_pool(n_workers)
                try:
                    record([i], pool.submit(_pool_chunk, job_id, payload, [points[i]]).result())
                    break
                except lost_work as exc:
                    _close_pool(n_workers, pool, kill=True)
                    last = exc
                except Exception as exc:  # noqa: BLE001 - as above
                    record([i], failed(exc))
                    break
            else:
                record([i], [{"status": "error", "message": "worker failed: its worker process died "
                              f"(alone, {POOL_RETRIES + 1} times): {type(last).__name__}: {last}"}])
    except BaseException:
        if pool is not None:
            _close_pool(n_workers, pool, kill=True)  # interrupted: nothing keeps running behind the caller's back
        raise
    finally:
        bar.close()
    return results  # type: ignore[return-value]


def _run_chunk(evaluate, s, points, extra):
    return _pack(_run_points(evaluate, s, points, extra))


class _Block:
    """Float DataArrays with the same labels, of the points of one chunk: one array of numbers
    (``values``, point first) and one set of labels (``proto``) for the trip back from a
    worker, where pickling a DataArray per point cost about as much as solving a small market."""

    __slots__ = ("proto", "values")

    def __init__(self, proto: xr.DataArray, values: np.ndarray) -> None:
        self.proto, self.values = proto, values


class _Row:
    """Point ``i`` of a :class:`_Block` (what :func:`_stack` reads back)."""

    __slots__ = ("block", "i")

    def __init__(self, block: _Block, i: int) -> None:
        self.block, self.i = block, i


def _pack(results: list[dict]) -> list[dict]:
    """The chunk's results with each output that is a float DataArray with the same labels at
    every point that has it put in one :class:`_Block` (the others travel as they are)."""
    keys = {k for r in results for k, v in r.items() if isinstance(v, xr.DataArray)}
    for k in keys:
        vals = [r.get(k) for r in results]
        proto = next(v for v in vals if isinstance(v, xr.DataArray))
        if not all(v is None or (isinstance(v, xr.DataArray) and v.dtype.kind == "f" and _same_labels(v, proto))
                   for v in vals):
            continue
        blank = np.full(proto.shape, np.nan)
        block = _Block(proto.copy(deep=False, data=blank),
                       np.stack([blank if v is None else np.asarray(v.values, dtype=float) for v in vals]))
        for i, r in enumerate(results):
            if k in r:
                r[k] = _Row(block, i)
    return results


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
    """One Dataset: sweep dimension(s) + the evaluator's outputs; failed points are NaN.
    ``attrs``: ``n_failed`` (status error, incl. lost workers), ``n_infeasible`` and
    ``complete`` (1 when no point failed, else 0)."""
    n = len(points)
    results = _pack([r if isinstance(r, dict) else {"status": "error", "message": "no result (worker lost)"}
                     for r in results])  # (a worker's chunks come packed already)
    keys = sorted({k for r in results for k in r})
    data: dict[str, Any] = {}
    for key in keys:
        vals = [r.get(key) for r in results]
        proto = next((v for v in vals if v is not None), None)
        if isinstance(proto, _Row):
            proto = proto.block.proto
        if isinstance(proto, xr.DataArray):
            data[key] = _stack(vals, proto)
        elif isinstance(proto, str):
            data[key] = xr.DataArray(np.array([v if isinstance(v, str) else "" for v in vals], dtype=str),
                                     dims="point")
        else:
            data[key] = xr.DataArray(np.array([np.nan if v is None else float(v) for v in vals]), dims="point")
    ds = xr.Dataset(data).assign_coords(point=np.arange(n))
    in_keys = list(dict.fromkeys(k for p in points for k in p))
    for k in in_keys:
        vals = [p.get(k, np.nan) for p in points]
        if all(isinstance(v, numbers.Real) for v in vals):
            ds.coords[k] = ("point", np.array([float(v) for v in vals]))
        else:  # text inputs (formulation, choices)
            ds.coords[k] = ("point", np.array(["" if v is np.nan else str(v) for v in vals], dtype=str))
    if kind == "grid" and grid:
        dims = list(grid)
        if len(dims) == 1:
            ds = ds.swap_dims(point=dims[0]).drop_vars("point")
        else:
            ds = ds.set_index(point=dims).unstack("point")
    elif kind == "sample":
        ds = ds.rename(point="sample")
    status = [r.get("status") for r in results]
    n_failed = sum(st not in ("ok", "infeasible") for st in status)
    ds.attrs.update({"n_failed": n_failed, "n_infeasible": status.count("infeasible"),
                     "complete": int(n_failed == 0)})
    return ds


def _same_labels(v: xr.DataArray, proto: xr.DataArray) -> bool:
    if v.dims != proto.dims or v.shape != proto.shape or v.coords.keys() != proto.coords.keys():
        return False
    vi, pi = v.xindexes, proto.xindexes
    if vi.keys() != pi.keys() or not all(vi[c] is pi[c] or getattr(vi[c], "index", 0) is getattr(pi[c], "index", 1)
                                         or vi[c].equals(pi[c]) for c in pi):
        return False
    return all(v.coords[c].dims == proto.coords[c].dims and np.array_equal(v.coords[c].values, proto.coords[c].values)
               for c in proto.coords if c not in pi)  # coordinates without an index (rare)


def _stack(vals: list, proto: xr.DataArray) -> xr.DataArray:
    """The points' arrays along a new first dimension ``point``; a point without one is NaN.
    Rows of :class:`_Block` s with the same labels (the usual case) are stacked as float64
    numbers, once; anything else is aligned by ``xarray.concat`` (outer join on the labels)."""
    given = [v for v in vals if v is not None]
    blocks = {id(v.block): v.block for v in given if isinstance(v, _Row)}
    if all(isinstance(v, _Row) for v in given) and all(_same_labels(b.proto, proto) for b in blocks.values()):
        blank = np.full(proto.shape, np.nan)
        num = np.stack([blank if v is None else v.block.values[v.i] for v in vals])
        return xr.DataArray(num, dims=("point", *proto.dims), coords=proto.coords, attrs=proto.attrs)
    filled = [v.block.proto.copy(deep=False, data=v.block.values[v.i]) if isinstance(v, _Row) else
              v if isinstance(v, xr.DataArray) else xr.full_like(proto, np.nan, dtype=float) for v in vals]
    return xr.concat(filled, dim="point", coords="minimal", compat="override", join="outer")


def write_sweep(ds: xr.Dataset, path: str | Path) -> Path:
    """Write sweep results to netCDF atomically (whole file or none; the target is
    untouched on failure).  ``attrs["complete"]`` is 0 when points failed."""
    from ..core.io import write_netcdf

    out = ds.copy()
    out.attrs = {k: (int(v) if isinstance(v, (bool, np.bool_)) else v) for k, v in ds.attrs.items()}
    return write_netcdf(out, path, what="sweep results")


SPEC_KEYS = {"scenario", "grid", "samples", "points", "fixed", "evaluate", "max_points"}


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read and check a sweep specification (YAML); see ``tokenflow sweep --help``.

    Read within the same bounds as scenario files (regular file, size, depth, aliases,
    UTF-8, text keys); every structural problem is a :class:`ScenarioError` naming the
    file, raised before anything is solved.  Input names and value types are checked
    again by :func:`make_points` against the scenario."""
    from ..scenarios.scenario import parse_yaml, read_text_file

    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise ScenarioError(f"sweep spec must be a path to a YAML file, got {path!r}")
    path = Path(path)
    text = read_text_file(path, "sweep spec")
    spec, problems = parse_yaml(text, str(path))
    if problems:
        raise ScenarioError(problems)
    if not isinstance(spec, dict) or "scenario" not in spec:
        raise ScenarioError(f"{path}: a sweep spec is a mapping with 'scenario' and one of grid, samples, points")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ScenarioError(f"{path}: unknown keys {sorted(unknown)} (allowed: {sorted(SPEC_KEYS)})")
    if not isinstance(spec["scenario"], str) or not spec["scenario"].strip():
        raise ScenarioError(f"{path}: scenario must be a name (us5, us20) or a path, got {spec['scenario']!r}")
    kinds = [k for k in ("grid", "samples", "points") if spec.get(k) is not None]
    if len(kinds) != 1:
        raise ScenarioError(f"{path}: give exactly one of grid, samples, points (got {kinds or 'none'})")
    grid, points, fixed = spec.get("grid"), spec.get("points"), spec.get("fixed")
    if grid is not None:
        if not isinstance(grid, dict) or not grid:
            raise ScenarioError(f"{path}: grid must map each input to a list of values, got {grid!r}")
        for k, v in grid.items():
            if not isinstance(v, list) or not v:
                raise ScenarioError(f"{path}: grid.{k} must be a non-empty list of values, got {v!r}")
    if points is not None and (not isinstance(points, list) or not points
                               or not all(isinstance(p, dict) for p in points)):
        raise ScenarioError(f"{path}: points must be a non-empty list of {{input: value}} mappings, got {points!r}")
    if fixed is not None and not isinstance(fixed, dict):
        raise ScenarioError(f"{path}: fixed must map inputs to values, got {fixed!r}")
    ranges, n_samples, seed = None, 0, 0
    samples = spec.get("samples")
    if samples is not None:
        if not isinstance(samples, dict):
            raise ScenarioError(f"{path}: samples must be a mapping with n, ranges and optionally seed")
        extra = set(samples) - {"n", "seed", "ranges"}
        if extra or "n" not in samples or "ranges" not in samples:
            raise ScenarioError(f"{path}: samples needs 'n' and 'ranges' (optional 'seed'), got keys {sorted(samples)}")
        for key in ("n", "seed"):
            v = samples.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if key == "n" else 0):
                raise ScenarioError(f"{path}: samples.{key} must be a whole number >= {1 if key == 'n' else 0}, "
                                    f"got {v!r}")
        n_samples, seed = samples["n"], samples.get("seed", 0)
        if not isinstance(samples["ranges"], dict) or not samples["ranges"]:
            raise ScenarioError(f"{path}: samples.ranges must map inputs to [low, high]")
        ranges = {}
        for k, v in samples["ranges"].items():
            if not isinstance(v, list) or len(v) != 2 or not all(map(_is_number, v)) or v[0] > v[1]:
                raise ScenarioError(f"{path}: samples.ranges.{k} must be [low, high], two finite numbers with "
                                    f"low <= high, got {v!r}")
            ranges[k] = (float(v[0]), float(v[1]))
    evaluate = spec.get("evaluate", "market")
    if evaluate not in ("market", "claims"):
        raise ScenarioError(f"{path}: evaluate must be 'market' or 'claims', got {evaluate!r}")
    max_points = spec.get("max_points", MAX_POINTS)
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise ScenarioError(f"{path}: max_points must be a whole number >= 1, got {max_points!r}")
    return {"scenario": spec["scenario"], "grid": grid, "ranges": ranges, "n_samples": n_samples, "seed": seed,
            "points": points, "fixed": fixed, "evaluate": evaluate, "max_points": max_points}


def summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """Counts of point statuses."""
    return ds["status"].to_series().value_counts().rename("points").to_frame()
