"""Alternative fibre backbones for a scenario (topology sensitivity).

The packaged backbones are assumptions (``links_note`` of each scenario file): us5 has
seven hand-picked long-haul routes, us20 links each metro to its 3 nearest metros.  This
module builds the k-nearest-neighbour alternatives the same way ``tools/build_scenarios.py``
builds us20 (great-circle distance between the node coordinates of the scenario; links
symmetrised; components joined by their shortest bridging link) and swaps them into a
scenario.  A new link carries no per-link figures, so, exactly as every packaged link,
its bandwidth and transfer cost are the scenario-wide parameters and its length and
latency follow from the coordinates (:func:`tokenflow.scenarios.network.link_table`).
"""

from __future__ import annotations

import dataclasses
import numbers
import os

import numpy as np
import pandas as pd

from ..core import validate as _v
from ..core.errors import ScenarioError
from .network import haversine_km
from .scenario_class import Scenario
from .scenario_fields import LINK_FIELDS


def _distances(s: Scenario) -> pd.DataFrame:
    """Great-circle distance (km) between every pair of nodes of ``s`` (node x node)."""
    lat, lon = s.nodes["lat"].to_numpy(float), s.nodes["lon"].to_numpy(float)
    d = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    return pd.DataFrame(d, index=s.node_ids, columns=s.node_ids)


def check_k(k: object, n_nodes: int) -> int:
    """``k`` as an int in 1 .. n_nodes - 1, else :class:`ScenarioError` naming the range."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= int(k) <= n_nodes - 1:
        raise ScenarioError(f"topology: k (nearest neighbours per metro) must be a whole number from 1 to "
                            f"{n_nodes - 1} for {n_nodes} nodes, got {k!r}")
    return int(k)


def knn_links(s: Scenario, k: int) -> list[tuple[str, str]]:
    """Undirected links (sorted pairs, sorted list): each node of ``s`` linked to its ``k``
    nearest nodes by great-circle distance, then components joined by the shortest link
    between the component of the first node and the rest until the network is connected
    (the rule of ``tools/build_scenarios.py``).  Ties are broken by node id."""
    _v.scenario(s, "s", "knn_links")
    ids = s.node_ids
    k = check_k(k, len(ids))
    d = _distances(s)
    return knn_pairs(ids, lambda a, b: float(d.loc[a, b]), k)


def knn_pairs(ids: list[str], dist, k: int) -> list[tuple[str, str]]:
    """The k-nearest-neighbour rule on ``ids`` with distances ``dist(a, b)`` (km): each node
    linked to its ``k`` nearest (symmetrised), then components joined by the shortest link
    from the first node's component until connected; sorted pairs, sorted list.  Shared by
    :func:`knn_links` and ``tools/build_scenarios.py`` (which made the packaged backbones)."""
    links: set[tuple[str, str]] = set()
    for a in ids:
        near = sorted((dist(a, b), b) for b in ids if b != a)
        for _, b in near[:k]:
            links.add(tuple(sorted((a, b))))  # type: ignore[arg-type]
    while True:
        comp = {ids[0]}
        grew = True
        while grew:
            grew = False
            for a, b in links:
                if (a in comp) != (b in comp):
                    comp |= {a, b}
                    grew = True
        if len(comp) == len(ids):
            break
        _, a, b = min((dist(a, b), a, b) for a in comp for b in ids if b not in comp)
        links.add(tuple(sorted((a, b))))  # type: ignore[arg-type]
    return sorted(links)


def with_links(s: Scenario, links: list[tuple[str, str]], note: str = "") -> Scenario:
    """A copy of ``s`` with its backbone replaced by ``links`` (undirected node pairs).
    Links already in ``s`` keep their per-link figures; new ones use the scenario-wide
    bandwidth and transfer cost.  Unknown nodes, self-links or duplicates raise
    :class:`ScenarioError`."""
    _v.scenario(s, "s", "with_links")
    if not isinstance(note, str):
        raise ScenarioError(f"with_links: note must be a string, got {type(note).__name__}")
    pairs = _v.items_of(links, "links", "with_links", kind="(node, node) pairs")
    for p in pairs:
        if isinstance(p, (str, bytes)) or not hasattr(p, "__len__") or len(p) != 2 \
                or not all(isinstance(x, (str, np.str_)) for x in p):
            raise ScenarioError(f"with_links: links must be (node, node) pairs of node names, got {p!r:.80}")
    if len(s.node_ids) > 1 and not pairs:
        raise ScenarioError(f"with_links: no links between {len(s.node_ids)} nodes (a backbone must connect them)")
    nodes = set(s.node_ids)
    problems, rows = [], {}
    for a, b in pairs:
        a, b = str(a), str(b)
        lid = "--".join(sorted((str(a), str(b))))
        if a not in nodes or b not in nodes:
            problems.append(f"topology: link {a}--{b}: unknown node")
        elif a == b:
            problems.append(f"topology: link joins node {a!r} to itself")
        elif lid in rows:
            problems.append(f"topology: duplicate link {lid}")
        elif lid in s.links.index:
            rows[lid] = s.links.loc[lid].to_dict()
        else:
            rows[lid] = {"a": a, "b": b, **{f: np.nan for f in LINK_FIELDS}}
    if problems:
        raise ScenarioError(problems)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["a", "b", *LINK_FIELDS])
    frame.index.name = "link"
    title = f"{s.title} ({note})" if note else s.title
    out = dataclasses.replace(s, links=frame, title=title)
    if not is_connected(out):
        raise ScenarioError(f"with_links: the backbone leaves nodes unreachable from {s.node_ids[0]!r} "
                            "(every node must be connected)")
    return _relabel_links_provenance(out, len(frame), note)


def _relabel_links_provenance(s: Scenario, n_links: int, note: str) -> Scenario:
    """``s`` with the provenance row of its links (if any) describing the new backbone."""
    prov = getattr(s, "provenance", None)
    if not isinstance(prov, pd.DataFrame) or prov.empty:
        return s
    text = prov.astype(str)
    hit = np.zeros(len(prov), dtype=bool)
    for col in [c for c in ("field", "parameter", "item", "name", "quantity") if c in prov.columns]:
        hit |= text[col].str.fullmatch(r"links(\..*)?|links_note|backbone").to_numpy()
    if not hit.any():
        return s
    prov = prov.copy()
    prov.loc[hit, "value"] = f"{n_links} links between {len(s.node_ids)} nodes"
    if "reference" in prov.columns:
        prov.loc[hit, "reference"] = (f"backbone topology replaced: {note or 'links given by the caller'} "
                                      "(tokenflow.scenarios.topology.with_links)")
    return dataclasses.replace(s, provenance=prov)


def knn_backbone(s: Scenario, k: int) -> Scenario:
    """``s`` with each metro linked to its ``k`` nearest metros (:func:`knn_links`)."""
    return with_links(s, knn_links(s, k), note=f"backbone: {k} nearest metros")


def is_connected(s: Scenario) -> bool:
    """Whether every node of ``s`` can reach every other over its links."""
    _v.scenario(s, "s", "is_connected")
    ids = s.node_ids
    adj: dict[str, set[str]] = {i: set() for i in ids}
    for a, b in zip(s.links["a"], s.links["b"]):
        adj[a].add(b)
        adj[b].add(a)
    seen, todo = {ids[0]}, [ids[0]]
    while todo:
        for j in adj[todo.pop()] - seen:
            seen.add(j)
            todo.append(j)
    return len(seen) == len(ids)


# ------------------------------------------------------------- public long-haul map links

PUBLIC_MAP_FILE = "public_map_links.csv"
PUBLIC_MAP_COLUMNS = ("scenario", "a", "b", "source_links", "route_km", "source", "accessed")


def public_map_links(s: Scenario, path: str | None = None) -> list[tuple[str, str]]:
    """Metro-to-metro links (sorted pairs, sorted list) that a public U.S. long-haul backbone
    map shows between the metros of ``s`` (rows of ``tokenflow/data/public_map_links.csv``, or
    of the CSV at ``path``, whose ``scenario`` equals ``s.name``; derived from the Internet
    Topology Zoo's AT&T North America map by ``tools/derive_public_map_links.py``).  A missing
    column, an empty or unknown field, a self-link, a duplicate pair, a non-positive
    ``route_km`` or a scenario with no rows raises :class:`ScenarioError` naming file, row
    (1 = first data row) and field."""
    _v.scenario(s, "s", "public_map_links")
    if path is not None and not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
        raise ScenarioError(f"public_map_links: path must be a file path, got {type(path).__name__}")
    where = str(path) if path is not None else f"tokenflow/data/{PUBLIC_MAP_FILE}"
    from .datafiles import read_csv  # regular files only, size-limited, UTF-8, header checked

    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path is not None and not os.path.lexists(path):
        raise ScenarioError(f"{where}: cannot read the public-map link list (no such file)")
    t = read_csv(path, columns=PUBLIC_MAP_COLUMNS, label=where, packaged_name=PUBLIC_MAP_FILE,
                 what="public-map link list", allow_empty=True)
    nodes, problems, seen = set(s.node_ids), [], set()
    out: list[tuple[str, str]] = []
    for i, row in enumerate(t.to_dict("records"), start=1):
        empty = [c for c in PUBLIC_MAP_COLUMNS if not str(row[c]).strip()]
        if empty:
            problems.append(f"{where}: row {i}: empty field(s) {empty}")
            continue
        try:
            km = float(row["route_km"])
        except ValueError:
            km = float("nan")
        if not km > 0 or km == float("inf"):
            problems.append(f"{where}: row {i}: field route_km must be a positive number of km, "
                            f"got {row['route_km']!r:.40}")
        if row["scenario"] != s.name:
            continue
        a, b = row["a"], row["b"]
        for f in ("a", "b"):
            if row[f] not in nodes:
                problems.append(f"{where}: row {i}: field {f}: unknown node {row[f]!r:.40} of scenario {s.name!r}")
        if a == b:
            problems.append(f"{where}: row {i}: fields a, b: link joins node {a!r} to itself")
        pair = tuple(sorted((a, b)))
        if pair in seen:
            problems.append(f"{where}: row {i}: fields a, b: duplicate link {'--'.join(pair)}")
        seen.add(pair)
        out.append(pair)  # type: ignore[arg-type]
    if problems:
        raise ScenarioError(problems)
    if not out:
        raise ScenarioError(f"{where}: no rows for scenario {s.name!r} (field scenario)")
    return sorted(out)


def public_map_backbone(s: Scenario, path: str | None = None) -> Scenario:
    """``s`` with its packaged backbone plus the links of :func:`public_map_links` (union;
    links already present keep their per-link figures)."""
    _v.scenario(s, "s", "public_map_backbone")
    have = [tuple(sorted(p)) for p in zip(s.links["a"], s.links["b"])]
    extra = [p for p in public_map_links(s, path) if p not in set(have)]
    return with_links(s, have + extra, note="backbone: packaged + public long-haul map links (AT&T, Topology Zoo)")
