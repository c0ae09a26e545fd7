"""Geometry, latency and candidate paths of a scenario's fibre network.

Latency model: one-way latency of a link = great-circle distance (km) x route
factor x fibre delay (us/km) / 1000.  A path's round-trip time (RTT, ms) is
twice the sum of its links' one-way latencies; processing at the origin has
RTT 0.  Each fibre link gives two directed arcs ``"a->b"`` and ``"b->a"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from .scenario_class import Scenario

EARTH_RADIUS_KM = 6371.0


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km (spherical Earth, R = 6371 km); works on arrays."""
    p1, l1, p2, l2 = map(np.radians, (lat1, lon1, lat2, lon2))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h))


def link_table(s: Scenario) -> pd.DataFrame:
    """Links with ``distance_km`` (great circle), ``route_km`` and one-way ``latency_ms``."""
    links = s.links.copy()
    links["bandwidth_gbps"] = s.link_bandwidth_gbps
    links["transfer_cost_usd_per_gb"] = s.link_transfer_cost
    na, nb = s.nodes.loc[links["a"]], s.nodes.loc[links["b"]]
    d = haversine_km(na["lat"].values, na["lon"].values, nb["lat"].values, nb["lon"].values)
    links["distance_km"] = d
    links["route_km"] = d * s.params["route_factor"]
    links["latency_ms"] = links["route_km"] * s.params["fiber_delay_us_per_km"] / 1000.0
    return links


def arc_table(s: Scenario) -> pd.DataFrame:
    """Directed arcs (index ``link`` = ``"a->b"``) with origin, target, fibre link id,
    capacity (Gbps), transfer cost ($/GB) and one-way latency (ms)."""
    lt = link_table(s)
    a, b = lt["a"].to_numpy(dtype=object), lt["b"].to_numpy(dtype=object)
    origin, target = np.empty(2 * len(lt), dtype=object), np.empty(2 * len(lt), dtype=object)
    origin[0::2], origin[1::2], target[0::2], target[1::2] = a, b, b, a  # each link: a->b, then b->a
    cols = {"origin": origin, "target": target, "fibre": np.repeat(lt.index.to_numpy(dtype=object), 2)}
    for c in ("bandwidth_gbps", "transfer_cost_usd_per_gb", "latency_ms", "distance_km"):
        cols[c] = np.repeat(lt[c].to_numpy(), 2)
    return pd.DataFrame(cols, index=pd.Index([f"{u}->{v}" for u, v in zip(origin, target)], name="link"))


@dataclass(frozen=True)
class PathSet:
    """Candidate paths between every ordered node pair.

    ``od`` arrays are aligned: path ``i`` goes from ``origin[i]`` to ``target[i]``
    (node positions), has round-trip time ``rtt_ms[i]`` and uses the arcs
    ``arcs[ptr[i]:ptr[i+1]]`` (arc positions in :func:`arc_table` order).
    Local processing (origin == target, no arcs, RTT 0) is included for every node.
    """

    origin: np.ndarray
    target: np.ndarray
    rtt_ms: np.ndarray
    ptr: np.ndarray
    arcs: np.ndarray

    def __len__(self) -> int:
        return len(self.origin)

    def arc_list(self, i: int) -> np.ndarray:
        return self.arcs[self.ptr[i]:self.ptr[i + 1]]


def candidate_paths(s: Scenario, k: int | None = None) -> PathSet:
    """Up to ``k`` loop-free paths per ordered pair, shortest by latency, with distinct
    first hops: for each neighbour j of the origin, the arc o->j followed by the
    latency-shortest path from j (kept if it does not return to o).  The first of
    them is the shortest path.  ``k`` defaults to the scenario's ``paths_per_pair``.
    """
    k = int(s.params["paths_per_pair"] if k is None else k)
    nodes = s.node_ids
    pos = {n: i for i, n in enumerate(nodes)}
    arcs = arc_table(s)
    n = len(nodes)
    au = np.array([pos[u] for u in arcs["origin"]], dtype=np.int64)
    av = np.array([pos[v] for v in arcs["target"]], dtype=np.int64)
    w = arcs["latency_ms"].to_numpy()
    arc_id = {(int(u), int(v)): i for i, (u, v) in enumerate(zip(au, av, strict=False))}
    if len(w):
        # tiny positive floor so zero-length links still count as an edge in csgraph
        graph = csr_array((np.maximum(w, 1e-9), (au, av)), shape=(n, n))
        dist, pred = dijkstra(graph, directed=True, return_predecessors=True)
    else:
        dist = np.where(np.eye(n, dtype=bool), 0.0, np.inf)
        pred = np.full((n, n), -9999)
    neighbours = [[] for _ in range(n)]
    for u, v, lat in zip(au, av, w, strict=False):
        neighbours[u].append((int(v), float(lat)))

    def sp_nodes(src: int, dst: int) -> list[int]:
        path = [dst]
        while path[-1] != src:
            path.append(int(pred[src, path[-1]]))
        return path[::-1]

    origin, target, rtt, ptr, arc_seq = [], [], [], [0], []
    for o in range(n):
        origin.append(o), target.append(o), rtt.append(0.0), ptr.append(len(arc_seq))
        for t in range(n):
            if t == o or not np.isfinite(dist[o, t]):
                continue
            cands = []
            for j, lat in neighbours[o]:
                if not np.isfinite(dist[j, t]):
                    continue
                rest = sp_nodes(j, t) if j != t else [t]
                if o in rest:
                    continue
                cands.append((lat + dist[j, t], [o, *rest]))
            cands.sort(key=lambda c: c[0])
            for length, seq in cands[:k]:
                origin.append(o), target.append(t), rtt.append(2.0 * length)
                arc_seq.extend(arc_id[(a, b)] for a, b in zip(seq[:-1], seq[1:], strict=False))
                ptr.append(len(arc_seq))
    return PathSet(np.array(origin, dtype=np.int64), np.array(target, dtype=np.int64),
                   np.array(rtt), np.array(ptr, dtype=np.int64), np.array(arc_seq, dtype=np.int64))


def path_labels(s: Scenario, ps: PathSet, paths: np.ndarray) -> list[str]:
    """Human-readable ``"a > b > c"`` for each path index in ``paths`` (``"a"`` when local)."""
    nodes = s.node_ids
    target = arc_table(s)["target"].to_numpy()
    return [" > ".join([nodes[ps.origin[i]], *target[ps.arc_list(i)]]) for i in paths]


def short_name(node: str) -> str:
    """Display name of a node id, e.g. "n_virginia" -> "N. Virginia"."""
    return {"silicon_valley": "Silicon Valley", "n_virginia": "N. Virginia", "new_york": "New York",
            "los_angeles": "Los Angeles", "salt_lake_city": "Salt Lake City", "san_antonio": "San Antonio",
            "seattle_quincy": "Seattle/Quincy", "des_moines": "Des Moines"}.get(node, node.replace("_", " ").title())
