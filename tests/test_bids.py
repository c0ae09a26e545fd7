"""Clearing against bids and offers: hand-solved cases, the VoLL special case, settlement, bad bids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tokenflow as tf
from tokenflow.planning.bids import clear_bids, voll_bids

BIDS = pd.DataFrame({"node": ["A", "A"], "workload": ["w", "w"], "quantity": [8000.0, 5000.0],
                     "price": [1.0, 0.5]})


@pytest.fixture
def tiny(load_doc, tiny_doc):
    """A: 10 MW at 0.10 $/kWh, 1 kWh/M tokens -> 10,000 M tokens/h at 0.10 $/M tokens; B: no capacity."""
    tiny_doc["nodes"]["B"]["capacity_mw"] = 0.0
    return load_doc(tiny_doc)


def test_two_step_bid_hand_solved(tiny):
    r = clear_bids(tiny, BIDS)
    ds = r.dataset
    np.testing.assert_allclose(ds["bid_accepted"].values, [8000.0, 2000.0], rtol=1e-9)
    assert float(ds["price"].sel(node="A", workload="w")) == pytest.approx(0.5)  # the marginal step's price
    assert float(ds["compute_rent"].sel(node="A")) == pytest.approx(0.4)
    st = r.settlement()
    assert float(st["consumer_surplus"]) == pytest.approx(0.5 * 8000)
    assert float(st["producer_surplus"]) == pytest.approx(0.4 * 10000)
    assert float(st["welfare"]) == pytest.approx(8000 + 1000 - 0.1 * 10000)
    assert float(st["imbalance"]) == pytest.approx(0.0, abs=1e-6)
    assert float(st["surplus_identity"]) == pytest.approx(0.0, abs=1e-6)


def test_offers_hand_solved(tiny):
    offers = pd.DataFrame({"provider": ["p1", "p2"], "node": ["A", "A"], "capacity_mw": [6.0, 6.0],
                           "price": [0.05, 0.3]})
    r = clear_bids(tiny, BIDS, offers)
    ds = r.dataset
    np.testing.assert_allclose(ds["bid_accepted"].values, [8000.0, 4000.0], rtol=1e-9)
    np.testing.assert_allclose(ds["offer_used_kw"].values, [6000.0, 6000.0], rtol=1e-9)
    assert float(ds["compute_rent"].sel(node="A")) == pytest.approx(0.4)
    st = r.settlement()
    assert float(st["producer_surplus"]) == pytest.approx(0.35 * 6000 + 0.1 * 6000)
    assert float(st["consumer_surplus"]) == pytest.approx(0.5 * 8000)
    assert float(st["welfare"]) == pytest.approx(6700.0)
    assert float(st["imbalance"]) == pytest.approx(0.0, abs=1e-6)
    assert float(st["surplus_identity"]) == pytest.approx(0.0, abs=1e-6)


def test_offer_priced_out(tiny):
    """An offer dearer than any bid's value net of processing cost is not used."""
    offers = pd.DataFrame({"provider": ["cheap", "dear"], "node": ["A", "A"], "capacity_mw": [5.0, 5.0],
                           "price": [0.0, 2.0]})
    r = clear_bids(tiny, BIDS, offers)
    np.testing.assert_allclose(r.dataset["offer_used_kw"].values, [5000.0, 0.0], atol=1e-6)
    assert float(r.dataset["price"].sel(node="A", workload="w")) == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [35.0, 60.0])
def test_one_step_bids_equal_value_of_lost_load(us5, scale):
    r = clear_bids(us5, voll_bids(us5, scale, 5.0), demand_scale=scale)
    v = tf.solve(us5, demand_scale=scale, value_of_lost_load=5.0, formulation="arc")
    assert r.objective == pytest.approx(v.objective, rel=1e-9)
    np.testing.assert_allclose(r.dataset["unserved"].values, v.dataset["unserved"].values, atol=1e-6 * scale)
    if scale < tf.max_demand_scale(us5):  # prices are unique where nothing is shed
        np.testing.assert_allclose(r.prices.values, v.prices.values, rtol=1e-7)
    st = r.settlement()
    assert abs(float(st["imbalance"])) <= 1e-7 * float(st["payments"])
    assert abs(float(st["surplus_identity"])) <= 1e-7 * float(st["gross_value"])


@pytest.mark.parametrize("chat_ms", [None, 15.0])
def test_path_bids_equal_value_of_lost_load_with_latency(us5, chat_ms):
    """The path formulation (default) with and without a binding chat limit: one-step bids
    give the value-of-lost-load market of the path formulation; without the limit the
    arc formulation agrees."""
    lat = None if chat_ms is None else {"chat": chat_ms}
    r = clear_bids(us5, voll_bids(us5, 60.0, 5.0), demand_scale=60.0, latency_limits_ms=lat)
    v = tf.solve(us5, demand_scale=60.0, value_of_lost_load=5.0, latency_limits_ms=lat)
    assert r.objective == pytest.approx(v.objective, rel=1e-9)
    st = r.settlement()
    assert abs(float(st["imbalance"])) <= 1e-7 * float(st["payments"])
    if lat is None:
        a = clear_bids(us5, voll_bids(us5, 60.0, 5.0), demand_scale=60.0, formulation="arc")
        assert a.objective == pytest.approx(r.objective, rel=1e-9)
    else:
        with pytest.raises(tf.TokenflowError, match="latency limits bind"):
            clear_bids(us5, voll_bids(us5, 60.0, 5.0), demand_scale=60.0, latency_limits_ms=lat, formulation="arc")


def test_no_bids_is_todays_market(us5):
    r = clear_bids(us5, demand_scale=35.0)
    v = tf.solve(us5, demand_scale=35.0, formulation="arc")
    assert r.objective == pytest.approx(v.objective, rel=1e-9)
    np.testing.assert_allclose(r.prices.values, v.prices.values, rtol=1e-7)


@pytest.mark.parametrize("rows, match", [
    ([("A", "w", 10.0, 1.0), ("A", "w", 10.0, 1.0)], "strictly decrease"),
    ([("A", "w", 10.0, 1.0), ("A", "w", 10.0, 2.0)], "strictly decrease"),
    ([("A", "w", -5.0, 1.0)], "quantity: must be positive"),
    ([("A", "w", 5.0, -1.0)], "price: must be non-negative"),
    ([("Z", "w", 5.0, 1.0)], "unknown node"),
    ([("A", "x", 5.0, 1.0)], "unknown workload"),
    ([("A", "w", float("nan"), 1.0)], "finite number"),
])
def test_bad_bids(tiny, rows, match):
    bids = pd.DataFrame(rows, columns=["node", "workload", "quantity", "price"])
    with pytest.raises(tf.ScenarioError, match=match):
        clear_bids(tiny, bids)


def test_bad_offers_and_files(tiny, tmp_path):
    with pytest.raises(tf.ScenarioError, match="capacity_mw: must be non-negative"):
        clear_bids(tiny, BIDS, pd.DataFrame([("p", "A", -1.0, 0.1)],
                                            columns=["provider", "node", "capacity_mw", "price"]))
    with pytest.raises(tf.ScenarioError, match="missing column"):
        clear_bids(tiny, pd.DataFrame({"node": ["A"], "quantity": [1.0]}))
    with pytest.raises(tf.ScenarioError, match="no such file"):
        clear_bids(tiny, tmp_path / "nothing.csv")
    path = tmp_path / "bids.csv"
    BIDS.to_csv(path, index=False)
    assert clear_bids(tiny, path).objective == pytest.approx(clear_bids(tiny, BIDS).objective)


def test_bid_file(tmp_path, tiny_doc):
    import yaml

    from tokenflow.planning.bids import clear_bid_file

    tiny_doc["nodes"]["B"]["capacity_mw"] = 0.0
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_doc, sort_keys=False))
    doc = {"scenario": "tiny.yaml", "bids": BIDS.to_dict("records"),
           "offers": [{"provider": "p1", "node": "A", "capacity_mw": 6.0, "price": 0.05},
                      {"provider": "p2", "node": "A", "capacity_mw": 6.0, "price": 0.3}]}
    f = tmp_path / "market.yaml"
    f.write_text(yaml.safe_dump(doc))
    r = clear_bid_file(f)
    np.testing.assert_allclose(r.dataset["bid_accepted"].values, [8000.0, 4000.0], rtol=1e-9)
    doc["bids"][1]["price"] = 2.0  # willingness to pay rising: refused, naming the file
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(tf.ScenarioError, match="market.yaml.*strictly decrease"):
        clear_bid_file(f)
    f.write_text(yaml.safe_dump({"scenario": "tiny.yaml", "bidz": []}))
    with pytest.raises(tf.ScenarioError, match="unknown key"):
        clear_bid_file(f)


@pytest.mark.parametrize("formulation", ["path", "arc"])
def test_cannot_clear_is_a_clear_error(us5, formulation):
    """Fixed demand above what the network serves, no bids or VoLL: a TokenflowError."""
    with pytest.raises(tf.TokenflowError, match="cannot clear"):
        clear_bids(us5, demand_scale=60.0, formulation=formulation)
