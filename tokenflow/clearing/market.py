"""One-shot entry points on top of the engine (:class:`tokenflow.clearing.engine.Market`).

``solve``, ``demand_scale_limit``, ``max_demand_scale`` and ``export_lp`` each build a
:class:`~tokenflow.clearing.engine.Market` and use it once; loops over many numbers should keep a
``Market`` and call its :meth:`~tokenflow.clearing.engine.Market.solve` instead.

The LP itself (rows, columns, units) is written down in :mod:`tokenflow.lp.model`; the arc
formulation in :mod:`tokenflow.lp.arc`; exact pricing of routes in :mod:`tokenflow.lp.routes`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from ..core.errors import ScenarioError, SolverError, TokenflowError
from ..core.io import atomic_write, verify_model_file
from ..lp.inputs import FORMULATIONS, GBPS_TO_GB_PER_H, check_number
from ..lp.solver import HIGHS_OPTIONS
from ..scenarios.scenario_class import Scenario
from .engine import Market
from .results import MarketResult, describe_options
from .scale_limit import ScaleLimit


def reverse_arcs(arcs) -> np.ndarray:  # noqa: F821 - numpy imported lazily
    """Position of the opposite directed arc (``b->a`` for ``a->b``) of every arc of an
    :func:`tokenflow.scenarios.network.arc_table` (the engine's order makes it ``a ^ 1``)."""
    import numpy as np

    pos = {(u, v): i for i, (u, v) in enumerate(zip(arcs["origin"], arcs["target"]))}
    return np.array([pos[(v, u)] for u, v in zip(arcs["origin"], arcs["target"])], dtype=np.int64)


__all__ = ["FORMULATIONS", "GBPS_TO_GB_PER_H", "HIGHS_OPTIONS", "Market", "ScaleLimit", "demand_scale_limit",
           "describe_options", "export_lp", "max_demand_scale", "reverse_arcs", "solve"]


def solve(s: Scenario, *, transfer_aware: bool = True, demand_scale: float = 1.0,
          latency_limits_ms: Mapping[str, float] | None = None, formulation: str = "path",
          value_of_lost_load: float | Mapping[str, float] | None = None) -> MarketResult:
    """Clear the market once.  Returns a :class:`~tokenflow.clearing.results.MarketResult`.

    ``formulation``: ``"path"`` (routes with exact column generation; default) or ``"arc"``
    (node balance).  ``value_of_lost_load`` ($/M tokens; one number for every workload or
    a mapping per workload) lets the market clear above s* with unserved demand priced at
    that value.

    Raises :class:`InfeasibleMarketError` (with s* and what binds) when demand exceeds what
    the network can serve, :class:`ScenarioError` for bad inputs (naming the argument),
    :class:`SolverError` when the solver fails or its answer does not pass the checks.
    """
    m = Market(s, transfer_aware=transfer_aware, formulation=formulation, latency_limits_ms=latency_limits_ms,
               value_of_lost_load=value_of_lost_load)
    return m.solve(demand_scale=demand_scale)


def demand_scale_limit(s: Scenario, *, transfer_aware: bool = True,
                       latency_limits_ms: Mapping[str, float] | None = None,
                       formulation: str = "path") -> ScaleLimit:
    """Solve the max-scale LP: the largest s such that s * D can be served, and what binds."""
    return Market(s, transfer_aware=transfer_aware, formulation=formulation,
                  latency_limits_ms=latency_limits_ms).scale_limit()


def max_demand_scale(s: Scenario, *, transfer_aware: bool = True,
                     latency_limits_ms: Mapping[str, float] | None = None, formulation: str = "path") -> float:
    """The largest demand scale s* at which the market clears (an LP, exact)."""
    return demand_scale_limit(s, transfer_aware=transfer_aware, latency_limits_ms=latency_limits_ms,
                              formulation=formulation).max_scale


def export_lp(s: Scenario, path: str | Path, *, transfer_aware: bool = True, demand_scale: float = 1.0,
              latency_limits_ms: Mapping[str, float] | None = None, formulation: str = "path",
              value_of_lost_load: float | Mapping[str, float] | None = None, force: bool = False) -> Path:
    """Write the market LP (with the columns column generation ends with) as an MPS file, or an
    LP file when ``path`` ends in ``.lp``; any LP solver reading it finds the market's optimum.

    The model is solved first: an infeasible or non-optimal model is refused
    (:class:`InfeasibleMarketError` / :class:`SolverError`) unless ``force=True``.  The file
    appears whole or not at all (written to a temporary file, then renamed)."""
    from ..lp.inputs import check_bool

    if not isinstance(path, (str, os.PathLike)):
        raise ScenarioError(f"path: expected a file name, got {path!r:.60}")
    path = Path(path)
    if path.suffix.lower() not in {".mps", ".lp"}:
        raise ScenarioError(f"path: {path} must end in .mps or .lp")
    force = check_bool(force, "force")
    scale = check_number(demand_scale, "demand_scale", "(multiplier)")
    m = Market(s, transfer_aware=transfer_aware, formulation=formulation, latency_limits_ms=latency_limits_ms,
               value_of_lost_load=value_of_lost_load)
    try:
        m.solve(demand_scale=scale)
    except (SolverError, TokenflowError) as exc:
        if not force or isinstance(exc, ScenarioError):
            raise
    model = m.linopy_model(scale)

    def write(tmp: Path) -> None:
        log = logging.getLogger("linopy")
        level = log.level
        log.setLevel(logging.WARNING)
        try:
            import linopy

            from ..lp.solver import quiet_stdout

            with linopy.options as opts, quiet_stdout():
                opts["semantics"] = "v1"
                model.to_file(tmp, io_api="lp" if path.suffix.lower() == ".lp" else "mps", progress=False)
        finally:
            log.setLevel(level)

    return atomic_write(path, write, what="LP file", verify=verify_model_file)
