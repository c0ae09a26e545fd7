"""Hostile inputs against the persistent Market (issue 15, items 1, 2 and 6).

Every case ends in a clean :class:`tokenflow.TokenflowError` that leaves the market as it
was, or in a result checked against a fresh solve or an independent computation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.clearing.engine import Market
from tokenflow.clearing.rules import DEMAND_RESOLUTION
from tokenflow.cli import main
from tokenflow.lp.inputs import build_inputs

FORMS = ["path", "arc"]
INPUT_FIELDS = ("base_demand", "fwd_gb", "rev_gb", "capacity_kw", "proc_cost", "energy_cost", "arc_capacity_gbh",
                "arc_cost", "latency_ms", "voll", "intensity")


def fresh(m: Market):
    """tokenflow.solve of what the market says it is (or the error it raises)."""
    try:
        return tf.solve(m.scenario, **m.settings)
    except tf.TokenflowError as exc:
        return exc


def same_result(a, b, rel: float = 1e-7) -> None:
    assert a.objective == pytest.approx(b.objective, rel=rel)
    np.testing.assert_allclose(a.prices.values, b.prices.values, rtol=1e-6, atol=1e-9)


def inputs_match_scenario(m: Market) -> None:
    """Every input array of the live market equals one built from its scenario and settings."""
    st = m.settings
    want = build_inputs(m.scenario, transfer_aware=st["transfer_aware"], latency_limits_ms=st["latency_limits_ms"],
                        value_of_lost_load=st["value_of_lost_load"])
    for f in INPUT_FIELDS:
        np.testing.assert_allclose(getattr(m.inp, f), getattr(want, f), rtol=1e-12, atol=0, err_msg=f)


def state(m: Market) -> dict:
    return {"settings": m.settings, "inp": m.inp, "scenario": m._scenario, "pending": list(m._pending),
            "lat": dict(m._lat), "main_arr": m._main.arr, "smax_arr": m._smax.arr}


def assert_unchanged(m: Market, before: dict) -> None:
    after = state(m)
    assert after["settings"] == before["settings"]
    assert after["inp"] is before["inp"]
    assert after["scenario"] is before["scenario"]
    assert after["lat"] == before["lat"]
    assert len(after["pending"]) == len(before["pending"])
    assert all(a is b for a, b in zip(after["pending"], before["pending"]))
    assert after["main_arr"] is before["main_arr"]
    assert after["smax_arr"] is before["smax_arr"]


# ----------------------------------------------------------------------------- refused changes

def _all_capacity_zero(s):
    return {"capacity_mw": {n: 0.0 for n in s.node_ids}}


REFUSED = {
    # the examples
    "latency 0 with no local compute": lambda s: {"latency_limits_ms": {"chat": 0},
                                                  "capacity_mw": {"silicon_valley": 0}},
    "transfer_aware with a misspelt latency": lambda s: {"transfer_aware": False, "latency_limits_ms": {"chatt": 15}},
    # bad numbers
    "negative scale": lambda s: {"demand_scale": -1.0},
    "NaN scale": lambda s: {"demand_scale": math.nan},
    "negative demand cell": lambda s: {"demand": {"dallas": {"chat": -5.0}}},
    "unknown demand node": lambda s: {"demand": {"atlantis": {"chat": 5.0}}},
    "unknown demand workload": lambda s: {"demand": {"dallas": {"chess": 5.0}}},
    "demand not a mapping of mappings": lambda s: {"demand": {"dallas": 5.0}},
    "no compute anywhere": _all_capacity_zero,
    "text as a price": lambda s: {"electricity_usd_per_kwh": {"dallas": "cheap"}},
    "zero bandwidth": lambda s: {"link_bandwidth_gbps": 0.0},
    "unknown link": lambda s: {"transfer_cost_usd_per_gb": {"nolink": 0.1}},
    "negative VoLL": lambda s: {"value_of_lost_load": -3.0},
    "negative opex": lambda s: {"other_opex_usd_per_kwh": -1.0},
    "unknown change": lambda s: {"colour": "red"},
    "structural scenario": lambda s: {"scenario": tf.load_scenario("us20")},
    "bool as transfer_aware text": lambda s: {"transfer_aware": "no", "demand_scale": 3.0},
    # valid first part, refused later: the earlier parts must not stay applied
    "VoLL then an unrepresentable scale": lambda s: {"value_of_lost_load": 1.0, "demand_scale": 1e300},
    "demand cells spanning 11 orders at an infeasible scale": lambda s: {"demand": {"dallas": {"chat": 1e13}}},
    "electricity then an unreachable workload": lambda s: {"electricity_usd_per_kwh": {"dallas": 0.01},
                                                             "capacity_mw": {"silicon_valley": 0.0},
                                                             "latency_limits_ms": {"chat": 0.0}},
}


@pytest.fixture(scope="module")
def markets(us5):
    """One market per formulation, solved at scale 10 (refused calls must leave it so)."""
    return {f: Market(us5, formulation=f) for f in FORMS}


@pytest.mark.parametrize("formulation", FORMS)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_solve_leaves_market_untouched(markets, us5, formulation, case):
    m = markets[formulation]
    r0 = m.solve(demand_scale=10)
    before = state(m)
    with pytest.raises(tf.TokenflowError) as ei:
        m.solve(**REFUSED[case](us5))
    assert not isinstance(ei.value, tf.InfeasibleMarketError), ei.value
    assert_unchanged(m, before)
    r1 = m.solve()
    assert r1.objective == pytest.approx(r0.objective, rel=1e-12)
    np.testing.assert_allclose(r1.prices.values, r0.prices.values, rtol=1e-9)
    same_result(r1, fresh(m))


@pytest.mark.parametrize("formulation", FORMS)
def test_refused_resolve_keeps_latency_overrides(us5, formulation):
    """A refused resolve used to clear the latency overrides in settings while solves applied them."""
    m = Market(us5, formulation=formulation, latency_limits_ms={"chat": 15})
    r0 = m.solve(demand_scale=10)
    before = state(m)
    with pytest.raises(tf.ScenarioError, match="value_of_lost_load"):
        m.resolve(us5, demand_scale=10, value_of_lost_load=-1.0)
    assert_unchanged(m, before)
    assert m.settings["latency_limits_ms"] == {"chat": 15.0}
    same_result(m.solve(), r0, rel=1e-12)
    same_result(m.solve(), fresh(m))


@pytest.mark.parametrize("formulation", FORMS)
def test_refused_scale_limit_leaves_market_untouched(us5, formulation):
    m = Market(us5, formulation=formulation)
    s0 = m.scale_limit().max_scale
    before = state(m)
    with pytest.raises(tf.ScenarioError, match="9 orders of magnitude"):
        m.scale_limit(demand={"dallas": {"chat": 1e16}})
    assert_unchanged(m, before)
    assert m.scale_limit().max_scale == s0


@pytest.mark.parametrize("formulation", FORMS)
def test_infeasible_change_is_kept_and_consistent(us5, formulation):
    """An infeasible market is an answer about the changed market: the change persists, and
    the market and a fresh solve of what it says it is agree (both infeasible, same s*)."""
    m = Market(us5, formulation=formulation)
    m.solve(demand_scale=10)
    with pytest.raises(tf.InfeasibleMarketError) as ei:
        m.solve(demand_scale=1e3)
    assert m.settings["demand_scale"] == 1e3
    want = fresh(m)
    assert isinstance(want, tf.InfeasibleMarketError)
    assert ei.value.max_scale == pytest.approx(want.max_scale, rel=1e-9)
    same_result(m.solve(demand_scale=10), tf.solve(us5, demand_scale=10, formulation=formulation))


def test_interrupt_rolls_back(us5, monkeypatch):
    """Ctrl-C in the middle of a solve leaves the market as it was."""
    m = Market(us5, formulation="arc")
    r0 = m.solve(demand_scale=10)
    before = state(m)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(m._main, "run", boom)
    with pytest.raises(KeyboardInterrupt):
        m.solve(demand_scale=20, electricity_usd_per_kwh={"dallas": 0.3})
    monkeypatch.undo()
    assert_unchanged(m, before)
    same_result(m.solve(), r0, rel=1e-12)


# ----------------------------------------------------------------------------- stale derived inputs

def _mean_payload(s: tf.Scenario) -> float:
    """Demand-weighted mean payload (B/token), computed here from the scenario's tables."""
    w = s.demand.sum("node").to_pandas()
    pay = s.workloads["request_bytes_per_token"] + s.workloads["response_bytes_per_token"]
    return float((w * pay).sum() / w.sum())


@pytest.mark.parametrize("formulation", FORMS)
def test_mean_payload_follows_demand(us5, formulation):
    s = us5.with_choices(baseline_payload="mean_payload")
    m = Market(s, transfer_aware=False, formulation=formulation)
    m.solve(demand_scale=30)
    before = _mean_payload(s)
    assert m.inp.fwd_gb[0] * 1000 == pytest.approx(before, rel=1e-12)
    d = float(s.demand.sel(node="n_virginia", workload="chat"))
    r = m.solve(demand={"n_virginia": {"chat": 2 * d}})
    after = _mean_payload(m.scenario)
    assert after > before + 1.0  # doubling N. Virginia chat moves the mean payload
    np.testing.assert_allclose(m.inp.fwd_gb * 1000, after, rtol=1e-12)
    inputs_match_scenario(m)
    same_result(r, fresh(m))


def test_node_gaining_compute_can_process_in_arc_formulation(us5):
    """Arc formulation: a node without compute that gains capacity must be able to process
    (its processing columns used to stay missing: a silently dearer market)."""
    s0 = us5.replace(nodes={"new_york": {"capacity_mw": 0.0, "electricity_usd_per_kwh": 0.01}})
    for lat in (None, {"chat": 8.0}):
        m = Market(s0, formulation="arc", latency_limits_ms=lat)
        m.solve(demand_scale=10)
        r = m.solve(capacity_mw={"new_york": 500.0})
        same_result(r, fresh(m))
        assert float(r.processing.sel(node="new_york").sum()) > 0


# ----------------------------------------------------------------------------- numbers at the edges

def _first_token_brute_force(r: tf.MarketResult, s: tf.Scenario, settings: dict) -> np.ndarray:
    """Marginal cost of the first token at each (node, workload) at the result's rents, by
    enumerating every simple route of the network (no engine code)."""
    inp = build_inputs(s, transfer_aware=settings.get("transfer_aware", True),
                       latency_limits_ms=settings.get("latency_limits_ms"))
    ds = r.dataset
    mu, rho = ds["compute_rent"].values, ds["congestion_rent"].values
    out = np.full((inp.N, inp.K), np.inf)
    adj = {u: [] for u in range(inp.N)}
    for a, (u, v) in enumerate(zip(inp.au, inp.av)):
        adj[int(u)].append((a, int(v)))

    def walk(o, u, arcs, seen):
        yield u, arcs
        for a, v in adj[u]:
            if v not in seen:
                yield from walk(o, v, arcs + [a], seen | {v})

    for o in range(inp.N):
        for n, arcs in walk(o, o, [], {o}):
            if inp.capacity_kw[n] <= 0:
                continue
            arcs = np.array(arcs, dtype=int)
            rtt = 2 * inp.arc_latency_ms[arcs].sum()
            for k in range(inp.K):
                if rtt > inp.latency_ms[k] + 1e-9:
                    continue
                c = (inp.proc_cost[n, k] + inp.intensity[k] * mu[n]
                     + inp.fwd_gb[k] * (inp.arc_cost[arcs] + rho[arcs]).sum()
                     + inp.rev_gb[k] * (inp.arc_cost[arcs ^ 1] + rho[arcs ^ 1]).sum())
                out[o, k] = min(out[o, k], c)
    return out


@pytest.mark.parametrize("formulation", FORMS)
@pytest.mark.parametrize("scale", [0.0, 1e-20, 1e-15, 1e-12])
def test_prices_at_vanishing_demand_are_first_token_costs(us5, formulation, scale):
    r = tf.solve(us5, demand_scale=scale, formulation=formulation)
    p = r.prices.values
    assert not np.signbit(p).any()
    np.testing.assert_allclose(p, _first_token_brute_force(r, us5, {}), rtol=1e-9)


@pytest.mark.parametrize("formulation", FORMS)
@pytest.mark.parametrize("cell", [1e-300, 1e-12, 0.0])
def test_one_vanishing_demand_cell_priced_at_its_first_token(us5, formulation, cell):
    s = us5.replace(demand={"dallas": {"chat": cell}})
    r = tf.solve(s, demand_scale=20, formulation=formulation)
    want = _first_token_brute_force(r, s, {})
    got = float(r.prices.sel(node="dallas", workload="chat"))
    assert got > 0
    assert got == pytest.approx(want[s.node_ids.index("dallas"), 0], rel=1e-7)


def _only_cell(s: tf.Scenario, value: float) -> tf.Scenario:
    """All demand zero except Dallas chat = ``value``."""
    d = {n: {w: 0.0 for w in s.workload_ids} for n in s.node_ids}
    d["dallas"]["chat"] = value
    return s.replace(demand=d)


@pytest.mark.parametrize("formulation", FORMS)
def test_no_negative_zero_anywhere(us5, formulation):
    r = tf.solve(us5, demand_scale=1e-20, formulation=formulation)
    ds = r.dataset
    for v in ("price", "compute_rent", "congestion_rent"):
        assert not np.signbit(ds[v].values).any(), v
    assert "-0.0" not in r.summary()
    lim = tf.demand_scale_limit(_only_cell(us5, 1e300), formulation=formulation)
    assert not math.copysign(1.0, lim.max_scale) < 0 and lim.max_scale > 0


def test_cli_prints_no_negative_zero(capsys):
    assert main(["solve", "us5", "--demand-scale", "1e-20"]) == 0
    out = capsys.readouterr().out
    assert "-0.0" not in out and "0.0" in out


@pytest.mark.parametrize("formulation", FORMS)
@pytest.mark.parametrize("cell", [1e12, 1e13, 1e16, 1e300])
def test_s_star_refused_when_demand_spans_too_many_orders(us5, formulation, cell):
    s = us5.replace(demand={"dallas": {"chat": cell}})
    with pytest.raises(tf.ScenarioError, match="9 orders of magnitude") as ei:
        tf.max_demand_scale(s, formulation=formulation)
    assert "dallas/chat" in str(ei.value)
    # the market itself still clears at a scale where nothing binds, and an infeasible
    # scale is refused with the same message, never "s* = -0"
    assert tf.solve(s, demand_scale=1e-3 / cell, formulation=formulation).objective > 0
    with pytest.raises(tf.ScenarioError, match="9 orders of magnitude"):
        tf.solve(s, formulation=formulation)


@pytest.mark.parametrize("formulation", FORMS)
@pytest.mark.parametrize("cell", [1e13, 1e100, 1e300])
def test_s_star_exact_for_one_huge_cell(us5, formulation, cell):
    """Only one demand cell: s* x cell is the same served load whatever the cell's size."""
    one = tf.demand_scale_limit(_only_cell(us5, 1.0), formulation=formulation)
    big = tf.demand_scale_limit(_only_cell(us5, cell), formulation=formulation)
    assert big.max_scale * cell == pytest.approx(one.max_scale, rel=1e-9)
    assert big.binding == one.binding and "  " not in big.binding


def test_demand_resolution_is_one_token_per_hour():
    assert DEMAND_RESOLUTION == pytest.approx(1e-6)  # M tokens/h


# ----------------------------------------------------------------------------- s* at scale

def _star(n: int, seed: int = 0) -> tf.Scenario:
    """A hub linked to ``n - 1`` leaves, every node with compute (workloads of us20)."""
    from tokenflow.scenarios.synthetic import star_network

    return star_network(n, seed)


NETWORKS = {
    "synthetic 60, loose limits": lambda: (tf.synthetic_network(60, seed=3), {w: 1e4 for w in
                                                                              tf.load_scenario("us20").workload_ids}),
    "synthetic 60, scenario limits": lambda: (tf.synthetic_network(60, seed=3), None),
    "synthetic 40, tight chat limit": lambda: (tf.synthetic_network(40, seed=1), {"chat": 12.0}),
    "star 60": lambda: (_star(60), None),
    "star 60, thin links": lambda: (_star(60).replace(params={"link_bandwidth_gbps": 2.0}), None),
}


@pytest.mark.parametrize("net", [pytest.param(n, marks=pytest.mark.slow) if n == "synthetic 60, scenario limits"
                                 else n for n in sorted(NETWORKS)])
def test_path_s_star_from_arc_seed_equals_plain_column_generation(net, monkeypatch):
    """The path formulation's s* started from the arc solution's routes (used on large
    networks) equals plain column generation, and the arc s* where both describe one market."""
    import tokenflow.clearing.scale_limit as sl

    s, lat = NETWORKS[net]()
    try:
        plain = tf.demand_scale_limit(s, formulation="path", latency_limits_ms=lat)
    except tf.ScenarioError as exc:  # e.g. unreachable demand: both must refuse alike
        monkeypatch.setattr(sl, "ARC_SEED_MIN_NODES", 2)
        with pytest.raises(tf.ScenarioError, match=str(exc).split(":")[0]):
            tf.demand_scale_limit(s, formulation="path", latency_limits_ms=lat)
        return
    monkeypatch.setattr(sl, "ARC_SEED_MIN_NODES", 2)
    m = Market(s, formulation="path", latency_limits_ms=lat)
    seeded = m.scale_limit()
    assert seeded.max_scale == pytest.approx(plain.max_scale, rel=1e-7)
    arc = Market(s, formulation="arc", latency_limits_ms=lat)
    if bool(np.all(arc.arc.com_o == -1)):  # no latency limit binds: one market
        assert arc.scale_limit().max_scale == pytest.approx(plain.max_scale, rel=1e-7)
    else:  # the arc LP is a relaxation
        assert arc.scale_limit().max_scale >= plain.max_scale * (1 - 1e-7)


@pytest.mark.slow
def test_path_s_star_of_a_1005_node_star_within_10x_of_arc():
    import time

    s = _star(1005)
    t0 = time.perf_counter()
    a = Market(s, formulation="arc").scale_limit()
    t_arc = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = Market(s, formulation="path").scale_limit()
    t_path = time.perf_counter() - t0
    assert p.max_scale == pytest.approx(a.max_scale, rel=1e-7)
    assert t_path < 10 * max(t_arc, 1.0)


@pytest.mark.parametrize("formulation", FORMS)
def test_s_star_with_demand_only_lost_load_can_serve(us5, formulation):
    """With a VoLL, demand out of reach of compute clears as lost load; s* (every token
    served) is then 0, and says why (it used to name a node 'full' or no cause at all)."""
    m = Market(us5, formulation=formulation, value_of_lost_load=1.0, latency_limits_ms={"chat": 0.0})
    lim = m.scale_limit(capacity_mw={"silicon_valley": 0.0})
    assert lim.max_scale == 0.0 and not math.copysign(1.0, lim.max_scale) < 0
    assert "unreachable demand: chat at node 'silicon_valley'" in lim.binding
    r = m.solve(demand_scale=3)
    sv = float(r.dataset["unserved"].sel(node="silicon_valley", workload="chat"))
    assert sv == pytest.approx(3 * float(us5.demand.sel(node="silicon_valley", workload="chat")), rel=1e-9)
    assert float(r.prices.sel(node="silicon_valley", workload="chat")) == pytest.approx(1.0, rel=1e-12)
