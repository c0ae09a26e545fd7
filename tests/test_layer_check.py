"""Issue 16: which latency layer the clearing uses where the analytic layer and the simulation
disagree (bursty code traffic), and the pool-size runs behind the reduced replay."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import tokenflow as tf
from tokenflow.latency.latency_clearing import latency_consistent_clearing, pool_limits
from tokenflow.latency.market_latency import pool_replicas
from tokenflow.latency.profiles import default_profiles, measured_profiles
from tokenflow.latency.queueing import arrival_scv, max_utilisation, replica_latency
from tokenflow.latency.simulate import LayerCheck, layer_check, pool_size_check, simulate_pool


@pytest.fixture(scope="module")
def P():
    return measured_profiles(tf.load_scenario("us5").with_choices(energy_accounting="prefill_and_decode"))


def _table(w, rows):
    return pd.DataFrame([{"workload": w, "replicas": k, "rho": r, "sim_p99_ms": sp, "ana_p99_ms": ap,
                          "ratio": sp / ap} for k, r, sp, ap in rows])


def test_layer_check_validated_when_the_largest_pool_agrees(P):
    p = P["chat"]
    t = _table("chat", [(2, 0.5, 300.0, 100.0), (8, 0.5, 110.0, 100.0), (8, 0.8, 95.0, 100.0),
                        (8, 0.95, 900.0, 100.0)])  # 0.95 is above rho_moderate: not judged
    c = layer_check(p, t, 400.0, steps=0)
    assert isinstance(c, LayerCheck)
    assert c.validated and c.cap is None and c.largest_pool == 8
    assert c.ratio_by_pool.to_dict() == pytest.approx({2: 3.0, 8: 1.1})
    assert c.analytic_rho_star == pytest.approx(max_utilisation(p, 400.0, arrival_scv(p), 0.99, 8))


def test_layer_check_caps_at_the_simulations_limit_when_not_validated(P):
    p = P["code_review"]
    t = _table("code_review", [(2, 0.5, 9000.0, 600.0), (8, 0.5, 1200.0, 600.0), (8, 0.8, 9000.0, 700.0)])
    c = layer_check(p, t, 1750.0, steps=0)  # no further runs: the grid's bound
    assert not c.validated and c.cap == 0.5 and c.cap_points.empty
    # with runs: the cap is a utilisation at which the simulation (same seed) meets the budget,
    # and the next bisection point above it does not
    c2 = layer_check(p, t, 1750.0, steps=1, seed=3)
    assert len(c2.cap_points) == 1
    mid = float(c2.cap_points["rho"].iloc[0])
    assert mid == pytest.approx(0.65)
    sim = simulate_pool(p, mid, replicas=8, n_requests=800, seed=3 + 7)
    assert float(c2.cap_points["sim_p99_ms"].iloc[0]) == pytest.approx(sim["p99_ms"])
    assert c2.cap == (mid if sim["p99_ms"] <= 1750.0 else 0.5)


def test_layer_check_bad_input(P):
    p = P["chat"]
    with pytest.raises(tf.ScenarioError, match="table"):
        layer_check(p, pd.DataFrame({"rho": [0.5]}), 400.0)
    with pytest.raises(tf.ScenarioError, match="no runs of workload 'chat'"):
        layer_check(p, _table("code_review", [(2, 0.5, 1.0, 1.0)]), 400.0)
    with pytest.raises(tf.ScenarioError, match="budget_ms"):
        layer_check(p, _table("chat", [(2, 0.5, 1.0, 1.0)]), -1.0)
    with pytest.raises(tf.ScenarioError, match="pool_sizes"):
        pool_size_check({"chat": p}, [0.5], "ab")
    with pytest.raises(tf.ScenarioError, match="pool_sizes"):
        pool_size_check({"chat": p}, [0.5], [0])


def test_pool_size_check_runs_the_simulation_and_the_analytic_layer(P):
    p = P["chat"]
    t = pool_size_check({"chat": p}, [0.5], [1, 2], seed=4)
    assert list(t["replicas"]) == [1, 2]
    for _, row in t.iterrows():
        sim = simulate_pool(p, 0.5, replicas=int(row["replicas"]), n_requests=800, seed=4)
        ana = replica_latency(p, 0.5, arrival_scv(p), 0.99, int(row["replicas"]))
        assert row["sim_p99_ms"] == pytest.approx(sim["p99_ms"])
        assert row["ana_p99_ms"] == pytest.approx(ana["p_ms"])
        assert row["ratio"] == pytest.approx(sim["p99_ms"] / ana["p_ms"])


def test_the_clearing_consumes_the_cap(tiny_doc, load_doc):
    """pool_limits takes the smaller of the analytic limit and the profile's cap; a cap above
    the analytic limit changes nothing; a cap out of [0, 1] is refused, naming the field."""
    tiny_doc["workloads"]["w"]["demand_mtok_per_h_per_mpeople"] = 8000.0
    tiny_doc["nodes"]["A"]["population"] = 1_000_000
    s = load_doc(tiny_doc)
    chat = default_profiles(tf.load_scenario("us5"))["chat"]
    p = tf.latency.profiles.ServiceProfile("w", 1, chat.max_batch, chat.step_fixed_s, chat.step_slope_s,
                                   chat.prefill_s_per_token, 1.0, 500.0, "ttft", trace="conv", peak_trace="conv")
    r = tf.solve(s)
    reps = pool_replicas(10_000.0, 1.0, p)
    ana = max_utilisation(p, 500.0, arrival_scv(p), 0.99, reps)
    free = pool_limits(r, s, {"w": p}, s.compute_capacity_kw, 0.99, False)
    capped = pool_limits(r, s, {"w": dataclasses.replace(p, max_pool_utilisation=0.5)}, s.compute_capacity_kw,
                         0.99, False)
    loose = pool_limits(r, s, {"w": dataclasses.replace(p, max_pool_utilisation=1.0)}, s.compute_capacity_kw,
                        0.99, False)
    assert float(free.loc["A", "w"]) == pytest.approx(ana)
    assert float(capped.loc["A", "w"]) == pytest.approx(0.5)
    assert float(loose.loc["A", "w"]) == pytest.approx(ana)
    lc = latency_consistent_clearing(s, 1.0, profiles={"w": dataclasses.replace(p, max_pool_utilisation=0.5)},
                                     peak=False, tol=1e-9)
    assert lc.converged and lc.capacity_factor["A"] == pytest.approx(0.5, rel=1e-9)
    assert float(lc.result.processing.sel(node="A", workload="w")) == pytest.approx(5000.0, rel=1e-6)
    with pytest.raises(tf.ScenarioError, match="max_pool_utilisation"):
        latency_consistent_clearing(s, 1.0, profiles={"w": dataclasses.replace(p, max_pool_utilisation=1.5)})
    assert np.isfinite(ana) and ana > 0.5
