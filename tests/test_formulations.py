"""The arc formulation agrees with the path formulation; settlement balances; VoLL."""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf

LOOSE = {"chat": 1e4, "image": 1e4, "code_review": 1e4, "batch_training": 1e4}


def assert_same_market(a: tf.MarketResult, b: tf.MarketResult) -> None:
    assert a.objective == pytest.approx(b.objective, rel=1e-6)
    np.testing.assert_allclose(a.prices.values, b.prices.values, rtol=1e-6)
    np.testing.assert_allclose(a.dataset["compute_rent"].values, b.dataset["compute_rent"].values,
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, scale", [("us5", 1), ("us5", 20), ("us5", 35), ("us5", 50),
                                         ("us20", 20), ("us20", 35), ("us20", 45)])
@pytest.mark.parametrize("transfer_aware", [True, False])
def test_arc_equals_path_on_packaged_scenarios(name, scale, transfer_aware):
    s = tf.load_scenario(name)
    path = tf.solve(s, demand_scale=scale, transfer_aware=transfer_aware)
    arc = tf.solve(s, demand_scale=scale, transfer_aware=transfer_aware, formulation="arc")
    assert arc.dataset.attrs["formulation"] == "arc"
    assert_same_market(path, arc)


@pytest.mark.parametrize("n, seed, scale", [(30, 0, 10), (50, 1, 20), (40, 2, 30)])
def test_arc_equals_path_on_synthetic_networks(n, seed, scale):
    s = tf.synthetic_network(n, seed=seed)
    path = tf.solve(s, demand_scale=scale, latency_limits_ms=LOOSE)
    arc = tf.solve(s, demand_scale=scale, latency_limits_ms=LOOSE, formulation="arc")
    assert_same_market(path, arc)


def test_arc_is_a_relaxation_when_latency_binds(us5):
    tight = {"chat": 15}
    path = tf.solve(us5, demand_scale=35, latency_limits_ms=tight)
    arc = tf.solve(us5, demand_scale=35, latency_limits_ms=tight, formulation="arc")
    assert arc.objective <= path.objective * (1 + 1e-9)


def test_arc_threshold_matches_path(us5):
    assert tf.max_demand_scale(us5, formulation="arc") == pytest.approx(tf.max_demand_scale(us5), rel=1e-6)
    with pytest.raises(tf.InfeasibleMarketError):
        tf.solve(us5, demand_scale=1.01 * tf.max_demand_scale(us5), formulation="arc")


def test_unknown_formulation(us5):
    with pytest.raises(tf.ScenarioError, match="formulation"):
        tf.solve(us5, formulation="tree")


def test_column_generation_beats_fixed_candidate_paths(us5):
    """At 35x the congested optimum needs routes beyond the seed columns (local processing and
    each row's cheapest route): column generation adds them and reaches the arc optimum."""
    from tokenflow.clearing.engine import Market

    m = Market(us5)
    seeded = len(m.cols)
    r = m.solve(demand_scale=35.0)
    assert r.dataset.attrs["cg_rounds"] > 1 and len(m.cols) > seeded
    assert r.objective == pytest.approx(tf.solve(us5, demand_scale=35, formulation="arc").objective, rel=1e-9)


@pytest.mark.parametrize("kwargs", [{}, {"transfer_aware": False}, {"latency_limits_ms": {"chat": 15}},
                                    {"formulation": "arc"}, {"demand_scale": 60,
                                                             "value_of_lost_load": {"chat": 1.0, "image": 2.0,
                                                                                    "code_review": 1.0,
                                                                                    "batch_training": 0.5}}])
def test_settlement_balances(us5, kwargs):
    r = tf.solve(us5, **{"demand_scale": 35, **kwargs})
    st = r.settlement()
    total = float(st["total_payments"])
    assert total > 0
    assert abs(float(st["imbalance"])) <= 1e-7 * total
    assert float(st["congestion_rent"].min()) >= -1e-9 and float(st["compute_rent"].min()) >= -1e-9


def test_settlement_rents_match_duals_times_capacity(us5_35):
    st = us5_35.settlement()
    ds = us5_35.dataset
    sat = us5_35.saturated_links()
    assert float(st["congestion_rent"].sel(link=sat).sum()) == pytest.approx(
        float((ds["congestion_rent"] * ds["link_capacity"] * 450).sel(link=sat).sum()), rel=1e-9)


class TestValueOfLostLoad:
    VOLL = {"chat": 1.0, "image": 2.0, "code_review": 1.0, "batch_training": 0.5}

    def test_clears_above_threshold(self, us5):
        s_star = tf.max_demand_scale(us5)
        r = tf.solve(us5, demand_scale=1.2 * s_star, value_of_lost_load=self.VOLL)
        unserved = r.dataset["unserved"]
        assert float(unserved.sum()) > 0
        # where demand goes unserved, the price is the value of lost load
        voll = r.dataset["value_of_lost_load"]
        prices = r.prices.where(unserved > 1e-6)
        np.testing.assert_allclose(prices.max("node").dropna("workload").values,
                                   voll.sel(workload=prices.max("node").dropna("workload")["workload"]).values,
                                   rtol=1e-9)
        assert float((r.prices - voll).max()) <= 1e-9
        assert float(r.dataset["cost"].sel(component="lost_load")) > 0

    def test_no_effect_below_threshold(self, us5):
        base = tf.solve(us5, demand_scale=35)
        r = tf.solve(us5, demand_scale=35, value_of_lost_load=self.VOLL)
        assert r.objective == pytest.approx(base.objective, rel=1e-9)
        assert float(r.dataset["unserved"].sum()) == 0.0

    def test_lost_load_cost_matches_unserved(self, us5):
        r = tf.solve(us5, demand_scale=70, value_of_lost_load=self.VOLL)
        lost = (r.dataset["unserved"] * r.dataset["value_of_lost_load"]).sum()
        assert float(r.dataset["cost"].sel(component="lost_load")) == pytest.approx(float(lost))
        arc = tf.solve(us5, demand_scale=70, value_of_lost_load=self.VOLL, formulation="arc")
        assert arc.objective == pytest.approx(r.objective, rel=1e-6)

    def test_partial_voll_still_infeasible(self, us5):
        with pytest.raises(tf.InfeasibleMarketError):
            tf.solve(us5, demand_scale=100, value_of_lost_load={"chat": 1.0})

    @pytest.mark.parametrize("voll, needle", [({"video": 1}, "unknown workload"), ({"chat": -1}, "positive"),
                                              ({"chat": "x"}, "expected")])
    def test_bad_voll(self, us5, voll, needle):
        with pytest.raises(tf.ScenarioError, match=needle):
            tf.solve(us5, value_of_lost_load=voll)
