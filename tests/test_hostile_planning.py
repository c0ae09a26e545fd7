"""Review findings on the planning APIs (plan, clear_bids, upgrades, topology,
identifiability, serving, consistent unit, VoLL): regression tests and hostile inputs.
Each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf
import tokenflow.planning.upgrades as _upgrades
import tokenflow.scenarios.serving as _serving
import tokenflow.scenarios.topology as _topology
import tokenflow.studies.identifiability as _ident
from tokenflow.core.errors import InfeasibleMarketError, ScenarioError, TokenflowError
from tokenflow.planning.bids import clear_bids
from tokenflow.planning.costs import annuity
from tokenflow.planning.plan import plan


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
    import tokenflow.studies.consistent as cons

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
def test_upgrade_values_repeated_asset_refused_and_order_free(us5):
    """A repeated asset used to be valued at ~0 (reset to today's capacity before its solve):
    repeats are refused, and each asset's saving does not depend on what was valued before."""
    from tokenflow.planning.upgrades import upgrade_values

    m = tf.Market(us5)
    m.solve(demand_scale=45)
    with pytest.raises(ScenarioError, match="repeated"):
        upgrade_values(m, links=[], nodes=["dallas", "dallas"])
    with pytest.raises(ScenarioError, match="repeated"):
        upgrade_values(m, links=["n_virginia--new_york", "chicago--dallas", "n_virginia--new_york"], nodes=[])
    both = upgrade_values(m, links=["n_virginia--new_york"], nodes=["dallas", "chicago"])["cost_saving"]
    alone = upgrade_values(m, links=[], nodes=["dallas"])["cost_saving"]
    assert float(both.sel(asset="dallas")) > 1.0
    assert float(both.sel(asset="dallas")) == pytest.approx(float(alone.sel(asset="dallas")), rel=1e-9)
    assert m.solve().objective == pytest.approx(tf.solve(us5, demand_scale=45).objective, rel=1e-9)


# ---------------------------------------------------------------- finding 6: recalibrate when C2 never clears
def test_recalibrate_reports_c2_out_of_reach(us5, monkeypatch):
    import tokenflow.studies.identifiability as idf

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
    from tokenflow.planning.costs import annuity

    with pytest.raises(ScenarioError):
        annuity(rate, years)


def test_annuity_by_hand():
    from tokenflow.planning.costs import annuity

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


# ---------------------------------------------------------------- finding 11: hostile inputs (reviewer's list)
def _serving_csv(tmp_path, edit):
    from importlib import resources

    import pandas as pd

    with resources.as_file(resources.files("tokenflow") / "data" / "serving_measurements.csv") as f:
        good = pd.read_csv(f, dtype=str, keep_default_na=False)
    edit(good)
    path = tmp_path / "serving.csv"
    good.to_csv(path, index=False)
    return path


def _slow_throughput(df):
    df.loc[2:9, "value"] = "1"  # 1 tok/s: the step-time fit gets a negative coefficient


HOSTILE = {
    # plan
    "plan expandable_links=5": (lambda s: plan(s, expandable_links=5), "expandable_links"),
    "plan expandable_links=string": (lambda s: plan(s, expandable_links="chicago--dallas"), "expandable_links"),
    "plan expandable_nodes=None element": (lambda s: plan(s, expandable_nodes=[None]), "expandable_nodes"),
    "plan expandable_nodes=unhashable": (lambda s: plan(s, expandable_nodes=[["dallas"]]), "expandable_nodes"),
    "plan expandable_nodes=duplicates": (lambda s: plan(s, expandable_nodes=["dallas", "dallas"]),
                                         "expandable_nodes"),
    "plan expandable_nodes=mapping": (lambda s: plan(s, expandable_nodes={"dallas": 1}), "expandable_nodes"),
    "plan it life 1e-300": (lambda s: plan(s, costs={"it_equipment_life_years": 1e-300}), "it_equipment_life_years"),
    "annuity(1e308, 5)": (lambda s: annuity(1e308, 5),
                          "discount_rate"),
    # upgrades
    "upgrade_values nodes=5": (lambda s: _upgrades.upgrade_values(s, nodes=5),
                               "nodes"),
    "upgrade_values bogus keyword": (lambda s: _upgrades.upgrade_values(
        s, bogus=1), "bogus"),
    "upgrade_values links=string": (lambda s: _upgrades.upgrade_values(
        s, links="chicago--dallas", nodes=[]), "string"),
    "upgrade_values links=[] nodes=[]": (lambda s: _upgrades.upgrade_values(
        s, links=[], nodes=[]), "nothing to value"),
    "upgrade_values repeated node": (lambda s: _upgrades.upgrade_values(
        s, links=[], nodes=["dallas", "dallas"]), "repeated"),
    "rank_upgrades(None)": (lambda s: _upgrades.rank_upgrades(None), "values"),
    "upgrade_sweep(s, 5)": (lambda s: _upgrades.upgrade_sweep(s, 5),
                            "demand_scales"),
    "upgrade_sweep(s, '12')": (lambda s: _upgrades.upgrade_sweep(s, "12"),
                               "demand_scales"),
    # serving
    "load_serving_data(5)": (lambda s: _serving.load_serving_data(5), "path"),
    "serving_models(garbage frame)": (lambda s: _serving.serving_models(
        __import__("pandas").DataFrame({"a": [1]})), "columns"),
    "serving_models(list)": (lambda s: _serving.serving_models([1]), "data"),
    "energy_terms(None)": (lambda s: _serving.energy_terms(None), "Series"),
    "energy_terms([0.1])": (lambda s: _serving.energy_terms([0.1]), "Series"),
    "energy_terms(text)": (lambda s: _serving.energy_terms(
        __import__("pandas").Series({"chat": "x"})), "chat"),
    "energy_terms(negative)": (lambda s: _serving.energy_terms(
        __import__("pandas").Series({"chat": -1.0})), "chat"),
    # topology
    "knn_links(None, 2)": (lambda s: _topology.knn_links(None, 2), "Scenario"),
    "is_connected(None)": (lambda s: _topology.is_connected(None), "Scenario"),
    "with_links(s, 'ab')": (lambda s: _topology.with_links(s, "ab"), "links"),
    "with_links(s, triples)": (lambda s: _topology.with_links(
        s, [("dallas", "chicago", "x")]), "pairs"),
    "with_links(s, None)": (lambda s: _topology.with_links(s, None), "links"),
    "with_links(s, unhashable)": (lambda s: _topology.with_links(
        s, [(["dallas"], "chicago")]), "pairs"),
    "with_links(s, [])": (lambda s: _topology.with_links(s, []), "no links"),
    "with_links(s, disconnected)": (lambda s: _topology.with_links(
        s, [("dallas", "chicago")]), "unreachable"),
    # identifiability
    "choice_sets(5)": (lambda s: _ident.choice_sets(5), "mapping"),
    "choice_sets(duplicates)": (lambda s: _ident.choice_sets(
        {"payload_direction": ["both", "both"]}), "repeated"),
    "choice_sets(int value)": (lambda s: _ident.choice_sets(
        {"payload_direction": [5]}), "payload_direction"),
    "backbones(s, s, ks=3)": (lambda s: _ident.backbones(s, s, ks=3),
                              "ks"),
    "backbones(repeated ks)": (lambda s: _ident.backbones(
        s, s, ks=[2, 2]), "repeated"),
    "holds({'c1': 'x'})": (lambda s: _ident.holds({"c1": "x"}), "c1"),
    "holds(None)": (lambda s: _ident.holds(None), "mapping"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_names_the_argument(us5, case):
    call, needle = HOSTILE[case]
    with pytest.raises(ScenarioError, match=needle):
        call(us5)


@pytest.mark.parametrize("top", [-1, 0, "3", 1.5, True])
def test_rank_upgrades_top_must_be_positive_whole(us5, top):
    from tokenflow.planning.upgrades import rank_upgrades, upgrade_values

    v = upgrade_values(us5, nodes=[], links=["chicago--dallas", "chicago--new_york"])
    assert len(rank_upgrades(v, top=1)) == 1 and len(rank_upgrades(v)) == 2
    with pytest.raises(ScenarioError, match="top"):
        rank_upgrades(v, top=top)


def test_serving_fit_with_negative_coefficient_refused(tmp_path):
    from tokenflow.scenarios.serving import load_serving_data, serving_models

    with pytest.raises(ScenarioError, match="negative coefficient"):
        serving_models(load_serving_data(_serving_csv(tmp_path, _slow_throughput)))


def test_with_links_provenance_describes_the_new_backbone(us5):
    from tokenflow.scenarios.topology import knn_backbone, with_links

    b = knn_backbone(us5, 4)
    row = b.provenance[b.provenance["item"] == "links"].iloc[0]
    assert row["value"].startswith(f"{len(b.links)} links between 5 nodes")
    assert "4 nearest metros" in row["reference"]
    # the same links give the same market
    same = with_links(us5, list(zip(us5.links["a"], us5.links["b"])))
    assert tf.solve(same).objective == pytest.approx(tf.solve(us5).objective, rel=1e-12)


# ---------------------------------------------------------------- finding 10: fully declined pairs
def test_fully_declined_pair_priced_at_most_its_highest_bid(us5):
    from tokenflow.planning.bids import voll_bids

    r = clear_bids(us5, voll_bids(us5, 60, 5.0))
    ds = r.dataset
    declined = (ds["unserved"] >= ds["demand"] * (1 - 1e-9)) & ds["has_bid"] & (ds["demand"] > 0)
    assert bool(declined.any())  # the case the reviewer found: image fully declined somewhere
    assert float(r.prices.where(declined).max()) <= 5.0 + 1e-12
    st = r.settlement()
    assert abs(float(st["imbalance"])) < 1e-6 and abs(float(st["surplus_identity"])) < 1e-6
    ref = tf.solve(us5, demand_scale=60, value_of_lost_load=5.0)
    assert r.objective == pytest.approx(ref.objective, rel=1e-9)


# ---------------------------------------------------------------- finding 9c: the accounting by name
def test_prefill_and_decode_warns_when_no_workload_has_a_trace():
    import pandas as pd

    from tokenflow.scenarios.serving import consistent_energy

    with pytest.warns(UserWarning, match="changes nothing"):
        out = consistent_energy(pd.Series({"chatbot": 0.1, "pictures": 0.2}))
    assert list(out) == [0.1, 0.2]
