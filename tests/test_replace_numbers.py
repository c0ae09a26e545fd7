"""Scenario.replace's number-only path (issue 20): the copy it builds without resolving the
choices of unchanged frames again equals the constructor's, and every changed value is checked."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys

import numpy as np
import pandas as pd
import pytest

import tokenflow as tf
from tokenflow.core.errors import ScenarioError
from tokenflow.scenarios.scenario import Scenario

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from profile_mc import mc_points  # noqa: E402 - the robustness notebook's draws

PTS = importlib.import_module("tokenflow.studies.sweep_points")  # apply_inputs and its cache of choice sets
EV = importlib.import_module("tokenflow.studies.sweep_evaluate")  # the evaluators


def _slow(self, params, frames, demand_override, rows):
    """The constructor's path: resolve the choices and check everything again."""
    return dataclasses.replace(self, params=params, **frames, demand_override=demand_override)


def _same(a: Scenario, b: Scenario) -> None:
    for f in ("nodes", "workloads", "links", "provenance"):
        pd.testing.assert_frame_equal(getattr(a, f), getattr(b, f), check_exact=True)
    assert a.params == b.params and a.modelling_choices == b.modelling_choices
    assert (a.demand_override is None) == (b.demand_override is None)


def _close(x, y) -> bool:
    if isinstance(x, str) or isinstance(y, str):
        return x == y
    if np.isnan(x) and np.isnan(y):
        return True
    return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))


def test_fast_path_equals_constructor_on_monte_carlo_draws(monkeypatch):
    s5, s20 = tf.load_scenario("us5"), tf.load_scenario("us20")
    points = mc_points(30, seed=3)
    fast = []
    for p in points:
        fast.append((PTS.apply_inputs(s5, p)[0], PTS.apply_inputs(s20, {k: v for k, v in p.items()
                                                                         if k != "demand_scale"})[0]))
    fast_res = EV._run_points(EV.evaluate_claims, s5, points, {"s20": s20})
    monkeypatch.setattr(Scenario, "_replace_numbers", _slow)
    PTS._CHOSEN.clear()
    for p, (f5, f20) in zip(points, fast):
        _same(f5, PTS.apply_inputs(s5, p)[0])
        _same(f20, PTS.apply_inputs(s20, {k: v for k, v in p.items() if k != "demand_scale"})[0])
    slow_res = EV._run_points(EV.evaluate_claims, s5, points, {"s20": s20})
    ok = 0
    for a, b in zip(fast_res, slow_res):
        assert a["status"] == b["status"]
        if a["status"] == "ok":
            ok += 1
            for key in ("c1_saturated", "c2_uplift_pct", "c3_rise_pct", "c3_node", "c4_ratio"):
                assert _close(a[key], b[key]), (key, a[key], b[key])
    assert ok >= 10


def test_fast_path_still_checks_changed_and_derived_values(us5):
    with pytest.raises(ScenarioError, match="ai_share"):
        us5.replace(params={"ai_share": 1.5})
    with pytest.raises(ScenarioError, match="capacity"):
        us5.replace(nodes={n: {"capacity_mw": 0.0} for n in us5.node_ids})
    with pytest.raises(ScenarioError, match="energy_kwh_per_mtok"):
        us5.replace(workloads={"chat": {"energy_kwh_per_mtok": -1.0}})
    # a changed energy figure is resolved under the choice in force, as the constructor does
    s = us5.with_choices(energy_accounting="prefill_and_decode")
    e = float(s.workloads.loc["chat", "energy_kwh_per_mtok"])
    r = s.replace(workloads={"chat": {"energy_kwh_per_mtok": 2 * e}})
    full = dataclasses.replace(r)
    pd.testing.assert_frame_equal(r.workloads, full.workloads)
    assert float(r.workloads.loc["chat", "energy_kwh_per_mtok"]) != 2 * e or e == 0
    # unchanged frames are shared, changed ones are copies
    r2 = us5.replace(params={"pue": 1.3})
    assert r2.nodes is us5.nodes and r2.params["pue"] == 1.3 and us5.params["pue"] != 1.3
