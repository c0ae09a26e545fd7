"""Latency limits remove exactly the paths whose round trip exceeds them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.market import prepare
from tokenflow.network import haversine_km


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
    md = prepare(us5, latency_limits_ms={"chat": limit})
    k = us5.workload_ids.index("chat")
    for o_i, o in enumerate(us5.node_ids):
        sel = (md.col_origin == o_i) & (md.col_workload == k)
        got = {us5.node_ids[n] for n in md.col_node[sel]}
        want = {n for n in us5.node_ids if rtt[(o, n)] <= limit}
        assert got == want, (o, limit)
        # every column kept is within the limit
        assert (md.paths.rtt_ms[md.col_path[sel]] <= limit + 1e-9).all()


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
    md = prepare(us5)
    arcs = md.arcs
    for i in range(len(md.paths)):
        seq = md.paths.arc_list(i)
        if len(seq) == 0:
            assert md.paths.origin[i] == md.paths.target[i]
            continue
        visited = [arcs["origin"].iloc[seq[0]]] + [arcs["target"].iloc[a] for a in seq]
        assert len(set(visited)) == len(visited)
        for a, b in zip(seq[:-1], seq[1:], strict=False):
            assert arcs["target"].iloc[a] == arcs["origin"].iloc[b]
