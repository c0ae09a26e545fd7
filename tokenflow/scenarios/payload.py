"""A workload's payload: total bytes per token = request + response.

:func:`split_payload` completes the three payload fields of one workload from the ones given (file
loader and choice resolution); :func:`_resplit_payload` keeps them adding up after
:meth:`~tokenflow.scenarios.scenario_class.Scenario.replace` changed one of them, writing through
:func:`_set_cell` (one cell of a frame, the fast way).  Units: B/token.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..core.errors import ScenarioError

PAYLOAD_SPLIT_TOL = 1e-6  # relative tolerance of payload = request + response


def split_payload(given: Mapping[str, float], where: str) -> dict[str, float]:
    """Complete one workload's ``payload_bytes_per_token`` (total), ``request_bytes_per_token``
    and ``response_bytes_per_token`` (B/token) from the ones ``given``:

    * total only: request = total, response = 0 (the default direction carries it all);
    * both parts, no total: total = request + response;
    * total and one part: the other part = total - part (:class:`ScenarioError` if negative);
    * all three: they must add up (:class:`ScenarioError` if not).

    Values that are not finite numbers are passed through (the value checks report them).
    A single part without the total is a :class:`ScenarioError` (the other part is unknown)."""
    tot, req, resp = (given.get(k) for k in ("payload_bytes_per_token", "request_bytes_per_token",
                                              "response_bytes_per_token"))

    def ok(*xs: Any) -> bool:
        return all(isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) for x in xs)

    if tot is None:
        if req is None and resp is None:
            raise ScenarioError([f"{where}.payload_bytes_per_token: missing (give the total, or "
                                 "request_bytes_per_token and response_bytes_per_token)"])
        if req is None or resp is None:
            missing = "response" if resp is None else "request"
            raise ScenarioError([f"{where}.{missing}_bytes_per_token: missing (give it, or give "
                                 "payload_bytes_per_token, the total)"])
        return {"payload_bytes_per_token": req + resp if ok(req, resp) else math.nan,
                "request_bytes_per_token": req, "response_bytes_per_token": resp}
    if req is None and resp is None:
        return {"payload_bytes_per_token": tot, "request_bytes_per_token": tot, "response_bytes_per_token": 0.0}
    if req is not None and resp is not None:
        if ok(tot, req, resp) and abs(tot - (req + resp)) > PAYLOAD_SPLIT_TOL * max(1.0, abs(tot)):
            raise ScenarioError([f"{where}.payload_bytes_per_token: {tot:g} is not request + response "
                                 f"= {req:g} + {resp:g} = {req + resp:g} B/token"])
        return {"payload_bytes_per_token": tot, "request_bytes_per_token": req, "response_bytes_per_token": resp}
    part, other = ("request", "response") if req is not None else ("response", "request")
    pv = req if req is not None else resp
    if not ok(tot, pv):
        rest = math.nan
    else:
        rest = tot - pv
        if rest < -PAYLOAD_SPLIT_TOL * max(1.0, abs(tot)):
            raise ScenarioError([f"{where}: payload_bytes_per_token {tot:g} is less than "
                                 f"{part}_bytes_per_token {pv:g}, so {other}_bytes_per_token would be "
                                 f"negative ({rest:g} B/token)"])
        rest = max(rest, 0.0)
    return {"payload_bytes_per_token": tot, f"{part}_bytes_per_token": pv, f"{other}_bytes_per_token": rest}


def _resplit_payload(frame: pd.DataFrame, row: str, cols: Mapping[str, Any], where: str) -> None:
    """Keep payload = request + response after :meth:`Scenario.replace` changed one workload:
    the fields given are completed by :func:`split_payload`; a new total given alone scales
    request and response together (the split is kept; the robustness ranges therefore sit on
    the part they vary, e.g. ``response_bytes_per_token``); a single new part keeps the other
    part and sets the total."""
    keys = ("payload_bytes_per_token", "request_bytes_per_token", "response_bytes_per_token")
    given = {k: float(frame.at[row, k]) for k in keys if k in cols}
    if not given:
        return
    if set(given) == {"payload_bytes_per_token"}:
        req0, resp0 = float(frame.at[row, keys[1]]), float(frame.at[row, keys[2]])
        old = req0 + resp0
        share = req0 / old if old > 0 else 1.0
        given["request_bytes_per_token"] = given["payload_bytes_per_token"] * share
        given["response_bytes_per_token"] = given["payload_bytes_per_token"] * (1.0 - share)
    elif "payload_bytes_per_token" not in given:
        for k in keys[1:]:
            given.setdefault(k, float(frame.at[row, k]))
    for k, v in split_payload(given, where).items():
        _set_cell(frame, row, k, float(v))


def _set_cell(frame: pd.DataFrame, row: Any, col: str, v: Any) -> None:
    """``frame.loc[row, col] = v`` for one existing row: ``.at`` (several times faster, which
    a Monte Carlo of many :meth:`Scenario.replace` calls notices) when the column exists."""
    if col in frame.columns and (not isinstance(v, str) or frame[col].dtype == object):
        frame.at[row, col] = v
    else:
        frame.loc[row, col] = v
