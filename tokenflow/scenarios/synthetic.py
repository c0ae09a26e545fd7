"""Random U.S.-like networks for tests and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .network import haversine_km
from .scenario import load_scenario
from .scenario_class import Scenario

# the largest synthetic network (its node-to-node distance matrix alone is 8 n^2 bytes: 800 MB)
MAX_SYNTHETIC_NODES = 10_000


def synthetic_network(n_nodes: int, seed: int = 0, degree: int = 3) -> Scenario:
    """A random network of ``n_nodes`` metros over the contiguous U.S.

    Coordinates uniform in 25-49 N, 67-124 W; populations log-normal around 2.5
    million; capacity proportional to population with noise; electricity prices
    drawn from the range of U.S. commercial prices (0.08-0.25 $/kWh); each node
    linked to its ``degree`` nearest neighbours (plus bridges until connected).
    Workloads and parameters are those of ``us20``.  Deterministic for a seed.
    """
    from ..core.errors import ScenarioError

    for name, v, low in (("n_nodes", n_nodes, 2), ("seed", seed, 0), ("degree", degree, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ScenarioError(f"synthetic_network: {name} must be a whole number >= {low}, got {v!r:.80}")
    if n_nodes > MAX_SYNTHETIC_NODES:
        got = n_nodes if n_nodes < 10**12 else f"an integer of {int(n_nodes).bit_length()} bits"
        raise ScenarioError(f"synthetic_network: n_nodes must be at most {MAX_SYNTHETIC_NODES:,}, got {got}")
    rng = np.random.default_rng(seed)
    base = load_scenario("us20")
    ids = [f"n{i:04d}" for i in range(n_nodes)]
    lat = rng.uniform(25.0, 49.0, n_nodes)
    lon = rng.uniform(-124.0, -67.0, n_nodes)
    pop = np.exp(rng.normal(np.log(2.5e6), 0.7, n_nodes)).round()
    cap = pop / 1e6 * 110.0 * rng.lognormal(0.0, 0.5, n_nodes)
    price = rng.uniform(0.08, 0.25, n_nodes)
    nodes = pd.DataFrame({"name": ids, "state": "", "lat": lat, "lon": lon, "population": pop,
                          "electricity_usd_per_kwh": price, "capacity_mw": cap}, index=pd.Index(ids, name="node"))
    d = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    np.fill_diagonal(d, np.inf)
    pairs = set()
    for i in range(n_nodes):
        for j in np.argsort(d[i])[:min(degree, n_nodes - 1)]:  # never the node itself (distance inf)
            pairs.add((min(i, int(j)), max(i, int(j))))
    # bridge components (union-find) with the shortest missing links
    parent = list(range(n_nodes))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        parent[find(a)] = find(b)
    order = np.dstack(np.unravel_index(np.argsort(d, axis=None), d.shape))[0]
    for a, b in order:
        if len({find(i) for i in range(n_nodes)}) == 1:
            break
        if a < b and find(a) != find(b):
            pairs.add((int(a), int(b)))
            parent[find(a)] = find(b)
    links = pd.DataFrame(
        [{"a": ids[a], "b": ids[b], "bandwidth_gbps": np.nan, "transfer_cost_usd_per_gb": np.nan}
         for a, b in sorted(pairs)],
        index=pd.Index([f"{ids[a]}--{ids[b]}" for a, b in sorted(pairs)], name="link"))
    prov = pd.DataFrame([{"item": "all", "value": np.nan, "unit": "", "kind": "assumption",
                          "reference": f"synthetic network, seed {seed}", "range": ""}])
    return Scenario(name=f"synthetic{n_nodes}-seed{seed}", title=f"Synthetic {n_nodes}-node network",
                    nodes=nodes, workloads=base.workloads.copy(), links=links, params=dict(base.params),
                    provenance=prov)


def star_network(n: int, seed: int = 0) -> Scenario:
    """A hub linked to ``n - 1`` random leaves over the central U.S., every node with compute
    (workloads and parameters of us20): the sparse network on which s* and the path
    formulation's column generation are stress-tested (issue 15)."""
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 2:
        from ..core.errors import ScenarioError

        raise ScenarioError(f"star_network: n must be a whole number >= 2, got {n!r:.80}")
    if n > MAX_SYNTHETIC_NODES:
        from ..core.errors import ScenarioError

        raise ScenarioError(f"star_network: n must be at most {MAX_SYNTHETIC_NODES:,}")
    rng = np.random.default_rng(seed)
    base = load_scenario("us20")
    ids = ["hub"] + [f"leaf{i:04d}" for i in range(n - 1)]
    pop = np.exp(rng.normal(np.log(2.5e6), 0.7, n)).round()
    nodes = pd.DataFrame({"name": ids, "state": "", "lat": np.r_[39.0, rng.uniform(30, 45, n - 1)],
                          "lon": np.r_[-95.0, rng.uniform(-110, -80, n - 1)], "population": pop,
                          "electricity_usd_per_kwh": rng.uniform(0.08, 0.25, n),
                          "capacity_mw": pop / 1e6 * 110.0 * rng.lognormal(0.0, 0.5, n)},
                         index=pd.Index(ids, name="node"))
    links = pd.DataFrame([{"a": "hub", "b": x, "bandwidth_gbps": np.nan, "transfer_cost_usd_per_gb": np.nan}
                          for x in ids[1:]], index=pd.Index([f"hub--{x}" for x in ids[1:]], name="link"))
    prov = pd.DataFrame([{"item": "all", "value": np.nan, "unit": "", "kind": "assumption",
                          "reference": "synthetic star (tokenflow.scenarios.synthetic.star_network)", "range": ""}])
    return Scenario(name=f"star{n}", title=f"{n}-node star", nodes=nodes, workloads=base.workloads.copy(),
                    links=links, params=dict(base.params), provenance=prov)
