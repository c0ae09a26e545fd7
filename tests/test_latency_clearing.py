"""Latency-consistent clearing on a two-node network solved by hand."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

import tokenflow as tf
from tokenflow.core.errors import TokenflowError
from tokenflow.latency.latency_clearing import latency_consistent_clearing, network_limits, tie_broken_solve
from tokenflow.latency.market_latency import pool_replicas
from tokenflow.latency.queueing import arrival_scv, max_utilisation


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


def test_single_workload_pool_runs_at_node_utilisation(two_nodes, profile):
    """The fixed point's latency evaluates each pool at the utilisation of the GPU split used:
    with one workload per node that is the node's utilisation (derated or not)."""
    for peak in (False, True):
        lc = latency_consistent_clearing(two_nodes, 1.0, profiles=profile, peak=peak)
        ds = lc.result.dataset
        util = ds["compute_used"].to_pandas() / two_nodes.compute_capacity_kw
        ptm = profile["w"].peak_to_mean() if peak else 1.0
        pool = lc.latency["pool_utilisation"].sel(workload="w").to_pandas()
        for n in ("A", "B"):
            if float(ds["processing"].sel(node=n, workload="w")) > 0:
                assert pool[n] == pytest.approx(util[n] * ptm, rel=1e-9)
                # all of the node's GPUs serve its one workload
                assert float(lc.latency["replicas"].sel(node=n, workload="w")) == pool_replicas(
                    float(two_nodes.compute_capacity_kw[n]), 1.0, profile["w"])
    assert float(lc.latency["pool_utilisation"].sel(node="B", workload="w")) > 0.1  # B is in use at the peak


@pytest.mark.parametrize("kwargs,name", [
    ({"tol": float("nan")}, "tol"), ({"tol": -1e-3}, "tol"), ({"tol": "1e-3"}, "tol"),
    ({"q": float("nan")}, "q"), ({"q": 1.0}, "q"), ({"q": 0}, "q"),
    ({"max_iter": 0}, "max_iter"), ({"max_iter": 2.5}, "max_iter"), ({"max_iter": True}, "max_iter"),
    ({"peak": "yes"}, "peak"), ({"transfer_aware": 1}, "transfer_aware"),
    ({"damping": 0.0}, "damping"), ({"damping": 1.5}, "damping"), ({"damping": float("inf")}, "damping"),
    ({"latency_limits_ms": {"w": float("nan")}}, "latency_limits_ms"),
    ({"latency_limits_ms": {"nope": 10.0}}, "latency_limits_ms"),
    ({"profiles": {"nope": None}}, "profiles"),
])
def test_bad_arguments_name_the_argument(two_nodes, profile, kwargs, name):
    args = {"profiles": profile, **kwargs}
    with pytest.raises(tf.TokenflowError, match=name):
        latency_consistent_clearing(two_nodes, 1.0, **args)


@pytest.mark.parametrize("scale", [float("nan"), 0.0, -1.0, float("inf"), None, True])
def test_bad_demand_scale(two_nodes, profile, scale):
    with pytest.raises(tf.TokenflowError, match="demand_scale"):
        latency_consistent_clearing(two_nodes, scale, profiles=profile)


def test_bad_scenario(profile):
    with pytest.raises(tf.TokenflowError, match="Scenario"):
        latency_consistent_clearing("us5", 1.0, profiles=profile)


def test_damped_fixed_point_reaches_the_hand_solved_end_point(two_nodes, profile):
    p = profile["w"]
    reps = pool_replicas(10_000.0, 1.0, p)
    f = max_utilisation(p, 500.0, arrival_scv(p), 0.99, reps) / p.peak_to_mean()
    for damping in (1.0, 0.6):
        lc = latency_consistent_clearing(two_nodes, 1.0, profiles=profile, peak=True, damping=damping, tol=1e-7,
                                         max_iter=60)
        assert lc.converged
        assert lc.capacity_factor["A"] == pytest.approx(f, rel=1e-5)
        # B (not binding) ends at its own usable share, by hand: its pool limit at the A->B round trip
        rtt = float(lc.latency["rtt_ms"].sel(origin="A", node="B", workload="w"))
        f_b = max_utilisation(p, 500.0 - rtt, arrival_scv(p), 0.99, reps) / p.peak_to_mean()
        assert lc.capacity_factor["B"] == pytest.approx(f_b, rel=1e-5)
        assert float(lc.result.processing.sel(node="A", workload="w")) == pytest.approx(10_000.0 * f, rel=1e-5)
    # damped: the factor approaches the share from above in geometric steps of (1 - damping)
    it = lc.iterations["usable_capacity_mw"].to_numpy()
    assert (np.diff(it) <= 1e-9).all()


def test_damped_fixed_point_end_point(two_nodes, profile):
    """The damped end point agrees with the monotone one where a node binds, and every node is
    within its usable share."""
    lc_mono = latency_consistent_clearing(two_nodes, 1.0, profiles=profile, peak=True)
    lc_damp = latency_consistent_clearing(two_nodes, 1.0, profiles=profile, peak=True, damping=1.0)
    # same dispatch and cost; the damped end point also caps B (not binding) at its usable share
    assert lc_damp.capacity_factor["A"] == pytest.approx(lc_mono.capacity_factor["A"], rel=1e-6)
    assert lc_damp.result.objective == pytest.approx(lc_mono.result.objective, rel=1e-9)
    assert lc_damp.capacity_factor["B"] < 1.0
    # every node within its usable share at the end point (tolerance)
    from tokenflow.latency.latency_clearing import pool_limits, usable_share
    r, s = lc_damp.result, two_nodes
    util = r.dataset["compute_used"].to_pandas() / s.compute_capacity_kw
    share = usable_share(r, s, pool_limits(r, s, profile, s.compute_capacity_kw, 0.99, True))
    assert (util <= share + 1e-6).all()


def test_largest_latency_consistent_scale_by_search(two_nodes, profile):
    from tokenflow.latency.latency_clearing import max_latency_consistent_scale

    res = max_latency_consistent_scale(two_nodes, rel_tol=1e-3, profiles=profile, peak=True)
    assert res.clearing is not None and res.clearing.converged
    assert res.scale < res.upper <= res.scale * (1 + 2e-3) + 1e-12
    # just above: the whole procedure fails
    with pytest.raises(tf.InfeasibleMarketError):
        lc = latency_consistent_clearing(two_nodes, res.upper * 1.002, profiles=profile, peak=True)
        assert lc.converged  # a non-converged run also counts as not clearing
        raise tf.InfeasibleMarketError(res.upper, res.scale, "not converged")
    # by hand: A (local demand) and B (over the link) each usable up to their pool limits;
    # 1 kWh per M tokens, so compute used (kW) = tokens served (M/h) = total demand
    p = profile["w"]
    reps = pool_replicas(10_000.0, 1.0, p)
    rtt = float(res.clearing.latency["rtt_ms"].sel(origin="A", node="B", workload="w"))
    f_a = max_utilisation(p, 500.0, arrival_scv(p), 0.99, reps) / p.peak_to_mean()
    f_b = max_utilisation(p, 500.0 - rtt, arrival_scv(p), 0.99, reps) / p.peak_to_mean()
    used = float(res.clearing.result.dataset["compute_used"].sum())
    assert used == pytest.approx(10_000.0 * (f_a + f_b), rel=5e-3)
    assert used == pytest.approx(float(two_nodes.demand.sum()) * res.scale, rel=1e-6)
    assert res.scale < tf.max_demand_scale(two_nodes)
    with pytest.raises(tf.TokenflowError, match="rel_tol"):
        max_latency_consistent_scale(two_nodes, rel_tol=float("nan"), profiles=profile)


# ---------------------------------------------------------------------- unique tie-break
def _twin_doc(tiny_doc, order):
    """Two workloads with identical costs, payloads and limits, all demand at A: A (10 MW) is
    full and 2,000 M tokens/h go to B, but which workload goes is not determined by the LP."""
    doc = copy.deepcopy(tiny_doc)
    base = doc["workloads"]["w"]
    base["demand_mtok_per_h_per_mpeople"] = 6000.0
    doc["workloads"] = {name: copy.deepcopy(base) for name in order}
    doc["nodes"]["A"]["population"] = 1_000_000
    return doc


def _twin_profiles(profile, order):
    p = profile["w"]
    return {w: dataclasses.replace(p, workload=w) for w in order}


def test_tie_break_picks_one_dispatch_and_keeps_prices(tiny_doc, load_doc):
    outs = {}
    for order in (("w", "v"), ("v", "w")):
        s = load_doc(_twin_doc(tiny_doc, order))
        lp = tf.solve(s)
        tb = tie_broken_solve(s)
        # hand-solved totals: A full, the rest at B; prices A = B's cost + transfer, B = its cost
        proc = tb.processing.to_pandas()
        assert proc.loc["A"].sum() == pytest.approx(10_000.0, rel=1e-6)
        assert proc.loc["B"].sum() == pytest.approx(2_000.0, rel=1e-6)
        for w in order:
            assert proc[w].sum() == pytest.approx(6_000.0, rel=1e-6)
            assert float(tb.prices.sel(node="A", workload=w)) == pytest.approx(0.201, abs=1e-6)
            assert float(tb.prices.sel(node="B", workload=w)) == pytest.approx(0.20, abs=1e-6)
        # prices are the LP's, and the dispatch is optimal with them (zero duality gap)
        np.testing.assert_array_equal(tb.prices.values, lp.prices.values)
        assert tb.objective == pytest.approx(lp.objective, rel=1e-8)
        info = tb._sol.info
        assert info["tie_break_excess_cost"] <= 1e-8 * abs(lp.objective)
        assert info["tie_break_cs_residual"] <= 1e-7 * abs(lp.objective)
        outs[order] = proc[["w", "v"]]
    # the same dispatch whichever order the LP sees the workloads in
    pd.testing.assert_frame_equal(outs[("w", "v")], outs[("v", "w")], rtol=1e-9, atol=1e-6)


def test_two_optimal_solutions_give_one_end_point(tiny_doc, load_doc, profile):
    """Two different optimal LP dispatches (the workloads' mix at A) exist; the clearing's end
    point is the same from either, and every route meets its limit there."""
    ends, lps = {}, {}
    for order in (("w", "v"), ("v", "w")):
        s = load_doc(_twin_doc(tiny_doc, order))
        P = _twin_profiles(profile, order)
        lps[order] = tf.solve(s).processing.to_pandas()[["w", "v"]]
        lc = latency_consistent_clearing(s, 1.0, profiles=P, peak=True, tol=1e-9)
        assert lc.converged
        assert float((lc.latency["e2e_p_ms"] - lc.latency["limit_ms"]).max()) <= 1e-6
        util = lc.result.dataset["compute_used"].to_pandas() / s.compute_capacity_kw
        assert (util <= lc.capacity_factor + 1e-9).all()
        ends[order] = (lc.result.processing.to_pandas()[["w", "v"]], lc.capacity_factor)
    # the optimal face is not a point: the mix at A of any LP vertex is one of many
    rng = link_free_mix_range(tiny_doc, load_doc)
    assert rng > 1_000.0
    a, b = ends[("w", "v")], ends[("v", "w")]
    pd.testing.assert_frame_equal(a[0], b[0], rtol=1e-9, atol=1e-6)
    pd.testing.assert_series_equal(a[1], b[1], rtol=1e-12)


def link_free_mix_range(tiny_doc, load_doc) -> float:
    """Range of workload w's processing at A over the optimal face (M tokens/h), from two
    second stages with opposite objectives on w at A."""
    from tokenflow.latency.latency_clearing import secondary_weights

    s = load_doc(_twin_doc(tiny_doc, ("w", "v")))
    vals = []
    for sign in (1.0, -1.0):
        import tokenflow.latency.latency_clearing as lcm

        def weights(m, sign=sign):
            w = secondary_weights(m)
            o, n = m.cols.origin_node()
            hit = (m.cols.k == 0) & (n == 0)
            w = w.copy()
            w[m.inp.N * m.inp.K:][hit] += sign * 10.0
            return w

        orig = lcm.secondary_weights
        lcm.secondary_weights = weights
        try:
            vals.append(float(tie_broken_solve(s).processing.sel(node="A", workload="w")))
        finally:
            lcm.secondary_weights = orig
    return abs(vals[0] - vals[1])


def test_tie_break_bad_arguments(two_nodes):
    with pytest.raises(TokenflowError, match="rel_tol"):
        tie_broken_solve(two_nodes, rel_tol=-1.0)
    with pytest.raises(TokenflowError, match="tie_break"):
        latency_consistent_clearing(two_nodes, tie_break="yes")


# ------------------------------------------------- tie-break with a binding latency limit
def _diamond_doc(tiny_doc, order):
    """A's overflow must leave A; the cheapest node F is beyond the latency limit (binding), so it
    goes to T over one of two mirror-image routes, A > B > T or A > C > T (B and C: transit only,
    equal lengths by symmetry about the equator).  ``order``: the order of B and C in the file,
    which decides the route column generation meets first."""
    doc = copy.deepcopy(tiny_doc)
    doc["workloads"]["w"].update({"demand_mtok_per_h_per_mpeople": 12_000.0, "latency_limit_ms": 20.0})
    nodes = {
        "A": {"lat": 0.0, "lon": -5.0, "population": 1_000_000, "electricity_usd_per_kwh": 0.10,
              "capacity_mw": 10.0},
        "B": {"lat": 1.0, "lon": 0.0, "population": 0, "electricity_usd_per_kwh": 0.30, "capacity_mw": 0.0},
        "C": {"lat": -1.0, "lon": 0.0, "population": 0, "electricity_usd_per_kwh": 0.30, "capacity_mw": 0.0},
        "T": {"lat": 0.0, "lon": 5.0, "population": 0, "electricity_usd_per_kwh": 0.20, "capacity_mw": 100.0},
        "F": {"lat": 0.0, "lon": 25.0, "population": 0, "electricity_usd_per_kwh": 0.05, "capacity_mw": 100.0},
    }
    doc["nodes"] = {n: nodes[n] for n in ("A", *order, "T", "F")}
    doc["links"] = [{"a": "A", "b": order[0]}, {"a": "A", "b": order[1]}, {"a": order[0], "b": "T"},
                    {"a": order[1], "b": "T"}, {"a": "T", "b": "F"}]
    return doc


def test_tie_break_covers_routes_column_generation_did_not_find(tiny_doc, load_doc):
    """With the latency limit binding (the cheap node F is out of reach), the LP's optimal face
    has two mirror-image routes; the first stage's column generation finds the one it meets
    first, which depends on the order of the nodes, and the tie-broken dispatch must not: its
    own route set covers the whole face."""
    flows, lp_routes, prices = {}, {}, {}
    for order in (("B", "C"), ("C", "B")):
        s = load_doc(_diamond_doc(tiny_doc, order))
        nolimit = tf.solve(s, latency_limits_ms={"w": 1000.0})
        assert float(nolimit.processing.sel(node="F", workload="w")) > 1_000.0  # F is cheapest without it
        lp = tf.solve(s)
        assert float(lp.processing.sel(node="F", workload="w")) == pytest.approx(0.0, abs=1e-6)  # binding
        assert float(lp.processing.sel(node="T", workload="w")) == pytest.approx(2_000.0, rel=1e-6)
        lf = lp.dataset["link_flow"].sel(workload="w").to_pandas()
        lp_routes[order] = tuple(sorted(link for link, v in lf.items() if v > 1e-6))
        tb = tie_broken_solve(s)
        info = tb._sol.info
        assert info["tie_break_exact"] and info["tie_break_routes_added"] >= 1
        assert tb.objective == pytest.approx(lp.objective, rel=2e-9)  # the stage's cost row: z (1 + 1e-9)
        np.testing.assert_allclose(tb.prices.sel(node=["A", "T"]).values, lp.prices.sel(node=["A", "T"]).values)
        flows[order] = tb.dataset["link_flow"].sel(workload="w").to_pandas().sort_index()
        prices[order] = tb.prices.sel(workload="w").to_pandas().sort_index()
    # two different optimal LP solutions (one route each) ...
    assert lp_routes[("B", "C")] != lp_routes[("C", "B")]
    # ... one tie-broken dispatch, and it uses one of the two routes whole
    pd.testing.assert_series_equal(flows[("B", "C")], flows[("C", "B")], rtol=1e-9, atol=1e-6)
    used = flows[("B", "C")][flows[("B", "C")] > 1e-6]
    assert len(used) == 2 and used.iloc[0] == pytest.approx(used.iloc[1])
    pd.testing.assert_series_equal(prices[("B", "C")], prices[("C", "B")], rtol=1e-9)


def test_end_point_with_a_binding_limit_is_one_point(tiny_doc, load_doc, profile):
    """The latency-consistent clearing's end point, with the RTT limit binding, from either
    first-stage route: the same dispatch and link flows, every node within its usable share."""
    ends = {}
    P = {"w": dataclasses.replace(profile["w"], limit_ms=520.0)}
    for order in (("B", "C"), ("C", "B")):
        s = load_doc(_diamond_doc(tiny_doc, order))
        lc = latency_consistent_clearing(s, 1.0, profiles=P, peak=True, tol=1e-9)
        assert lc.converged
        assert lc.network_limits_ms["w"] <= 20.0  # the LP's limit (or tighter) binds
        has = s.compute_capacity_kw > 0  # B and C are transit only
        util = lc.result.dataset["compute_used"].to_pandas()[has] / s.compute_capacity_kw[has]
        assert (util <= lc.capacity_factor[has] + 1e-9).all()
        assert float((lc.latency["e2e_p_ms"] - lc.latency["limit_ms"]).max()) <= 1e-6
        ends[order] = (lc.result.processing.to_pandas().sort_index(),
                       lc.result.dataset["link_flow"].sel(workload="w").to_pandas().sort_index(),
                       lc.capacity_factor.sort_index())
    a, b = ends[("B", "C")], ends[("C", "B")]
    assert (a[2] < 1.0).any()  # the clearing derated a node: the end point is not the first clearing
    pd.testing.assert_frame_equal(a[0], b[0], rtol=1e-9, atol=1e-6)
    pd.testing.assert_series_equal(a[1], b[1], rtol=1e-9, atol=1e-6)
    pd.testing.assert_series_equal(a[2], b[2], rtol=1e-12)


# ------------------------------------------------------- scale search from a known bracket
def test_scale_search_from_a_start_bracket(two_nodes, profile, monkeypatch):
    """A start bracket gives a bracket of the same procedure in two clearings (the plain search
    needs a full bisection); a wrong guess still ends in a correct bracket; bad brackets raise."""
    import tokenflow.latency.latency_clearing as lcm

    calls = []
    real = lcm.latency_consistent_clearing

    def counted(*a, **k):
        calls.append(a[1])
        return real(*a, **k)

    monkeypatch.setattr(lcm, "latency_consistent_clearing", counted)
    plain = lcm.max_latency_consistent_scale(two_nodes, rel_tol=1e-2, profiles=profile, peak=True)
    n_plain = len(calls)
    calls.clear()
    warm = lcm.max_latency_consistent_scale(two_nodes, rel_tol=1e-2, profiles=profile, peak=True,
                                            start=(plain.scale, plain.upper))
    assert len(calls) == 2 < n_plain
    assert (warm.scale, warm.upper) == (plain.scale, plain.upper)
    # a guess too low: the answer is still a bracket of width rel_tol around the same limit
    calls.clear()
    low = lcm.max_latency_consistent_scale(two_nodes, rel_tol=1e-2, profiles=profile, peak=True,
                                           start=(0.5 * plain.scale, 0.6 * plain.scale))
    assert low.clearing is not None and low.clearing.converged
    assert low.upper - low.scale <= 1e-2 * low.upper
    assert low.scale <= plain.upper and low.upper >= plain.scale
    for bad in ((1.0,), (2.0, 1.0), (-1.0, 1.0), "ab"):
        with pytest.raises(TokenflowError, match="start"):
            lcm.max_latency_consistent_scale(two_nodes, rel_tol=1e-2, profiles=profile, start=bad)
