"""The sweep specification file (YAML) that ``tokenflow sweep SPEC.yaml`` reads: :func:`load_spec`
checks its structure, within the bounds of scenario files, before anything is solved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import ScenarioError
from .sweep_points import MAX_POINTS, _is_number

SPEC_KEYS = {"scenario", "grid", "samples", "points", "fixed", "evaluate", "max_points"}


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read and check a sweep specification (YAML); see ``tokenflow sweep --help``.

    Read within the same bounds as scenario files (regular file, size, depth, aliases,
    UTF-8, text keys); every structural problem is a :class:`ScenarioError` naming the
    file, raised before anything is solved.  Input names and value types are checked
    again by :func:`~tokenflow.studies.sweep_points.make_points` against the scenario."""
    from ..scenarios.datafiles import parse_yaml, read_text_file

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
