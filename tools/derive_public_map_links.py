"""Derive tokenflow/data/public_map_links.csv: metro-to-metro links that a public U.S.
long-haul backbone map shows between the metros of us5 and us20.

Source: the Internet Topology Zoo's ``AttMpls.gml`` (AT&T North America IP/MPLS backbone,
network date 2007-2008, transcribed by the Zoo from AT&T's published map
http://www.att.com/Common/merger/files/pdf/wired-network/Domestic_0C-768_Network.pdf;
Knight et al., "The Internet Topology Zoo", IEEE JSAC 29(9), 2011; http://www.topology-zoo.org/).
Each Zoo node has a city label and coordinates; each edge is a link of the map.  The copy
read for the packaged CSV (2026-12-02) is the one redistributed in the GitHub repository
kucejan/unroller, ``topologies/topology-zoo/AttMpls.gml`` (commit 2b6e5c65d330); it lists a
LA03-PHNX edge twice (once commented out), which counts once here.

Rule (issue 14, item 5):
* a source node is matched to the nearest scenario metro within ``RADIUS_KM`` (great-circle
  distance between the Zoo coordinates and the scenario's node coordinates), else unmatched;
* two metros get a link when the source's shortest route (sum of great-circle lengths of its
  links) between their matched source nodes passes through no other matched source node.
  (Any path through unmatched nodes would join almost every pair of metros, so the shortest
  route is the one the map says the traffic between the two cities takes.)

Usage::

    python tools/derive_public_map_links.py AttMpls.gml            # writes the CSV
    python tools/derive_public_map_links.py AttMpls.gml --check    # compares with the CSV

The raw ``.gml`` file is not committed (download it from topology-zoo.org).
"""

from __future__ import annotations

import argparse
import heapq
import os
import re
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tokenflow.scenarios.network import haversine_km  # noqa: E402
from tokenflow.scenarios.scenario import load_scenario  # noqa: E402

RADIUS_KM = 80.0
OUT = ROOT / "tokenflow" / "data" / "public_map_links.csv"
SOURCE = ("Internet Topology Zoo AttMpls.gml (AT&T North America, 2007-2008; "
          "http://www.topology-zoo.org/, from "
          "http://www.att.com/Common/merger/files/pdf/wired-network/Domestic_0C-768_Network.pdf; "
          "Knight et al. IEEE JSAC 29(9) 2011)")
ACCESSED = "2026-12-02"


def read_gml(path: Path) -> tuple[dict[int, tuple[str, float, float]], list[tuple[int, int]]]:
    """Nodes (id -> (label, lat, lon)) and edges (id pairs) of a Topology Zoo GML file."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    nodes: dict[int, tuple[str, float, float]] = {}
    for block in re.findall(r"node\s*\[(.*?)\]", text, flags=re.S):
        i = int(re.search(r"\bid\s+(-?\d+)", block).group(1))
        lab = re.search(r'\blabel\s+"([^"]*)"', block).group(1)
        lat, lon = re.search(r"\bLatitude\s+(\S+)", block), re.search(r"\bLongitude\s+(\S+)", block)
        if lat and lon:
            nodes[i] = (lab, float(lat.group(1)), float(lon.group(1)))
    edges = []
    for block in re.findall(r"edge\s*\[(.*?)\]", text, flags=re.S):
        a = int(re.search(r"\bsource\s+(\d+)", block).group(1))
        b = int(re.search(r"\btarget\s+(\d+)", block).group(1))
        if a in nodes and b in nodes and a != b:
            edges.append((min(a, b), max(a, b)))
    return nodes, sorted(set(edges))


def _km(nodes, a, b) -> float:
    return float(haversine_km(nodes[a][1], nodes[a][2], nodes[b][1], nodes[b][2]))


def _shortest(nodes, adj, a: int, b: int) -> list[int] | None:
    dist, prev, heap = {a: 0.0}, {}, [(0.0, a)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == b:
            break
        if d > dist[u]:
            continue
        for v in adj[u]:
            nd = d + _km(nodes, u, v)
            if nd < dist.get(v, float("inf")) - 1e-9:
                dist[v], prev[v] = nd, u
                heapq.heappush(heap, (nd, v))
    if b not in dist:
        return None
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


def derive(gml: Path, scenario: str) -> pd.DataFrame:
    """Metro pairs of ``scenario`` joined by the map (see module docstring), one row each."""
    s = load_scenario(scenario)
    nodes, edges = read_gml(gml)
    match: dict[int, str] = {}
    for i, (_, lat, lon) in nodes.items():
        d = {m: float(haversine_km(lat, lon, float(s.nodes.loc[m, "lat"]), float(s.nodes.loc[m, "lon"])))
             for m in s.node_ids}
        m = min(d, key=d.get)
        if d[m] <= RADIUS_KM:
            match[i] = m
    adj: dict[int, set[int]] = {i: set() for i in nodes}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    rows = {}
    ids = sorted(match)
    for x in ids:
        for y in ids:
            if x >= y or match[x] == match[y]:
                continue
            path = _shortest(nodes, adj, x, y)
            if path is None or any(p in match for p in path[1:-1]):
                continue
            a, b = sorted((match[x], match[y]))
            hops = "-".join(nodes[p][0] for p in path)
            km = sum(_km(nodes, u, v) for u, v in zip(path, path[1:]))
            rows.setdefault((a, b), (hops, km))
    out = pd.DataFrame([{"scenario": scenario, "a": a, "b": b, "source_links": h, "route_km": round(km, 1),
                         "source": SOURCE, "accessed": ACCESSED} for (a, b), (h, km) in sorted(rows.items())])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gml", type=Path, help="Topology Zoo AttMpls.gml")
    ap.add_argument("--check", action="store_true", help="compare with the packaged CSV, write nothing")
    args = ap.parse_args(argv)
    df = pd.concat([derive(args.gml, sc) for sc in ("us5", "us20")], ignore_index=True)
    if args.check:
        old = pd.read_csv(OUT)
        same = old[["scenario", "a", "b", "source_links"]].equals(df[["scenario", "a", "b", "source_links"]])
        print("same as packaged" if same else "DIFFERS from packaged")
        return 0 if same else 1
    fd, tmp = tempfile.mkstemp(dir=OUT.parent, suffix=".tmp")
    os.close(fd)
    df.to_csv(tmp, index=False)
    os.replace(tmp, OUT)
    print(df[["scenario", "a", "b", "source_links", "route_km"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
