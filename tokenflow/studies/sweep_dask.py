"""Sweeps on a Dask cluster: the check of a scheduler's address (:func:`check_scheduler_address`),
the probe that a Dask scheduler answers there before any work is sent (:func:`probe_scheduler`)
and the function a Dask worker runs on a chunk of points (:func:`_run_chunk`).  The sweep sends
its chunks to the cluster in :func:`tokenflow.studies.sweep._dispatch`."""

from __future__ import annotations

import time
from typing import Any

from ..core.errors import ScenarioError
from .sweep_evaluate import _run_points
from .sweep_results import _pack

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


def _run_chunk(evaluate, s, points, extra):
    return _pack(_run_points(evaluate, s, points, extra))
