"""Sweeps on a pool of local worker processes: how many workers a sweep may start
(:func:`usable_cores`, :func:`max_workers`, :func:`check_workers`), the pool kept for the next
sweeps of the process (:func:`local_pool`, :func:`close_local_pools`), its workers forked from
multiprocessing's fork server with tokenflow loaded, and the dispatch of chunks to it that
survives a worker's death (:func:`_dispatch_pool`)."""

from __future__ import annotations

import atexit
import contextlib
import numbers
import os
import threading
import time
from typing import Any

from ..core.errors import ScenarioError
from .sweep_evaluate import _run_points
from .sweep_points import _chunks
from .sweep_results import _pack, _progress

#: modules the pool's fork server imports once; each worker is forked from it with them loaded
POOL_PRELOAD = ["tokenflow", "tokenflow.studies.sweep_pool", "tokenflow.studies.sweep_evaluate",
                "tokenflow.studies.claims", "tokenflow.clearing.engine"]
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
