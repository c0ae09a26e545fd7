"""s* is exact; above it the market says so with s* and what binds."""

from __future__ import annotations

import pytest

import tokenflow as tf


def test_us5_threshold(us5):
    s_star = tf.max_demand_scale(us5)
    tf.solve(us5, demand_scale=0.999 * s_star)
    with pytest.raises(tf.InfeasibleMarketError) as info:
        tf.solve(us5, demand_scale=1.001 * s_star)
    e = info.value
    assert e.max_scale == pytest.approx(s_star)
    assert e.requested_scale == pytest.approx(1.001 * s_star)
    assert f"{s_star:.6g}" in str(e) and "aggregate compute" in str(e)


def test_aggregate_bound_in_closed_form(tiny_doc, load_doc):
    for n in ("A", "B"):
        tiny_doc["nodes"][n]["demand_mtok_per_h"] = {"w": 1000.0}
    s = load_doc(tiny_doc)
    # 20 MW of compute at 1 kWh/M tokens; 2000 M tokens/h -> 2000 kW: s* = 10
    assert tf.max_demand_scale(s) == pytest.approx(10.0, rel=1e-9)


def test_bandwidth_bound(tiny_doc, load_doc):
    # B has demand but no compute; 1 Gbps carries 4500 M tokens/h of 100-B tokens
    tiny_doc["nodes"]["B"]["capacity_mw"] = 0.0
    tiny_doc["nodes"]["B"]["demand_mtok_per_h"] = {"w": 1000.0}
    tiny_doc["links"][0]["bandwidth_gbps"] = 1.0
    s = load_doc(tiny_doc)
    lim = tf.demand_scale_limit(s)
    assert lim.max_scale == pytest.approx(4.5, rel=1e-9)
    assert "bandwidth" in lim.binding and "B->A" in lim.binding
    with pytest.raises(tf.InfeasibleMarketError, match="bandwidth on links B->A"):
        tf.solve(s, demand_scale=5)


def test_latency_bound(tiny_doc, load_doc):
    # A's demand may only be served locally (limit below the A-B round trip)
    tiny_doc["nodes"]["A"]["demand_mtok_per_h"] = {"w": 1000.0}
    tiny_doc["workloads"]["w"]["latency_limit_ms"] = 1.0
    s = load_doc(tiny_doc)
    lim = tf.demand_scale_limit(s)
    assert lim.max_scale == pytest.approx(10.0, rel=1e-9)
    assert lim.aggregate_bound == pytest.approx(20.0)
    assert "within latency limits" in lim.binding and "A" in lim.binding


def test_transfer_aware_threshold_not_above_baseline(us5):
    assert tf.max_demand_scale(us5) <= tf.max_demand_scale(us5, transfer_aware=False) * (1 + 1e-9)
