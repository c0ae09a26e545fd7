"""The persistent engine: exact pricing, in-place re-solves equal fresh solves, checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.clearing.engine import Market
from tokenflow.lp.inputs import build_inputs
from tokenflow.lp.routes import Graph, arc_lengths, cheapest, rcsp


def simple_paths(inp, o: int):
    """Every loop-free route from ``o``: (target, arcs)."""
    out = [(o, ())]
    stack = [(o, (), {o})]
    while stack:
        u, arcs, seen = stack.pop()
        for a in np.nonzero(inp.au == u)[0]:
            v = int(inp.av[a])
            if v in seen:
                continue
            route = (*arcs, int(a))
            out.append((v, route))
            stack.append((v, route, seen | {v}))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_rcsp_equals_brute_force_enumeration(seed):
    """Cheapest admissible route (latency within the limit) by label setting equals the
    minimum over all loop-free paths, with limits that bind and random rents."""
    rng = np.random.default_rng(seed)
    s = tf.synthetic_network(7, seed=seed, degree=3)
    inp = build_inputs(s)
    G = Graph(inp)
    rho = rng.uniform(0, 0.05, inp.L) * (rng.random(inp.L) < 0.5)
    mu = rng.uniform(0, 0.02, inp.N) * (rng.random(inp.N) < 0.5)
    finite = G.latdist[np.isfinite(G.latdist)]
    inp.latency_ms[:] = 2 * rng.uniform(np.percentile(finite, 20), np.percentile(finite, 70), inp.K)
    lengths = arc_lengths(inp, rho, True)
    node_cost = inp.proc_cost + inp.intensity[None, :] * mu[:, None]
    best = cheapest(inp, G, mu, rho, np.ones((inp.N, inp.K), dtype=bool))
    n_binding = 0
    for o in range(inp.N):
        paths = simple_paths(inp, o)
        for k in range(inp.K):
            lat_ok = [(n, arcs) for n, arcs in paths
                      if 2 * inp.arc_latency_ms[list(arcs)].sum() <= inp.latency_ms[k] + 1e-9
                      and inp.capacity_kw[n] > 0]
            want = min((node_cost[n, k] + lengths[k][list(arcs)].sum() for n, arcs in lat_ok), default=None)
            free = min(node_cost[n, k] + lengths[k][list(arcs)].sum() for n, arcs in paths if inp.capacity_kw[n] > 0)
            if want is None:
                assert (o, k) not in best
                continue
            n_binding += want > free + 1e-12
            assert best[(o, k)][0] == pytest.approx(want, rel=1e-9, abs=1e-12)
            # per target: rcsp gives the cheapest admissible route to every node
            targets = {n: np.inf for n in range(inp.N) if n != o}
            got = rcsp(G, o, lengths[k], inp.latency_ms[k] / 2, targets)
            for n in targets:
                cands = [lengths[k][list(arcs)].sum() for t, arcs in lat_ok + [(t, a) for t, a in paths
                                                                              if inp.capacity_kw[t] == 0
                                                                              and 2 * inp.arc_latency_ms[list(a)].sum()
                                                                              <= inp.latency_ms[k] + 1e-9]
                         if t == n]
                if cands:
                    assert got[n][0] == pytest.approx(min(cands), rel=1e-9, abs=1e-12)
                    assert 2 * inp.arc_latency_ms[list(got[n][1])].sum() <= inp.latency_ms[k] + 1e-9
                else:
                    assert n not in got
    if seed == 0:
        assert n_binding > 0  # the limits really bind somewhere


def test_column_generation_is_exact_with_binding_limits():
    """Path LP with binding limits: the optimum over generated columns equals the optimum
    over every admissible loop-free path (all columns given up front)."""
    from tokenflow.lp.model import PathColumns

    for seed in range(4):
        s = tf.synthetic_network(7, seed=seed, degree=3)
        m = Market(s, latency_limits_ms={"chat": 12.0, "code_review": 20.0})
        s_star = m.scale_limit().max_scale
        r = m.solve(demand_scale=0.8 * s_star)
        full = Market(s, latency_limits_ms={"chat": 12.0, "code_review": 20.0})
        full.cols = PathColumns()
        items = []
        for o in range(full.inp.N):
            for n, arcs in simple_paths(full.inp, o):
                if full.inp.capacity_kw[n] > 0:
                    items += [(o, n, arcs, k) for k in range(full.inp.K)]
        full.cols.add(items)
        full._ent = None
        arr, _ = full._path_arrays(0.8 * s_star)
        full._main.sync(arr)
        assert full._main.run() == "optimal"
        assert r.objective == pytest.approx(full._main.solution()[2], rel=1e-9)


def _assert_same(a: tf.MarketResult, b: tf.MarketResult) -> None:
    assert a.objective == pytest.approx(b.objective, rel=1e-9)
    np.testing.assert_allclose(a.prices.values, b.prices.values, rtol=1e-7, atol=1e-9)


def _random_change(rng, s: tf.Scenario) -> dict:
    kind = rng.integers(9)
    node = str(rng.choice(s.node_ids))
    wl = str(rng.choice(s.workload_ids))
    link = str(rng.choice(list(s.links.index)))
    if kind == 0:
        return {"demand_scale": float(rng.uniform(5, 45))}
    if kind == 1:
        return {"demand": {node: {wl: float(s.demand.sel(node=node, workload=wl)) * rng.uniform(0, 2)}}}
    if kind == 2:
        return {"electricity_usd_per_kwh": {node: float(rng.uniform(0.05, 0.2))}}
    if kind == 3:
        return {"capacity_mw": {node: float(s.nodes.loc[node, "capacity_mw"] * rng.uniform(0.5, 1.5))}}
    if kind == 4:
        return {"link_bandwidth_gbps": {link: float(rng.uniform(50, 200))}}
    if kind == 5:
        return {"transfer_cost_usd_per_gb": float(rng.uniform(0.0, 0.01))}
    if kind == 6:
        return {"latency_limits_ms": {wl: float(rng.choice([8.0, 15.0, 30.0, 100.0, 1000.0]))}}
    if kind == 7:
        return {"other_opex_usd_per_kwh": float(rng.uniform(0, 0.05))}
    return {"value_of_lost_load": None if rng.random() < 0.5 else float(rng.uniform(0.2, 2.0))}


def _fresh(m: Market):
    st = m.settings
    try:
        return tf.solve(m.scenario, **st)
    except tf.TokenflowError as exc:
        return exc


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("formulation", ["path", "arc"])
def test_random_change_sequences_equal_fresh_solves(us5, seed, formulation):
    rng = np.random.default_rng(seed)
    m = Market(us5, formulation=formulation)
    m.solve(demand_scale=30)
    _check_change_sequence(m, rng, 12)


def _check_change_sequence(m: Market, rng: np.random.Generator, n: int) -> None:
    """``n`` random in-place changes, each solved warm and compared with a fresh solve
    (same exception class, and the same s* for an infeasible market)."""
    for _ in range(n):
        ch = _random_change(rng, m.scenario)
        try:
            got = m.solve(**ch)
        except tf.TokenflowError as exc:
            got = exc
        want = _fresh(m)
        if isinstance(want, Exception) or isinstance(got, Exception):
            assert type(got) is type(want), (ch, got, want)
            if isinstance(want, tf.InfeasibleMarketError):
                assert got.max_scale == pytest.approx(want.max_scale, rel=1e-7)
            continue
        _assert_same(got, want)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4, 24))
def test_many_random_change_sequences(us5, seed):
    rng = np.random.default_rng(seed)
    _check_change_sequence(Market(us5), rng, 15)


def test_scale_limit_through_the_engine_matches_after_changes(us5):
    m = Market(us5)
    a = m.scale_limit().max_scale
    m.solve(demand_scale=20)
    assert m.scale_limit().max_scale == a
    m.solve(capacity_mw={"dallas": float(us5.nodes.loc["dallas", "capacity_mw"]) * 0.5})
    assert m.scale_limit().max_scale == pytest.approx(tf.max_demand_scale(m.scenario), rel=1e-9)
    assert m.scale_limit().max_scale < a


# ----------------------------------------------------------------------------- zero demand

def test_price_at_zero_demand_is_first_token_cost_in_both_formulations(us5):
    path = tf.solve(us5, demand_scale=0)
    arc = tf.solve(us5, demand_scale=0, formulation="arc")
    np.testing.assert_allclose(path.prices.values, arc.prices.values, rtol=1e-9)
    assert (path.prices.values > 0).all()
    dec = path.price_decomposition()
    assert float(abs(dec["residual"]).max()) <= 1e-12
    # with no rents, the price is the cheapest processing cost + transfer within the limit
    cheap = tf.solve(us5, demand_scale=1e-6)
    np.testing.assert_allclose(path.prices.values, cheap.prices.values, rtol=1e-6)


def test_zero_demand_row_priced_at_congested_rents(tiny_doc, load_doc):
    """A node without demand next to a congested one: its price is the marginal cost of its
    first token at the current rents, equal in both formulations."""
    tiny_doc["links"][0]["bandwidth_gbps"] = 1.0
    tiny_doc["nodes"]["B"]["demand_mtok_per_h"] = {"w": 6000.0}
    s = load_doc(tiny_doc)
    p, a = tf.solve(s), tf.solve(s, formulation="arc")
    assert float(p.prices.sel(node="A", workload="w")) == pytest.approx(0.10, rel=1e-9)
    np.testing.assert_allclose(p.prices.values, a.prices.values, rtol=1e-9)


# ----------------------------------------------------------------------------- numerics

def test_tiny_payload_and_bandwidth_not_silently_violated(us5):
    s = us5.replace(workloads={w: {"payload_bytes_per_token": 1e-7} for w in us5.workload_ids},
                    params={"link_bandwidth_gbps": 1e-12})
    try:
        r = tf.solve(s, demand_scale=1)
    except (tf.SolverError, tf.ScenarioError, tf.InfeasibleMarketError):
        return
    assert float(r.link_utilization.max()) <= 1 + 1e-6


def test_mixed_tiny_payload_is_refused_not_truncated(us5):
    s = us5.replace(workloads={"chat": {"payload_bytes_per_token": 1e-7}})
    with pytest.raises(tf.ScenarioError, match="orders of magnitude"):
        tf.solve(s)


@pytest.mark.parametrize("scale", [1e3, 1e16, 1e300])
def test_huge_demand_scale_is_infeasible_with_s_star(us5, scale):
    with pytest.raises(tf.InfeasibleMarketError) as ei:
        tf.solve(us5, demand_scale=scale)
    assert ei.value.max_scale == pytest.approx(tf.max_demand_scale(us5), rel=1e-9)


def test_wrong_solution_is_refused():
    from tokenflow.lp.solver import verify

    s = tf.load_scenario("us5")
    m = Market(s)
    m.solve(demand_scale=30)
    arr = m._main.arr
    x, y, _ = m._main.solution()
    verify(arr, x, y, str, str)
    bad = x.copy()
    bad[-1] += 1e6
    with pytest.raises(tf.SolverError, match="violated"):
        verify(arr, bad, y, m._row_name(m.inp.N * m.inp.K), str)
    ybad = y.copy()
    ybad[m.inp.N * m.inp.K] = 5.0  # a compute row's dual of the wrong sign
    with pytest.raises(tf.SolverError, match="dual"):
        verify(arr, x, ybad, m._row_name(m.inp.N * m.inp.K), str)


# ----------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("call, needle", [
    (lambda s: tf.solve("us5"), "scenario"),
    (lambda s: tf.solve(s, transfer_aware="yes"), "transfer_aware"),
    (lambda s: tf.solve(s, latency_limits_ms=[15, 20]), "latency_limits_ms"),
    (lambda s: tf.solve(s, latency_limits_ms={"chat": "fast"}), "latency_limits_ms.chat"),
    (lambda s: tf.solve(s, demand_scale="x"), "demand_scale"),
    (lambda s: tf.solve(s, demand_scale=float("nan")), "demand_scale"),
    (lambda s: tf.solve(s, demand_scale=True), "demand_scale"),
    (lambda s: tf.solve(s, formulation="tree"), "formulation"),
    (lambda s: tf.solve(s, value_of_lost_load=-1.0), "value_of_lost_load"),
    (lambda s: tf.solve(s, value_of_lost_load={"nope": 1.0}), "value_of_lost_load"),
    (lambda s: tf.max_demand_scale(s, transfer_aware="no"), "transfer_aware"),
    (lambda s: tf.demand_scale_limit(None), "scenario"),
    (lambda s: tf.Market(s, formulation=3), "formulation"),
    (lambda s: tf.Market(s).solve(bandwidth=3), "bandwidth"),
    (lambda s: tf.Market(s).solve(capacity_mw=[1, 2]), "capacity_mw"),
    (lambda s: tf.Market(s).solve(link_bandwidth_gbps=-1), "link_bandwidth_gbps"),
    (lambda s: tf.Market(s).solve(scenario=tf.load_scenario("us20")), "structural"),
    (lambda s: tf.Market(s).link_load_range(["nowhere->x"]), "links"),
    (lambda s: tf.export_lp(s, "x.mps", demand_scale=-1), "demand_scale"),
    (lambda s: tf.export_lp(s, "x.txt"), "path"),
    (lambda s: tf.export_lp(s, 5), "path"),
])
def test_bad_arguments_name_the_argument(us5, call, needle):
    with pytest.raises(tf.TokenflowError, match=needle):
        call(us5)


def test_value_of_lost_load_one_number_applies_to_every_workload(us5):
    s_star = tf.max_demand_scale(us5)
    one = tf.solve(us5, demand_scale=1.2 * s_star, value_of_lost_load=1.5)
    each = tf.solve(us5, demand_scale=1.2 * s_star, value_of_lost_load={w: 1.5 for w in us5.workload_ids})
    assert one.objective == pytest.approx(each.objective, rel=1e-12)
    assert float(one.dataset["unserved"].sum()) > 0


# ----------------------------------------------------------------------------- export

def test_export_lp_refuses_infeasible_unless_forced(us5, tmp_path):
    s_star = tf.max_demand_scale(us5)
    with pytest.raises(tf.InfeasibleMarketError):
        tf.export_lp(us5, tmp_path / "x.mps", demand_scale=2 * s_star)
    assert not list(tmp_path.iterdir())
    path = tf.export_lp(us5, tmp_path / "x.mps", demand_scale=2 * s_star, force=True)
    assert path.stat().st_size > 0


def test_export_lp_errors_name_the_cause(us5, tmp_path):
    with pytest.raises(tf.TokenflowError, match="does not exist"):
        tf.export_lp(us5, tmp_path / "missing" / "x.mps")
    (tmp_path / "d.mps").mkdir()
    with pytest.raises(tf.TokenflowError, match="directory"):
        tf.export_lp(us5, tmp_path / "d.mps")


def test_export_lp_formats_agree(us5, tmp_path):
    import highspy

    want = tf.solve(us5, demand_scale=35).objective
    for name in ("m.mps", "m.lp"):
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.readModel(str(tf.export_lp(us5, tmp_path / name, demand_scale=35)))
        h.run()
        assert h.getInfo().objective_function_value == pytest.approx(want, rel=1e-9)


# ----------------------------------------------------------------------------- link load range

def test_link_load_range_finds_a_known_tie(tiny_doc, load_doc):
    """Demand at A; B and C process at the same cost and sit at the same distance from A:
    any split between A->B and A->C is optimal, so their loads are not unique."""
    doc = tiny_doc
    doc["nodes"]["A"]["capacity_mw"] = 0.0
    doc["nodes"]["A"]["demand_mtok_per_h"] = {"w": 1000.0}
    doc["nodes"]["B"]["lat"], doc["nodes"]["B"]["lon"] = 40.0, -100.0
    doc["nodes"]["C"] = {"lat": 30.0, "lon": -100.0, "population": 0, "electricity_usd_per_kwh": 0.20,
                         "capacity_mw": 10.0}
    doc["links"].append({"a": "A", "b": "C"})
    s = load_doc(doc)
    for formulation in ("path", "arc"):
        ds = tf.Market(s, formulation=formulation).link_load_range()
        load = 1000.0 * 0.1  # GB/h of 100-B tokens
        assert float(ds["min_load"].sel(link="A->B")) == pytest.approx(0.0, abs=1e-6)
        assert float(ds["max_load"].sel(link="A->B")) == pytest.approx(load, rel=1e-6)
        assert not bool(ds["unique"].sel(link="A->C"))
        # B->A carries nothing but what the cost row's slack allows
        assert bool(ds["unique"].sel(link="B->A")) and float(ds["max_load"].sel(link="B->A")) <= 1e-4
        assert ds.attrs["exact"] == 1


def test_link_load_range_unique_on_us5(us5):
    m = tf.Market(us5)
    r = m.solve(demand_scale=35)
    ds = m.link_load_range()
    sat = r.saturated_links()
    assert ds["max_utilization"].sel(link=sat).min() >= 1 - 1e-6
    u = r.link_utilization.sel(link=ds["link"])
    assert ((ds["min_utilization"] <= u + 1e-6) & (u <= ds["max_utilization"] + 1e-6)).all()


# ----------------------------------------------------------------------------- results

def test_result_records_choices_and_is_lazy(us5):
    r = tf.Market(us5).solve(demand_scale=10)
    assert r._ds is None  # nothing built yet
    assert isinstance(r.objective, float) and r.prices.dims == ("node", "workload")
    assert r._ds is None
    assert isinstance(r.choices, dict)
    assert "choices" in r.dataset.attrs


def test_linopy_view_is_the_same_lp(us5):
    m = tf.Market(us5)
    r = m.solve(demand_scale=35)
    lm = m.linopy_model()
    lm.solve(solver_name="highs", io_api="direct", progress=False, output_flag=False)
    assert float(lm.objective.value) == pytest.approx(r.objective, rel=1e-9)
    assert set(lm.constraints) == {"demand", "compute", "bandwidth"}


def test_market_exported(us5):
    assert tf.Market is Market
    assert list(itertools.islice(tf.Market.__init__.__code__.co_varnames, 1, 2)) == ["scenario"]


# ----------------------------------------------------------------------------- loops through the engine

def test_pooled_solves_equal_fresh_solves(us5):
    from tokenflow.clearing.engine import pooled_solve
    from tokenflow.studies.sweep import apply_inputs

    rng = np.random.default_rng(7)
    for _ in range(6):
        point = {"param.link_bandwidth_gbps": float(rng.uniform(60, 200)),
                 "workload.chat.payload_bytes_per_token": float(rng.uniform(20, 400)),
                 "param.route_factor": float(rng.uniform(1.3, 2.4))}
        s2, _ = apply_inputs(us5, point)
        for kw in ({"demand_scale": 30.0}, {"demand_scale": 30.0, "transfer_aware": False},
                   {"demand_scale": 30.0, "latency_limits_ms": {"chat": 15.0}}):
            _assert_same(pooled_solve(s2, **kw), tf.solve(s2, **kw))


def test_latency_sweep_equals_fresh_solves(us5):
    from tokenflow.studies.analysis import latency_sweep

    limits = [100.0, 30.0, 15.0, 8.0, 60.0]
    sw = latency_sweep(us5, "chat", limits, demand_scale=35)
    for lim in limits:
        want = tf.solve(us5, demand_scale=35, latency_limits_ms={"chat": lim}).prices.sel(workload="chat")
        np.testing.assert_allclose(sw["price"].sel(latency_limit_ms=lim).values, want.values, rtol=1e-7)


def test_both_directions_path_equals_arc_and_changes_in_place(us5):
    s = us5.with_choices(payload_direction="both")
    m = Market(s)
    for scale in (20.0, 35.0, 45.0):
        got = m.solve(demand_scale=scale)
        _assert_same(got, tf.solve(s, demand_scale=scale))
        arc = tf.solve(s, demand_scale=scale, formulation="arc")
        assert got.objective == pytest.approx(arc.objective, rel=1e-9)
    assert m.solve(demand_scale=0).prices.values == pytest.approx(
        tf.solve(s, demand_scale=0, formulation="arc").prices.values, rel=1e-9)
    assert json_choice(got) == "both"


def json_choice(r: tf.MarketResult) -> str:
    return r.choices.get("payload_direction", "")


def test_pricing_alone_or_stacked_finds_the_same_columns(monkeypatch):
    """routes.price checks reduced costs for all workloads in one array on small networks and
    one workload at a time on large ones (PRICE_STACK_MAX): the same columns either way."""
    from tokenflow.lp import routes

    s = tf.load_scenario("us20")
    kw = {"demand_scale": 25.0, "latency_limits_ms": {"chat": 20.0}}
    stacked = tf.solve(s, **kw)
    monkeypatch.setattr(routes, "PRICE_STACK_MAX", 0)
    alone = tf.solve(s, **kw)
    assert stacked.dataset.attrs["cg_rounds"] > 1  # (columns were searched for and added)
    assert alone.dataset.attrs["n_variables"] == stacked.dataset.attrs["n_variables"]
    assert alone.dataset.attrs["cg_rounds"] == stacked.dataset.attrs["cg_rounds"]
    assert alone.objective == stacked.objective
    np.testing.assert_array_equal(alone.prices.values, stacked.prices.values)
