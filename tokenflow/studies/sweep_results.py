"""A sweep's results on their way back: a chunk's results packed for the trip from a worker
(:func:`_pack`), the progress bar, one labelled Dataset of all points (:func:`_assemble`),
written whole or not at all (:func:`write_sweep`), and the count of point statuses (:func:`summary_table`)."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr


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


def summary_table(ds: xr.Dataset) -> pd.DataFrame:
    """Counts of point statuses."""
    return ds["status"].to_series().value_counts().rename("points").to_frame()
