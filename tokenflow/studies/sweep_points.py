"""A sweep's input points: which inputs a sweep may vary (the keys below, :func:`check_key`), how
one point's inputs are applied to a scenario (:func:`apply_inputs`), the type checks of input
values (:func:`check_value`), the expansion of a grid, random samples or a list into points
(:func:`make_points`) and their grouping into chunks for the workers (:func:`_chunks`).

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

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import ScenarioError
from ..scenarios.choices import CHOICES, check_choices
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


def _chunks(points: list[dict], n_w: int, chunk_size: int | None) -> list[list[int]]:
    """Point indices in chunks: points that share a market structure (solve settings) go into
    the same chunks, so a chunk re-solves one live Market of its worker
    (tokenflow.clearing.engine.pooled_market)."""
    n = len(points)
    size = chunk_size or max(1, min(25, math.ceil(n / (2 * n_w))))
    order = sorted(range(n), key=lambda i: tuple(sorted((k, repr(v)) for k, v in points[i].items()
                                                        if k in SOLVE_KEYS and k != "demand_scale")))
    return [order[i:i + size] for i in range(0, n, size)]
