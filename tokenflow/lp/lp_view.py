"""The engine's LP as a linopy model: names for export (MPS/LP) and inspection.

Built from the same arrays HiGHS receives (:class:`tokenflow.lp.model.LPArrays`, unscaled),
so the exported file is the LP the engine solves.
"""

from __future__ import annotations

import linopy
import numpy as np
import pandas as pd
import xarray as xr
from scipy.sparse import csc_array

from .inputs import Inputs
from .model import LPArrays


def _rows(m: linopy.Model, labels: np.ndarray, A, rows: np.ndarray, coords: dict) -> linopy.LinearExpression:
    """Rows ``rows`` of sparse ``A`` (over variables ``labels``) as a padded linopy expression."""
    sub = A[rows].tocsr()
    sub.sort_indices()
    counts = np.diff(sub.indptr)
    nterm = max(int(counts.max(initial=0)), 1)
    start = sub.indptr[:-1]
    r = np.repeat(np.arange(len(rows)), counts)
    term = np.arange(len(r)) - np.repeat(start, counts)
    vars_ = np.full((len(rows), nterm), -1, dtype=np.int64)
    coeffs = np.full((len(rows), nterm), np.nan)
    vars_[r, term] = labels[sub.indices]
    coeffs[r, term] = sub.data
    shape = tuple(len(c) for c in coords.values())
    dims = list(coords)
    ds = xr.Dataset({"vars": (dims + ["_term"], vars_.reshape(*shape, nterm)),
                     "coeffs": (dims + ["_term"], coeffs.reshape(*shape, nterm))}, coords=coords)
    return linopy.LinearExpression(ds, m)


def to_linopy(inp: Inputs, arr: LPArrays, formulation: str, arc=None) -> linopy.Model:
    N, K, L = inp.N, inp.K, inp.L
    node = pd.Index(inp.node_ids, name="node")
    wl = pd.Index(inp.workload_ids, name="workload")
    link = pd.Index(inp.link_ids, name="link")
    A = csc_array((arr.data, arr.indices, arr.indptr), shape=(arr.n_rows, arr.n_cols)).tocsr()
    with linopy.options as opts:
        opts["semantics"] = "v1"
        m = linopy.Model(force_dim_names=True)
        blocks = [("unserved", {"node": node, "workload": wl}, N * K)]
        if formulation == "path":
            blocks.append(("flow", {"col": pd.RangeIndex(arr.n_cols - N * K, name="col")}, arr.n_cols - N * K))
        else:
            blocks += [("arcflow", {"arcflow": pd.RangeIndex(arc.n_flow, name="arcflow")}, arc.n_flow),
                       ("proc", {"proc": pd.RangeIndex(arc.n_proc, name="proc")}, arc.n_proc)]
        labels, obj, pos = [], None, 0
        for name, coords, n in blocks:
            shape = tuple(len(c) for c in coords.values())
            sl = slice(pos, pos + n)
            lower = xr.DataArray(arr.col_lb[sl].reshape(shape), coords=coords)
            upper = xr.DataArray(arr.col_ub[sl].reshape(shape), coords=coords)
            v = m.add_variables(lower=lower, upper=upper, name=name)
            labels.append(v.labels.values.reshape(-1))
            term = (v * xr.DataArray(arr.cost[sl].reshape(shape), coords=coords)).sum()
            obj = term if obj is None else obj + term
            pos += n
        labels = np.concatenate(labels)
        n_first = arr.n_rows - N - L
        if formulation == "path":
            first = ("demand", {"node": node, "workload": wl})
        else:
            first = ("balance", {"balance": pd.RangeIndex(n_first, name="balance")})
        for (name, coords), rows in ((first, np.arange(n_first)), (("compute", {"node": node}),
                                                                     n_first + np.arange(N)),
                                     (("bandwidth", {"link": link}), n_first + N + np.arange(L))):
            if not len(rows):
                continue
            shape = tuple(len(c) for c in coords.values())
            expr = _rows(m, labels, A, rows, coords)
            if name in ("demand", "balance"):
                m.add_constraints(expr == xr.DataArray(arr.row_lb[rows].reshape(shape), coords=coords), name=name)
            else:
                m.add_constraints(expr <= xr.DataArray(arr.row_ub[rows].reshape(shape), coords=coords), name=name)
        m.add_objective(obj)
    return m
