"""Small networks whose prices are known in closed form."""

from __future__ import annotations

import pytest

import tokenflow as tf

GB_PER_MTOK = 100.0 / 1000.0  # payload 100 B/token -> 0.1 GB per M tokens
TRANSFER = 0.01 * GB_PER_MTOK  # $/M tokens to cross one link


def with_demand(doc, **demand):
    for node, d in demand.items():
        doc["nodes"][node]["demand_mtok_per_h"] = {"w": d}
    return doc


def test_uncongested_two_nodes_price_is_cheap_node_plus_transfer(tiny_doc, load_doc):
    s = load_doc(with_demand(tiny_doc, A=1000.0, B=2000.0))
    r = tf.solve(s)
    # everything processed at cheap A (10 MW = 10,000 kW; load 3000 kW)
    assert float(r.processing.sel(node="A", workload="w")) == pytest.approx(3000.0)
    assert float(r.prices.sel(node="A", workload="w")) == pytest.approx(0.10, rel=1e-9)
    assert float(r.prices.sel(node="B", workload="w")) == pytest.approx(0.10 + TRANSFER, rel=1e-9)
    assert r.saturated_links() == []
    assert r.objective == pytest.approx(3000 * 0.10 + 2000 * TRANSFER, rel=1e-9)


def test_link_saturates_and_prices_separate(tiny_doc, load_doc):
    # 1 Gbps = 450 GB/h = 4500 M tokens/h of 100-B tokens; B wants 6000
    tiny_doc["links"][0]["bandwidth_gbps"] = 1.0
    s = load_doc(with_demand(tiny_doc, B=6000.0))
    r = tf.solve(s)
    ds = r.dataset
    assert r.saturated_links() == ["B->A"]
    assert float(ds["link_flow"].sel(link="B->A", workload="w")) == pytest.approx(4500.0)
    assert float(r.processing.sel(node="B", workload="w")) == pytest.approx(1500.0)
    # the marginal token at B is processed locally; the link earns the difference
    assert float(r.prices.sel(node="B", workload="w")) == pytest.approx(0.20, rel=1e-9)
    rho = (0.20 - 0.10 - TRANSFER) / GB_PER_MTOK
    assert float(ds["congestion_rent"].sel(link="B->A")) == pytest.approx(rho, rel=1e-9)
    assert float(ds["congestion_rent"].sel(link="A->B")) == 0.0


def test_moment_of_saturation(tiny_doc, load_doc):
    """Below the link limit B's price is A's cost plus transfer; just above it jumps to B's cost."""
    tiny_doc["links"][0]["bandwidth_gbps"] = 1.0
    s = load_doc(with_demand(tiny_doc, B=4500.0))
    below = tf.solve(s, demand_scale=0.999)
    above = tf.solve(s, demand_scale=1.001)
    assert float(below.prices.sel(node="B", workload="w")) == pytest.approx(0.10 + TRANSFER, rel=1e-9)
    assert float(above.prices.sel(node="B", workload="w")) == pytest.approx(0.20, rel=1e-9)


def test_compute_scarcity_rent(tiny_doc, load_doc):
    # A holds 10,000 kW; demand 12,000 at A: 2,000 must go to B
    s = load_doc(with_demand(tiny_doc, A=12000.0))
    r = tf.solve(s)
    lam = 0.20 + TRANSFER  # marginal token at A is shipped to B
    assert float(r.prices.sel(node="A", workload="w")) == pytest.approx(lam, rel=1e-9)
    assert float(r.dataset["compute_rent"].sel(node="A")) == pytest.approx(lam - 0.10, rel=1e-9)
    assert float(r.dataset["compute_rent"].sel(node="B")) == 0.0


def test_token_equivalent_baseline_counts_reference_payload(tiny_doc, load_doc):
    tiny_doc["links"][0]["bandwidth_gbps"] = 1.0
    s = load_doc(with_demand(tiny_doc, B=6000.0))
    base = tf.solve(s, transfer_aware=False)
    # at 4 B/token the link carries 112,500 M tokens/h: no congestion, all at A
    assert base.saturated_links() == []
    assert float(base.prices.sel(node="B", workload="w")) == pytest.approx(0.10 + 0.01 * 0.004, rel=1e-9)
    # but physically the 100-B tokens overload the link 1.33x
    assert float(base.dataset["link_utilization_physical"].sel(link="B->A")) == pytest.approx(6000 / 4500)
    ta = tf.solve(s)
    assert ta.objective > base.objective


def test_three_node_line_latency_limit(tiny_doc, load_doc):
    """A - B - C in a line: with a limit that admits one hop only, C's demand cannot use A."""
    tiny_doc["nodes"]["C"] = {"lat": 45.0, "lon": -100.0, "population": 0,
                              "electricity_usd_per_kwh": 0.30, "capacity_mw": 10.0,
                              "demand_mtok_per_h": {"w": 1000.0}}
    tiny_doc["links"].append({"a": "B", "b": "C"})
    s = load_doc(tiny_doc)
    one_hop_rtt = 2 * 555.97 * 5.0 / 1000  # ~5.56 ms
    free = tf.solve(s)
    assert float(free.prices.sel(node="C", workload="w")) == pytest.approx(0.10 + 2 * TRANSFER, rel=1e-9)
    tight = tf.solve(s, latency_limits_ms={"w": one_hop_rtt * 1.5})
    assert float(tight.prices.sel(node="C", workload="w")) == pytest.approx(0.20 + TRANSFER, rel=1e-9)
    assert float(tight.dataset["transfers"].sel(origin="C", node="A", workload="w")) == 0.0
