"""Sweeps: many market solves over a grid, random samples or a list of input points,
run in parallel (on a pool of local worker processes by default, or on an existing Dask
cluster), returned as one labelled xarray Dataset.  A point that is infeasible or fails is recorded with
its status and message; it never aborts the sweep.

This module holds the entry point :func:`sweep` and the choice of where the points run (this
process, the local pool or a Dask cluster, :func:`_dispatch`).  The rest is in ``sweep_points``
(the input keys a sweep may vary, listed there; points), ``sweep_evaluate`` (the evaluators),
``sweep_pool`` (the local worker pool), ``sweep_dask`` (Dask scheduler checks), ``sweep_results``
(result assembly and output) and ``sweep_spec`` (the spec file)."""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from ..core.errors import ScenarioError
from ..scenarios.scenario import load_scenario
from ..scenarios.scenario_class import Scenario
from . import sweep_dask, sweep_pool
from .sweep_dask import _run_chunk, check_scheduler_address, probe_scheduler
from .sweep_evaluate import _run_points, evaluate_claims, evaluate_market

# (apply_inputs, check_key, close_local_pools, local_pool, max_workers, summary_table, write_sweep
# and load_spec are re-exported: this module defined them before it was split)
from .sweep_points import MAX_POINTS, _chunks, _key, apply_inputs, check_key, check_value, make_points  # noqa: F401
from .sweep_pool import _dispatch_pool, check_workers, close_local_pools, local_pool, max_workers, usable_cores  # noqa: F401
from .sweep_results import _assemble, _progress, summary_table, write_sweep  # noqa: F401
from .sweep_spec import load_spec  # noqa: F401


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
    one per usable core; more than :func:`~tokenflow.studies.sweep_pool.max_workers`, 4 per core,
    is a :class:`ScenarioError`; started by the first such sweep of the process and kept for the
    next ones, see :func:`~tokenflow.studies.sweep_pool.local_pool`).  ``n_workers=0`` runs in this
    process.  ``scheduler`` must be ``tcp://`` or ``tls://`` (else :class:`ScenarioError`); when
    nothing there answers as a Dask scheduler within
    :data:`~tokenflow.studies.sweep_dask.CONNECT_TIMEOUT_S` (10 s) the sweep stops with
    :class:`~tokenflow.core.errors.ClusterError`.
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


def _dispatch(evaluate, s, points, extra, client, scheduler, n_workers, chunk_size, progress) -> list[dict]:
    n = len(points)
    if (n_workers == 0 or sweep_pool._IN_WORKER) and client is None and scheduler is None:
        # (a sweep inside a pool worker runs in that worker: a pool kept there would outlive it)
        return _run_points(evaluate, s, points, extra)
    if client is None and scheduler is None:
        return _dispatch_pool(evaluate, s, points, extra, n_workers or usable_cores(), chunk_size, progress)
    from distributed import Client, as_completed

    own_client = None
    if scheduler:
        probe_scheduler(scheduler)
        try:
            client = own_client = Client(scheduler, timeout=sweep_dask.CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
            from ..core.errors import ClusterError

            raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: "
                               f"{type(exc).__name__}: {exc}") from None
        try:  # a scheduler without workers would leave every point waiting forever
            client.wait_for_workers(1, timeout=sweep_dask.CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            from ..core.errors import ClusterError

            client.close()
            raise ClusterError(f"the Dask scheduler at {scheduler} has no worker (none joined within "
                               f"{sweep_dask.CONNECT_TIMEOUT_S:g} s)") from exc
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
