"""Latency limits remove exactly the paths whose round trip exceeds them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.clearing.engine import Market
from tokenflow.scenarios.network import haversine_km


def brute_force_rtt(s: tf.Scenario) -> dict[tuple[str, str], float]:
    """Shortest round trip between every pair by enumerating all simple paths."""
    nodes = s.nodes
    adj: dict[str, dict[str, float]] = {n: {} for n in s.node_ids}
    for _, link in s.links.iterrows():
        a, b = link["a"], link["b"]
        km = haversine_km(nodes.loc[a, "lat"], nodes.loc[a, "lon"], nodes.loc[b, "lat"], nodes.loc[b, "lon"])
        ms = km * s.params["route_factor"] * s.params["fiber_delay_us_per_km"] / 1000
        adj[a][b] = adj[b][a] = ms
    best = {}
    for o in s.node_ids:
        best[(o, o)] = 0.0
        stack = [(o, [o], 0.0)]
        while stack:
            u, path, d = stack.pop()
            for v, w in adj[u].items():
                if v in path:
                    continue
                key = (o, v)
                best[key] = min(best.get(key, np.inf), 2 * (d + w))
                stack.append((v, path + [v], d + w))
    return best


@pytest.mark.parametrize("limit", [5.0, 15.0, 30.0, 60.0, 100.0])
def test_reachable_processing_nodes_match_brute_force(us5, limit):
    rtt = brute_force_rtt(us5)
    m = Market(us5, latency_limits_ms={"chat": limit})
    m.solve(demand_scale=35)
    k = us5.workload_ids.index("chat")
    for o_i, o in enumerate(us5.node_ids):
        got = {us5.node_ids[n] for n in range(len(us5.node_ids)) if 2 * m._graph.latdist[o_i, n] <= limit + 1e-9}
        want = {n for n in us5.node_ids if rtt[(o, n)] <= limit}
        assert got == want, (o, limit)
    # every column switched on is within the limit, every column within the limit is on
    on = m._col_on()
    rtt_cols = m.cols.rtt_ms(m.inp)
    sel = m.cols.k == k
    assert (rtt_cols[sel & on] <= limit + 1e-9).all() and (rtt_cols[sel & ~on] > limit).all()


def test_chat_at_15ms_stays_near(us5):
    r = tf.solve(us5, demand_scale=35, latency_limits_ms={"chat": 15})
    rtt = brute_force_rtt(us5)
    tr = r.dataset["transfers"].sel(workload="chat")
    for o, n in itertools.product(us5.node_ids, us5.node_ids):
        if rtt[(o, n)] > 15:
            assert float(tr.sel(origin=o, node=n)) == 0.0
    # Silicon Valley has no compute within 15 ms but its own
    assert float(tr.sel(origin="silicon_valley").sum()) == pytest.approx(
        float(tr.sel(origin="silicon_valley", node="silicon_valley")))


def test_paths_are_loop_free_and_connected(us5):
    m = Market(us5)
    m.solve(demand_scale=35)
    inp = m.inp
    for o, n, arcs in zip(m.cols.pool.origin, m.cols.pool.target, m.cols.pool.arcs):
        if not arcs:
            assert o == n
            continue
        visited = [inp.au[arcs[0]]] + [inp.av[a] for a in arcs]
        assert len(set(visited)) == len(visited) and visited[-1] == n
        for a, b in zip(arcs[:-1], arcs[1:], strict=False):
            assert inp.av[a] == inp.au[b]
