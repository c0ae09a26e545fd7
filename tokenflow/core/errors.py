"""Exception types: every problem the package reports is a :class:`TokenflowError`."""

from __future__ import annotations


class TokenflowError(Exception):
    """Base class of all errors raised by tokenflow."""


class ScenarioError(TokenflowError, ValueError):
    """A scenario file or object is malformed or inconsistent.

    ``problems`` lists every problem found, each naming the file and field.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            msg = self.problems[0]
        else:
            msg = f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(msg)


class InfeasibleMarketError(TokenflowError):
    """The market cannot clear: demand exceeds what the network can serve.

    Attributes: ``requested_scale``, ``max_scale`` (s*), ``binding`` (what binds).
    """

    def __init__(self, requested_scale: float, max_scale: float, binding: str) -> None:
        self.requested_scale = requested_scale
        self.max_scale = max_scale
        self.binding = binding
        super().__init__(
            f"market is infeasible at demand scale {requested_scale:z.6g}: the largest feasible "
            f"scale is s* = {max_scale:z.6g}; binding: {binding}"
        )


class SolverError(TokenflowError):
    """HiGHS did not return an optimal solution for a reason other than infeasibility."""


class ClusterError(TokenflowError, RuntimeError):
    """A Dask scheduler could not be reached or is not one (CLI exit 4), e.g. nothing answers
    within :data:`tokenflow.studies.sweep_dask.CONNECT_TIMEOUT_S` seconds."""


class OutputError(TokenflowError):
    """An output file (netCDF, MPS/LP, sweep results) could not be written.

    The message names the file and the real cause (missing folder, is a directory,
    disk full or file-size limit, permission); the target is left as it was.
    """
