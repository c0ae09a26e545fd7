"""Latency-consistent clearing on a two-node network solved by hand."""

from __future__ import annotations

import pytest

import tokenflow as tf
from tokenflow.latency_clearing import latency_consistent_clearing, network_limits
from tokenflow.queueing import ServiceProfile, arrival_scv, default_profiles, max_utilisation, pool_replicas


@pytest.fixture
def two_nodes(tiny_doc, load_doc):
    # all demand at A (cheap, 0.10 $/kWh); B costs 0.20 $/kWh; 10 MW each, 1 kWh per M tokens
    tiny_doc["workloads"]["w"]["demand_mtok_per_h_per_mpeople"] = 8000.0
    tiny_doc["nodes"]["A"]["population"] = 1_000_000
    return load_doc(tiny_doc)


@pytest.fixture
def profile():
    chat = default_profiles(tf.load_scenario("us5"))["chat"]
    return {"w": ServiceProfile("w", 1, chat.max_batch, chat.step_fixed_s, chat.step_slope_s,
                                chat.prefill_s_per_token, 1.0, 500.0, "ttft", trace="conv", peak_trace="conv")}


def test_fixed_point_by_hand(two_nodes, profile):
    s = two_nodes
    p = profile["w"]
    lc = latency_consistent_clearing(s, 1.0, profiles=profile, peak=True)
    # network-only reading: everything at A (80 % utilised), price = A's cost 0.10 $/M tokens
    assert float(lc.network_only.processing.sel(node="A", workload="w")) == pytest.approx(8000.0)
    assert float(lc.network_only.prices.sel(node="A", workload="w")) == pytest.approx(0.10, abs=1e-6)
    # by hand: A may only be loaded to rho* / (1-min peak-to-mean); the rest goes to B
    reps = pool_replicas(10_000.0, 1.0, p)
    f = max_utilisation(p, 500.0, arrival_scv(p), 0.99, reps) / p.peak_to_mean()
    assert lc.converged
    assert len(lc.iterations) == 2  # one derating, then the check passes
    assert lc.capacity_factor["A"] == pytest.approx(f, rel=1e-9)
    assert lc.capacity_factor["B"] == 1.0
    assert float(lc.result.processing.sel(node="A", workload="w")) == pytest.approx(10_000.0 * f, rel=1e-6)
    assert float(lc.result.processing.sel(node="B", workload="w")) == pytest.approx(8000.0 - 10_000.0 * f, rel=1e-6)
    # A's price is now B's cost plus the transfer: 0.20 + 100 B/token * 1e6 tokens * 1e-9 GB/B * 0.01 $/GB
    assert float(lc.result.prices.sel(node="A", workload="w")) == pytest.approx(0.20 + 0.001, abs=1e-6)
    # the end-to-end p99 meets the limit on every route in use
    assert float(lc.latency["e2e_p_ms"].max()) <= 500.0 + 1e-6


def test_no_peak_means_no_derating_here(two_nodes, profile):
    lc = latency_consistent_clearing(two_nodes, 1.0, profiles=profile, peak=False)
    assert lc.converged and len(lc.iterations) == 1
    assert (lc.capacity_factor == 1.0).all()


def test_network_limit_tightened_by_idle_latency(profile, two_nodes):
    lim = network_limits(two_nodes, profile, {"w": 1000.0})
    idle = 500.0 - lim["w"]
    assert 0 < idle < 500.0
    assert network_limits(two_nodes, profile, {"w": 10.0})["w"] == 10.0
