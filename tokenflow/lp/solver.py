"""The live HiGHS instance behind a market, kept between solves.

:class:`LiveLP` receives the whole LP as arrays (:class:`tokenflow.lp.model.LPArrays`) each
time and changes only what differs in place: costs (``changeColsCost``), bounds and
right-hand sides (``changeColsBounds``/``changeRowsBounds``), new columns
(``addCols``).  HiGHS keeps its basis through these calls, so the next ``run`` starts
from the previous optimum (primal simplex after cost changes or new columns, dual
simplex after right-hand-side changes).  A change of matrix values (e.g. a payload)
passes the model again and restores the previous basis.

:func:`verify` checks every solution before it leaves the package: primal feasibility
relative to each row's scale and the dual sign conditions (HiGHS convention: for a
minimisation a ``<=`` row has dual <= 0 and every column at its lower bound has reduced
cost >= 0).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..core.errors import SolverError
from .model import LPArrays

HIGHS_OPTIONS = {"output_flag": False, "log_to_console": False, "random_seed": 0, "threads": 1,
                "dual_feasibility_tolerance": 1e-9, "primal_feasibility_tolerance": 1e-9}
PRIMAL_TOL = 1e-6  # relative to the row's scale
DUAL_TOL = 1e-6  # relative to the column's cost scale

_BANNER_SHOWN = False


class quiet_stdout:
    """Silence C-level stdout (HiGHS prints from C++, e.g. "Writing the model to ...")."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        self.null = open(os.devnull, "w")  # noqa: SIM115 - closed in __exit__
        os.dup2(self.null.fileno(), 1)
        return self

    def __exit__(self, *exc) -> None:
        sys.stdout.flush()
        os.dup2(self.saved, 1)
        os.close(self.saved)
        self.null.close()


def new_highs():
    """A silent ``highspy.Highs`` (the copyright banner of the first instance goes to /dev/null)."""
    global _BANNER_SHOWN
    import highspy

    if not _BANNER_SHOWN:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _BANNER_SHOWN = True
    else:
        h = highspy.Highs()
    for k, v in HIGHS_OPTIONS.items():
        h.setOptionValue(k, v)
    return h


class LiveLP:
    """One persistent HiGHS model fed with :class:`LPArrays`."""

    def __init__(self) -> None:
        self.h = None
        self.arr: LPArrays | None = None
        self.rebuilds = 0
        self.run_seconds = 0.0  # of the last run (s)
        self.total_run_seconds = 0.0  # of every run of this model (s)
        self._checkpoints: list[dict] = []

    # ------------------------------------------------------------------ transactions
    def checkpoint(self) -> dict:
        """Mark the current state (model and basis); :meth:`restore` brings it back.  The
        basis is read only when the model is first touched after the mark."""
        ck = {"arr": self.arr, "touched": False, "basis": None}
        self._checkpoints.append(ck)
        return ck

    def release(self, ck: dict) -> None:
        """Forget checkpoint ``ck`` (the change it guarded is kept)."""
        self._checkpoints = [c for c in self._checkpoints if c is not ck]

    def restore(self, ck: dict) -> None:
        """Bring back the model and basis of checkpoint ``ck`` (and forget it)."""
        self.release(ck)
        if not ck["touched"]:
            return
        if ck["arr"] is None:
            self.h, self.arr = None, None
            return
        self.sync(ck["arr"])
        if ck["basis"] is not None:
            self.h.setBasis(ck["basis"])
        else:
            self.h.clearSolver()

    def _touch(self) -> None:
        """Called before the model or its basis changes: open checkpoints save the basis."""
        todo = [c for c in self._checkpoints if not c["touched"]]
        if not todo:
            return
        basis = None
        if self.h is not None and self.arr is not None:
            b = self.h.getBasis()
            # (the basis HiGHS holds is sized to its model; reading b.col_status would turn
            # every status into a Python object, the dearest step of a warm re-solve)
            basis = b if b.valid and self.h.getNumCol() == self.arr.n_cols else None
        for c in todo:
            c["touched"], c["basis"] = True, basis

    # ------------------------------------------------------------------ syncing
    def _scaled(self, arr: LPArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rs = arr.row_scale
        return arr.data * rs[arr.indices], arr.row_lb * rs, arr.row_ub * rs

    def _pass(self, arr: LPArrays) -> None:
        import highspy

        self._touch()
        basis = None
        if self.h is not None and self.arr is not None and self.arr.n_rows == arr.n_rows:
            b = self.h.getBasis()
            if b.valid and len(b.col_status) <= arr.n_cols:
                basis = b
        if self.h is None:
            self.h = new_highs()
        data, rlb, rub = self._scaled(arr)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = arr.n_cols, arr.n_rows
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = arr.cost, arr.col_lb, arr.col_ub
        lp.row_lower_, lp.row_upper_ = rlb, rub
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = arr.n_cols, arr.n_rows
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = arr.indptr, arr.indices, data
        self.h.passModel(lp)
        if basis is not None:
            n_new = arr.n_cols - len(basis.col_status)
            if n_new:
                basis.col_status = list(basis.col_status) + [highspy.HighsBasisStatus.kLower] * n_new
            self.h.setBasis(basis)
        self.rebuilds += 1
        self.arr = arr

    def sync(self, arr: LPArrays) -> None:
        """Make the live model equal to ``arr`` with as few changes as possible."""
        old = self.arr
        if old is None or old.n_rows != arr.n_rows or arr.n_cols < old.n_cols:
            self._pass(arr)
            return
        nc, nnz = old.n_cols, int(old.indptr[-1])

        def same(a: np.ndarray, b: np.ndarray, n: int | None = None) -> bool:
            # the same array object is equal to itself (copies made by dataclasses.replace
            # share the arrays they do not change): no element-wise comparison needed
            return a is b or np.array_equal(a, b if n is None else b[:n])

        same_pattern = same(old.indptr, arr.indptr, nc + 1) and same(old.indices, arr.indices, nnz)
        if not same_pattern or not same(old.row_scale, arr.row_scale) or not same(old.data, arr.data, nnz):
            self._pass(arr)
            return
        self._touch()
        h = self.h
        if arr.n_cols > nc:
            data, _, _ = self._scaled(arr)
            start = (arr.indptr[nc:-1] - nnz).astype(np.int32)
            h.addCols(arr.n_cols - nc, arr.cost[nc:], arr.col_lb[nc:], arr.col_ub[nc:], len(data) - nnz,
                      start, arr.indices[nnz:], data[nnz:])
        if old.cost is not arr.cost:
            idx = np.nonzero(old.cost != arr.cost[:nc])[0].astype(np.int32)
            if len(idx):
                h.changeColsCost(len(idx), idx, arr.cost[idx])
        if old.col_lb is not arr.col_lb or old.col_ub is not arr.col_ub:
            idx = np.nonzero((old.col_lb != arr.col_lb[:nc]) | (old.col_ub != arr.col_ub[:nc]))[0].astype(np.int32)
            if len(idx):
                h.changeColsBounds(len(idx), idx, arr.col_lb[idx], arr.col_ub[idx])
        idx = np.nonzero((old.row_lb != arr.row_lb) | (old.row_ub != arr.row_ub))[0].astype(np.int32)
        if len(idx):
            rs = arr.row_scale[idx]
            h.changeRowsBounds(len(idx), idx, arr.row_lb[idx] * rs, arr.row_ub[idx] * rs)
        self.arr = arr

    # ------------------------------------------------------------------ solving
    def run(self) -> str:
        """Solve; return ``"optimal"``, ``"infeasible"`` or HiGHS's status text."""
        import time

        import highspy

        self._touch()
        t0 = time.perf_counter()
        try:
            self.h.run()
        except Exception as exc:  # noqa: BLE001 - report any solver crash as a SolverError
            raise SolverError(f"HiGHS failed: {exc}") from exc
        status = self.h.getModelStatus()
        if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible):
            # a warm start that went wrong: retry once from scratch (HiGHS#1785 advice)
            self.h.clearSolver()
            self.h.run()
            status = self.h.getModelStatus()
        self.run_seconds = time.perf_counter() - t0
        self.total_run_seconds += self.run_seconds
        if status == highspy.HighsModelStatus.kOptimal:
            return "optimal"
        if status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return "infeasible"
        return self.h.modelStatusToString(status)

    def solution(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(column values, row duals in the *unscaled* rows' terms, objective) - one read."""
        sol = self.h.getSolution()
        x = np.asarray(sol.col_value)
        y = np.asarray(sol.row_dual) * self.arr.row_scale
        return x, y, float(self.h.getObjectiveValue())

    def cold_seconds(self) -> float:
        """HiGHS alone on this LP from scratch (a fresh instance), for benchmarks."""
        import time

        other = LiveLP()
        other._pass(self.arr)
        t0 = time.perf_counter()
        other.h.run()
        return time.perf_counter() - t0


def verify(arr: LPArrays, x: np.ndarray, y: np.ndarray, row_name, col_name) -> None:
    """Refuse (``SolverError``) a solution that is not primal feasible relative to each row's
    scale, or whose duals break the sign conditions of an optimum.

    Every test has the form ``v / scale > tol`` with ``scale >= 1``, so ``v > tol`` is
    necessary: the scales (the magnitude sums) are computed only for the rows and columns
    that pass that cheap test, which is the same check at a fraction of the cost."""
    mats = arr.matrix()
    row, col, data, absdata = mats["row"], mats["col"], arr.data, mats["absdata"]
    xc = x[col]
    ax = np.bincount(row, weights=data * xc, minlength=arr.n_rows)
    lb, ub = arr.row_lb, arr.row_ub
    raw = np.maximum(lb - ax, ax - ub)
    cand = np.flatnonzero(raw > PRIMAL_TOL)
    if len(cand):
        mag = np.bincount(row, weights=absdata * np.abs(xc), minlength=arr.n_rows)[cand]
        lc, uc = lb[cand], ub[cand]
        scale = np.maximum.reduce([np.ones_like(mag), mag, np.where(np.isfinite(lc), np.abs(lc), 0.0),
                                   np.where(np.isfinite(uc), np.abs(uc), 0.0)])
        viol = raw[cand] / scale
        c = int(np.argmax(viol))
        if viol[c] > PRIMAL_TOL:
            i = int(cand[c])
            bound = ub[i] if ax[i] > ub[i] else lb[i]
            ratio = f" ({ax[i] / bound:,.6g}x its bound)" if bound not in (0.0,) and np.isfinite(bound) else ""
            raise SolverError(f"solution refused: {row_name(i)} is violated: activity {ax[i]:.6g} against bound "
                              f"{bound:.6g}{ratio}; the LP is too badly scaled for the solver")
    xs = np.maximum(arr.col_lb - x, x - arr.col_ub)
    cand = np.flatnonzero(xs > PRIMAL_TOL)
    if len(cand):
        v = xs[cand] / np.maximum(1.0, np.abs(x[cand]))
        c = int(np.argmax(v))
        if v[c] > PRIMAL_TOL:
            j = int(cand[c])
            raise SolverError(f"solution refused: {col_name(j)} = {x[j]:.6g} is outside its bounds")
    ymax = max(1.0, float(np.abs(y).max(initial=0.0)))
    bad = (y > DUAL_TOL * ymax) & np.isinf(lb) & np.isfinite(ub)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise SolverError(f"solution refused: the dual of capacity row {row_name(i)} is {y[i]:.6g}, "
                          "it must be <= 0 (a rent cannot be negative)")
    yr = y[row]
    d = arr.cost - np.bincount(col, weights=data * yr, minlength=arr.n_cols)
    cand = np.flatnonzero((d < -DUAL_TOL) & np.isinf(arr.col_ub))
    if len(cand):
        dmag = np.abs(arr.cost) + np.bincount(col, weights=absdata * np.abs(yr), minlength=arr.n_cols)
        bad = d[cand] < -DUAL_TOL * np.maximum(1.0, dmag[cand])
        if bad.any():
            j = int(cand[np.nonzero(bad)[0][0]])
            raise SolverError(f"solution refused: {col_name(j)} has reduced cost {d[j]:.6g} < 0 at the reported "
                              "optimum (dual infeasible)")
