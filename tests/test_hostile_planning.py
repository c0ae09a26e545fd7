"""Review findings on the planning APIs (plan, clear_bids, upgrades, topology,
identifiability, serving, consistent unit, VoLL): regression tests and hostile inputs.
Each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.bids import clear_bids
from tokenflow.errors import InfeasibleMarketError, ScenarioError, TokenflowError
from tokenflow.plan import plan


@pytest.fixture(scope="module")
def us5():
    return tf.load_scenario("us5")


@pytest.fixture(scope="module")
def zero_cells(us5):
    m = tf.Market(us5)
    m.solve(demand={"new_york": {"chat": 0.0}, "dallas": {"image": 0.0}})
    return m.scenario


# ---------------------------------------------------------------- finding 1: first-token prices
@pytest.mark.parametrize("formulation", ["path", "arc"])
@pytest.mark.parametrize("fn", [plan, clear_bids], ids=["plan", "clear_bids"])
def test_zero_demand_cells_priced_as_the_engine(zero_cells, fn, formulation):
    want = tf.solve(zero_cells, formulation=formulation).prices
    got = fn(zero_cells, formulation=formulation).prices
    assert float(want.sel(node="dallas", workload="image")) > 0.1
    np.testing.assert_allclose(got.values, want.values, rtol=1e-9, atol=1e-12)
    assert not np.signbit(got.values).any()


# ---------------------------------------------------------------- finding 3: consistent unit counted once
def test_consistent_values_of_a_consistent_scenario_count_prefill_once(us5, monkeypatch):
    import tokenflow.consistent as cons

    seen = {}

    def fake_entry(claim, fn, s, scale, s_star, s_star_go, binding):
        seen[claim] = (s_star, s_star_go)
        return {"value": 0.0, "passed": False, "scale": scale, "s_star": s_star, "s_star_generated_only": s_star_go,
                "binding": binding, "detail": ""}

    monkeypatch.setattr(cons, "_entry", fake_entry)
    monkeypatch.setattr(cons, "_evaluate", lambda claim, f, s: type("R", (), {"reproduced": 0.0, "passed": False,
                                                                            "detail": ""})())
    monkeypatch.setattr(cons, "solve", lambda *a, **k: (_ for _ in ()).throw(InfeasibleMarketError(1.0, 0.5, "x")))
    us20 = tf.load_scenario("us20")
    plain = cons.consistent_values(us5, us20)
    twice = cons.consistent_values(cons.consistent_scenario(us5), cons.consistent_scenario(us20))
    for claim in ("C1", "C4"):
        assert twice[claim]["energy_factor"] == pytest.approx(plain[claim]["energy_factor"], rel=1e-12)
        assert twice[claim]["s_star_generated_only"] == pytest.approx(plain[claim]["s_star_generated_only"])
        assert twice[claim]["s_star"] == pytest.approx(plain[claim]["s_star"])
    assert plain["C1"]["energy_factor"]["code_review"] > 10  # the prefill share, counted once
    assert plain["C1"]["s_star_generated_only"] > plain["C1"]["s_star"]


# ---------------------------------------------------------------- finding 4: repeated assets
def test_upgrade_values_repeated_asset_same_saving(us5):
    from tokenflow.upgrades import upgrade_values

    m = tf.Market(us5)
    m.solve(demand_scale=45)
    v = upgrade_values(m, links=[], nodes=["dallas", "dallas"])["cost_saving"].values
    assert v[0] > 1.0
    assert v[1] == pytest.approx(v[0], rel=1e-9)
    w = upgrade_values(m, links=["n_virginia--new_york", "chicago--dallas", "n_virginia--new_york"],
                       nodes=[])["cost_saving"].values
    assert w[0] > 1.0 and w[2] == pytest.approx(w[0], rel=1e-9)


# ---------------------------------------------------------------- finding 6: recalibrate when C2 never clears
def test_recalibrate_reports_c2_out_of_reach(us5, monkeypatch):
    import tokenflow.identifiability as idf

    def never(sc):
        raise InfeasibleMarketError(35.0, 30.0, "baseline does not clear")

    monkeypatch.setattr(idf, "_uplift", never)
    out = idf.recalibrate(us5, rounds=1, grid_points=2)
    assert out["c2_hit"] is False
    assert out["bandwidth_gbps"] == pytest.approx(float(us5.params["link_bandwidth_gbps"]))
    assert "C2 out of reach" in out["note"]


# ---------------------------------------------------------------- finding 5: a generator of names
def test_plan_expandable_nodes_generator_same_as_list(us5):
    a = plan(us5, demand_scale=60, expandable_nodes=["dallas"])
    b = plan(us5, demand_scale=60, expandable_nodes=(n for n in ["dallas"]))
    assert float(a.dataset["node_added_mw"].sel(node="dallas")) > 1.0
    assert b.objective == pytest.approx(a.objective, rel=1e-9)
    np.testing.assert_array_equal(b.dataset["node_expandable"].values, a.dataset["node_expandable"].values)


# ---------------------------------------------------------------- finding 7: the engine's size checks
@pytest.mark.parametrize("offer_mw", [1e-12, 1e300])
def test_clear_bids_offer_sizes_checked(us5, offer_mw):
    with pytest.raises(ScenarioError, match="capacity"):
        clear_bids(us5, offers=[dict(provider="p", node="dallas", capacity_mw=offer_mw, price=0.0)])


def test_clear_bids_bid_quantity_checked(us5):
    with pytest.raises(ScenarioError, match="demand"):
        clear_bids(us5, [dict(node="dallas", workload="chat", quantity=1e300, price=1.0)])


@pytest.mark.parametrize("hours", [1e-300, 0.5, 1e6])
def test_plan_hours_bounded(us5, hours):
    with pytest.raises(ScenarioError, match="hours"):
        plan(us5, hours=hours)


# ---------------------------------------------------------------- finding 8: annuity edge cases
@pytest.mark.parametrize("costs", [{"it_equipment_life_years": 1e-300}, {"dc_facility_life_years": 1e-17},
                                   {"discount_rate": 1e308}, {"discount_rate": -0.1},
                                   {"it_equipment_life_years": 1e9}])
def test_plan_cost_lives_and_rate_bounded(us5, costs):
    with pytest.raises(ScenarioError, match=next(iter(costs))):
        plan(us5, costs=costs)


@pytest.mark.parametrize("rate, years", [(1e308, 5), (0.08, 1e-300), (2.0, 5), (0.08, float("inf"))])
def test_annuity_refuses_out_of_range(rate, years):
    from tokenflow.plan import annuity

    with pytest.raises(ScenarioError):
        annuity(rate, years)


def test_annuity_by_hand():
    from tokenflow.plan import annuity

    assert annuity(0.08, 20) == pytest.approx(0.08 * 1.08**20 / (1.08**20 - 1), rel=1e-13)
    assert annuity(0.0, 4) == 0.25
    assert annuity(1e-12, 10) == pytest.approx(0.1, rel=1e-9)  # no cancellation at tiny rates


# ---------------------------------------------------------------- finding 9: plan's infeasibility text
def test_plan_infeasible_message_names_capacity_and_s_star(us5):
    with pytest.raises(TokenflowError) as e:
        plan(us5, demand_scale=60, expandable_nodes=[], expandable_links=[])
    msg = str(e.value)
    assert "today's capacity" in msg and "s* with today's capacity" in msg
    assert "cannot reach any node" not in msg


# ---------------------------------------------------------------- finding 9b: infeasible with one tiny cell
@pytest.mark.parametrize("formulation", ["path", "arc"])
def test_infeasible_scale_with_a_tiny_cell_is_infeasible_market(us5, formulation):
    m = tf.Market(us5, formulation=formulation)
    m.solve(demand={"dallas": {"image": 1e-5}})
    with pytest.raises(InfeasibleMarketError) as e:
        m.solve(demand_scale=1000)
    assert np.isnan(e.value.max_scale) and "9 orders" in e.value.binding
    with pytest.raises(ScenarioError, match="9 orders"):  # s* itself is still refused
        m.scale_limit()
