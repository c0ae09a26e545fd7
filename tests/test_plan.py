"""The planning LP: cost recovery, the two limits of capital cost, and its errors."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenflow as tf
from tokenflow.planning.costs import CapitalCosts, annuity, cost_table
from tokenflow.planning.plan import (
    FROM_SCRATCH_GBPS,
    backbone_recovery,
    legacy_recovery,
    link_recovery,
    plan,
    with_legacy_bandwidth,
)

REL = 1e-6  # solver tolerance on the rent / cost ratio


def assert_cost_recovery(p) -> int:
    """Expanded: rent x hours == annualised cost of the marginal unit; otherwise <=.
    Returns how many assets were expanded."""
    t = p.cost_recovery()
    built = t["added"] > 1e-6 * max(1.0, float(t["added"].max()))
    np.testing.assert_allclose(t.loc[built, "rent_x_hours"], t.loc[built, "annualised_cost"], rtol=REL)
    idle = ~built & t["expandable"].astype(bool)  # assets that may not grow can earn more
    over = t.loc[idle, "rent_x_hours"] - t.loc[idle, "annualised_cost"] * (1 + REL)
    assert (over <= 0).all(), t.loc[idle][over > 0]
    return int(built.sum())


@pytest.mark.parametrize("scale", [35.0, 50.0, 60.0])
def test_cost_recovery_us5(us5, scale):
    p = plan(us5, demand_scale=scale)
    assert assert_cost_recovery(p) >= 1  # something is built at each of these scales


def test_planned_network_clears_at_the_plans_operating_cost(us5):
    """With the plan's capacities fixed, the short-run market costs what the plan says."""
    p = plan(us5, demand_scale=60.0)
    assert float(p.dataset["node_added_mw"].sum()) > 0  # beyond today's s*: capacity is built
    r = tf.solve(p.scenario, **p.settings)
    assert r.objective == pytest.approx(float(p.dataset["operating_cost"]), rel=1e-7)


def test_zero_capital_cost_is_unlimited_capacity(us5):
    p = plan(us5, demand_scale=35.0, costs=CapitalCosts.default().scaled(0.0))
    big = us5.replace(links={lk: {"bandwidth_gbps": 1e6} for lk in us5.links.index},
                      nodes={n: {"capacity_mw": 1e6} for n in us5.node_ids})
    r = tf.solve(big, demand_scale=35.0, formulation="arc")
    assert p.objective == pytest.approx(r.objective, rel=1e-8)
    assert float(p.dataset["compute_rent"].max()) == pytest.approx(0.0, abs=1e-9)
    assert float(p.dataset["congestion_rent"].max()) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(p.prices.values, r.prices.values, rtol=1e-7)


@pytest.mark.parametrize("scale", [20.0, 35.0])
def test_prohibitive_capital_cost_is_todays_market(us5, scale):
    p = plan(us5, demand_scale=scale, costs=CapitalCosts.default().scaled(1e6))
    r = tf.solve(us5, demand_scale=scale, formulation="arc")
    assert float(p.dataset["link_added_gbps"].sum()) == 0 and float(p.dataset["node_added_mw"].sum()) == 0
    assert p.objective == pytest.approx(r.objective, rel=1e-9)
    np.testing.assert_allclose(p.prices.values, r.prices.values, rtol=1e-7)
    np.testing.assert_allclose(p.dataset["compute_rent"].values, r.dataset["compute_rent"].values, atol=1e-9)


def test_annuity_and_costs():
    assert annuity(0.0, 20) == pytest.approx(1 / 20)
    # present value of the annuity over its life is the capital
    r, n = 0.08, 20
    assert sum(annuity(r, n) / (1 + r) ** t for t in range(1, n + 1)) == pytest.approx(1.0)
    t = cost_table()
    assert (t["low"] <= t["value"]).all() and (t["value"] <= t["high"]).all()
    lo, hi = CapitalCosts.default("low"), CapitalCosts.default("high")
    assert lo.link_usd_per_gbps_km_year < hi.link_usd_per_gbps_km_year
    with pytest.raises(tf.ScenarioError, match="unknown input"):
        CapitalCosts.default(fibre_magic=1.0)
    with pytest.raises(tf.ScenarioError, match="discount_rate"):
        CapitalCosts.default(discount_rate=-0.1)


def test_errors(us5):
    with pytest.raises(tf.TokenflowError, match="latency limits bind"):
        plan(us5, demand_scale=35.0, formulation="arc", latency_limits_ms={"chat": 10.0})
    with pytest.raises(tf.ScenarioError, match="formulation"):
        plan(us5, formulation="nodal")
    with pytest.raises(tf.ScenarioError, match="expandable_nodes"):
        plan(us5, expandable_nodes=["atlantis"])
    with pytest.raises(tf.ScenarioError, match="costs"):
        plan(us5, costs=3.0)
    with pytest.raises(tf.ScenarioError, match="hours"):
        plan(us5, hours=0)


@pytest.mark.parametrize("scale", [35.0, 60.0])
def test_path_and_arc_plans_agree(us5, scale):
    """Where no latency limit binds the two formulations are the same planning LP."""
    p, a = plan(us5, demand_scale=scale), plan(us5, demand_scale=scale, formulation="arc")
    assert p.objective == pytest.approx(a.objective, rel=1e-9)
    np.testing.assert_allclose(p.dataset["link_added_gbps"], a.dataset["link_added_gbps"], atol=1e-6)
    np.testing.assert_allclose(p.dataset["node_added_mw"], a.dataset["node_added_mw"], atol=1e-9)


@pytest.mark.parametrize("chat_ms", [15.0, 5.0])
def test_cost_recovery_with_binding_latency(us5, chat_ms):
    """Path formulation with a binding chat limit: rents still recover the marginal cost and
    the planned network clears (path market, same limits) at the plan's operating cost."""
    lat = {"chat": chat_ms}
    p = plan(us5, demand_scale=35.0, latency_limits_ms=lat)
    free = plan(us5, demand_scale=35.0)
    assert p.objective > free.objective * (1 + 1e-6)  # the limit binds
    assert_cost_recovery(p)
    r = tf.solve(p.scenario, **p.settings)
    assert r.objective == pytest.approx(float(p.dataset["operating_cost"]), rel=1e-7)


def test_expandable_subset(us5):
    """Links that may not grow are not grown; the plan costs at least the free plan's."""
    free = plan(us5, demand_scale=60.0)
    fixed = plan(us5, demand_scale=60.0, expandable_links=[])
    assert float(fixed.dataset["link_added_gbps"].sum()) == 0
    assert fixed.objective >= free.objective * (1 - 1e-9)
    assert_cost_recovery(fixed)


# --------------------------------------------------------------------- random networks

@functools.lru_cache(maxsize=32)
def _network(n: int, seed: int) -> tf.Scenario:
    return tf.synthetic_network(n, seed=seed)


@given(n=st.integers(2, 6), seed=st.integers(0, 10_000), frac=st.floats(0.2, 2.0),
       cost_factor=st.floats(0.001, 10.0), ta=st.booleans())
@settings(deadline=None, max_examples=12, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_cost_recovery_random_networks(n, seed, frac, cost_factor, ta):
    s = _network(n, seed)
    loose = {w: 1e5 for w in s.workload_ids}
    s_star = tf.max_demand_scale(s, transfer_aware=ta, latency_limits_ms=loose)
    p = plan(s, demand_scale=frac * s_star, costs=CapitalCosts.default().scaled(cost_factor),
             transfer_aware=ta, latency_limits_ms=loose)
    assert_cost_recovery(p)
    r = tf.solve(p.scenario, **p.settings)
    assert r.objective == pytest.approx(float(p.dataset["operating_cost"]), rel=1e-6, abs=1e-6)


@given(n=st.integers(3, 6), seed=st.integers(0, 10_000), frac=st.floats(0.2, 1.5),
       cost_factor=st.floats(0.001, 10.0), limit_ms=st.floats(2.0, 40.0))
@settings(deadline=None, max_examples=8, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
def test_cost_recovery_random_networks_binding_latency(n, seed, frac, cost_factor, limit_ms):
    """Every workload's latency limit at ``limit_ms`` (binding on most of these networks), path
    formulation: cost recovery, and the planned network clears at the plan's operating cost."""
    s = _network(n, seed)
    lat = {w: limit_ms for w in s.workload_ids}
    s_star = tf.max_demand_scale(s, latency_limits_ms={w: 1e5 for w in s.workload_ids})
    p = plan(s, demand_scale=frac * s_star, costs=CapitalCosts.default().scaled(cost_factor), latency_limits_ms=lat)
    assert_cost_recovery(p)
    r = tf.solve(p.scenario, **p.settings)
    assert r.objective == pytest.approx(float(p.dataset["operating_cost"]), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("formulation", ["path", "arc"])
def test_no_plan_beyond_s_star_without_expansion(us5, formulation):
    with pytest.raises(tf.TokenflowError, match="no plan serves"):
        plan(us5, demand_scale=60.0, expandable_links=[], expandable_nodes=[], formulation=formulation)


@pytest.mark.parametrize("scale", [35.0, 60.0])
def test_long_run_settlement_balances(us5, scale):
    """Demand pays the long-run prices; that covers operating cost and rents (duality), and
    the rents on what is expanded cover at least the capital cost of the additions."""
    p = plan(us5, demand_scale=scale)
    st = p.settlement()
    assert abs(st["imbalance"]) <= 1e-7 * st["payments"]
    assert st["capital_cost"] > 0
    assert st["rents_on_expanded"] >= st["capital_cost"] * (1 - 1e-7)


# --------------------------------------------------------------------- the backbone's cost recovery

@pytest.mark.parametrize("scale", [35.0, 60.0])
def test_a_plan_from_scratch_recovers_the_whole_backbone(us5, scale):
    """Pérez-Arriaga et al. (1995): with linear costs and nothing sunk, congestion rents pay for
    the whole optimal backbone.  Legacy bandwidth 0 (FROM_SCRATCH_GBPS: a scenario refuses 0)."""
    r = legacy_recovery(us5, [0.0], demand_scale=scale).iloc[0]
    assert r["legacy_gbps_mean"] == FROM_SCRATCH_GBPS
    assert r["added_gbps"] > 0 and r["links_expanded"] >= 1
    assert r["recovered"] == pytest.approx(1.0, abs=1e-9)
    assert r["idle_cost_usd_per_year"] <= 1e-9 * r["backbone_cost_usd_per_year"]


@pytest.mark.parametrize("legacy", [50.0, 197.93, 400.0])
def test_an_expanded_link_recovers_its_whole_cost(us5, legacy):
    """Rents x hours on an expanded link = annualised cost of all its planned Gbps, legacy
    included (not only of its last Gbps); a link the plan leaves alone earns at most its cost."""
    p = plan(with_legacy_bandwidth(us5, legacy), demand_scale=35.0)
    t = link_recovery(p)
    expanded = t["added_gbps"] > 1e-6
    assert expanded.any()
    assert (t.loc[expanded, "planned_gbps"] > t.loc[expanded, "added_gbps"] + legacy / 2).all()  # legacy is part of it
    np.testing.assert_allclose(t.loc[expanded, "rents_usd_per_year"], t.loc[expanded, "cost_usd_per_year"], rtol=1e-6)
    assert (t.loc[~expanded, "recovered"] <= 1 + 1e-6).all()
    b = backbone_recovery(p)
    assert b["expanded_rents_usd_per_year"] == pytest.approx(b["expanded_cost_usd_per_year"], rel=1e-6)
    # the shortfall is the legacy bandwidth the plan leaves alone
    assert b["backbone_cost_usd_per_year"] - b["rents_usd_per_year"] == pytest.approx(
        b["idle_cost_usd_per_year"] - b["idle_rents_usd_per_year"], rel=1e-6)


def test_recovery_falls_with_the_legacy_bandwidth(us5):
    """More sunk legacy bandwidth, less of the backbone recovered (35x, the chapter's sweep)."""
    r = legacy_recovery(us5, [0.0, 50.0, 100.0, float(us5.params["link_bandwidth_gbps"]), 400.0], demand_scale=35.0)
    assert r["recovered"].iloc[0] == pytest.approx(1.0, abs=1e-9)
    assert (np.diff(r["recovered"].to_numpy()) < 0).all()
    assert r.loc[float(us5.params["link_bandwidth_gbps"]), "recovered"] < 0.5


def test_legacy_bandwidth_errors(us5):
    with pytest.raises(tf.ScenarioError, match="legacy bandwidth"):
        with_legacy_bandwidth(us5, 0.0)
    with pytest.raises(tf.ScenarioError, match="legacy"):
        legacy_recovery(us5, [-1.0])
    with pytest.raises(tf.ScenarioError, match="legacy_recovery"):
        legacy_recovery(us5, [])
    with pytest.raises(tf.ScenarioError, match="PlanResult"):
        backbone_recovery("plan")
