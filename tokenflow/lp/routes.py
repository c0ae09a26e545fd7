"""Routes and exact pricing for the path formulation's column generation.

A *route* is a loop-free sequence of directed arcs from an origin to a processing node
(empty for local processing).  A *column* of the path LP is a (route, workload) pair.

Pricing (the step that proves optimality or finds a better column): given the duals of
the restricted LP — prices ``lam[o, k]``, compute rents ``mu[n]`` and congestion rents
``rho[a]`` — the reduced cost of route ``p`` from ``o`` to ``n`` for workload ``k`` is

    node_cost[n, k] + sum_{a in p} len_k[a] - lam[o, k],
    len_k[a] = fwd_k (c_a + rho_a) + rev_k (c_rev(a) + rho_rev(a)),
    node_cost[n, k] = processing cost + g_k mu_n,

and only routes whose round trip ``2 sum latency`` is within ``k``'s limit are admissible.
For each (o, k) the cheapest admissible route to every compute node is a
resource-constrained shortest path: a plain Dijkstra answers it when its route is within
the limit, otherwise :func:`rcsp` (label setting with latency as the resource; lengths and
latencies are non-negative, so labels dominated in both cost and latency are dropped and
cycles never help).  Both are exact, so column generation ends at the optimum of the LP
over *all* admissible routes.
"""

from __future__ import annotations

import heapq
import threading

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra

from .inputs import Inputs

LAT_TOL = 1e-9  # ms, slack on latency limits (as in the scenario's own checks)
DJ_CACHE_SIZE = 16  # all-pairs Dijkstra answers kept per graph


class RoutePool:
    """Routes found so far (index = route id); grows, never shrinks."""

    def __init__(self) -> None:
        self.origin: list[int] = []
        self.target: list[int] = []
        self.arcs: list[tuple[int, ...]] = []
        self.key: dict[tuple[int, tuple[int, ...]], int] = {}
        self._arrays: tuple | None = None

    def __len__(self) -> int:
        return len(self.origin)

    def add(self, o: int, n: int, arcs: tuple[int, ...]) -> int:
        k = (o, arcs)
        rid = self.key.get(k)
        if rid is None:
            rid = len(self.origin)
            self.key[k] = rid
            self.origin.append(o), self.target.append(n), self.arcs.append(arcs)
            self._arrays = None
        return rid

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(origin, target, ptr, flat arcs) as numpy arrays (cached)."""
        if self._arrays is None:
            lens = np.array([len(a) for a in self.arcs], dtype=np.int64)
            ptr = np.zeros(len(lens) + 1, dtype=np.int64)
            np.cumsum(lens, out=ptr[1:])
            flat = np.fromiter((x for a in self.arcs for x in a), dtype=np.int64, count=int(ptr[-1]))
            self._arrays = (np.array(self.origin, dtype=np.int64), np.array(self.target, dtype=np.int64), ptr, flat)
        return self._arrays

    def arc_sum(self, values: np.ndarray) -> np.ndarray:
        """Per route, the sum of ``values[a]`` over its arcs (0 for local routes)."""
        _, _, ptr, flat = self.arrays()
        out = np.zeros(len(ptr) - 1)
        if len(flat):
            seg = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
            np.add.at(out, seg, values[flat])
        return out


class Graph:
    """Adjacency and latency distances of the directed network (per latency state)."""

    def __init__(self, inp: Inputs) -> None:
        N = inp.N
        self.N = N
        self.au, self.av = inp.au, inp.av
        self.lat = inp.arc_latency_ms.copy()
        self.out: list[list[int]] = [[] for _ in range(N)]
        for a, u in enumerate(self.au.tolist()):
            self.out[u].append(a)
        self.arc_of = {(int(u), int(v)): a for a, (u, v) in enumerate(zip(self.au, self.av))}
        self.W: np.ndarray | None = None
        self.dj_cache: dict[bytes, tuple] = {}  # lengths -> _dijkstra_all's answer (oldest dropped)
        # CSR layout of the arcs, built once: per solve only the lengths change
        order = np.lexsort((self.av, self.au))
        self.csr_order = order
        self.csr_indices = self.av[order].astype(np.int32)
        self.csr_indptr = np.r_[0, np.cumsum(np.bincount(self.au, minlength=N))].astype(np.int32)
        if len(self.au):
            g = csr_array((np.maximum(self.lat, 1e-12), (self.au, self.av)), shape=(N, N))
            self.latdist = dijkstra(g, directed=True)
            self.latdist_rev = self.latdist.T
        else:
            self.latdist = np.where(np.eye(N, dtype=bool), 0.0, np.inf)
            self.latdist_rev = self.latdist


_GRAPHS: dict[bytes, Graph] = {}
_LOCK = threading.Lock()
GRAPH_CACHE_SIZE = 16


def shared_graph(inp: Inputs) -> Graph:
    """``Graph(inp)``, shared between the markets of this process whose networks are the
    same (nodes, arcs and arc latencies: everything a Graph is computed from); a Graph is
    never changed after it is built, except for its caches of pure functions of it."""
    key = b"|".join((np.int64(inp.N).tobytes(), np.ascontiguousarray(inp.au, dtype=np.int64).tobytes(),
                     np.ascontiguousarray(inp.av, dtype=np.int64).tobytes(),
                     np.ascontiguousarray(inp.arc_latency_ms, dtype=float).tobytes()))
    with _LOCK:
        G = _GRAPHS.pop(key, None)
    if G is None:
        G = Graph(inp)
    with _LOCK:
        _GRAPHS[key] = G  # most recently used last
        while len(_GRAPHS) > GRAPH_CACHE_SIZE:
            _GRAPHS.pop(next(iter(_GRAPHS)))
    return G


def arc_lengths(inp: Inputs, rho: np.ndarray, with_costs: bool) -> np.ndarray:
    """K x L: length of each arc for each workload ($/M tokens)."""
    ell = (inp.arc_cost if with_costs else 0.0) + np.maximum(rho, 0.0)
    ell = np.broadcast_to(ell, (inp.L,)).astype(float)
    rev = inp.rev_arc
    return inp.fwd_gb[:, None] * ell[None, :] + inp.rev_gb[:, None] * ell[rev][None, :]


def _dijkstra_all(G: Graph, length: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """All-pairs cheapest routes under ``length``; a tiny latency term breaks ties towards
    short routes and keeps zero-length arcs as edges.  Returns (dist, pred, eps)."""
    key = length.tobytes()
    hit = G.dj_cache.get(key)
    if hit is not None:  # same lengths on the same graph: the same answer (a pure function)
        return hit
    eps = 1e-12 * (1.0 + float(length.max(initial=0.0)))
    w = (length + eps * (1.0 + G.lat))[G.csr_order]
    g = csr_array((w, G.csr_indices, G.csr_indptr), shape=(G.N, G.N))
    dist, pred = dijkstra(g, directed=True, return_predecessors=True)
    out = (dist, pred, _tree_latency(G, pred))
    for a in out:
        a.setflags(write=False)  # shared by later calls: nobody may change them
    with _LOCK:  # a Graph is shared by the markets of every thread of the process
        while len(G.dj_cache) >= DJ_CACHE_SIZE:
            G.dj_cache.pop(next(iter(G.dj_cache)))
        G.dj_cache[key] = out
    return out


def _tree_latency(G: Graph, pred: np.ndarray) -> np.ndarray:
    """One-way latency of every tree route o -> n (pointer jumping over the predecessors)."""
    N = G.N
    if G.W is None:
        G.W = np.zeros((N, N))
        G.W[G.au, G.av] = G.lat
    p = np.where(pred < 0, np.arange(N)[None, :], pred)
    rows = np.arange(N)[:, None]
    cols = np.arange(N)[None, :]
    hop = G.W[p, cols]  # latency of the last arc
    lat = hop.copy()
    anc = p
    for _ in range(N):
        nxt = p[rows, anc]
        if np.array_equal(nxt, anc):
            break
        lat += G.W[nxt, anc]
        anc = nxt
    lat[~np.isfinite(G.latdist)] = np.inf
    return lat


def _shared_dijkstra(G: Graph, inp: Inputs, k: int, lengths: np.ndarray, cache: dict):
    """Dijkstra for workload ``k``; workloads whose lengths are proportional (no reverse
    weight: ``len_k = fwd_k x (c + rho)``) share one run, distances scaled."""
    if inp.rev_gb[k] == 0 and inp.fwd_gb[k] > 0:
        if "fwd" not in cache:
            base = lengths[k] / inp.fwd_gb[k]
            cache["fwd"] = _dijkstra_all(G, base)
        dist, pred, tlat = cache["fwd"]
        return dist * inp.fwd_gb[k], pred, tlat
    key = lengths[k].tobytes()
    if key not in cache:
        cache[key] = _dijkstra_all(G, lengths[k])
    return cache[key]


def _walk(G: Graph, pred: np.ndarray, o: int, n: int) -> tuple[int, ...]:
    seq = [n]
    while seq[-1] != o:
        seq.append(int(pred[o, seq[-1]]))
    seq.reverse()
    return tuple(G.arc_of[(a, b)] for a, b in zip(seq[:-1], seq[1:]))


def rcsp(G: Graph, o: int, length: np.ndarray, half_limit: float,
         targets: dict[int, float]) -> dict[int, tuple[float, tuple[int, ...]]]:
    """Cheapest route from ``o`` to each target ``n`` whose one-way latency is within
    ``half_limit`` (ms) and whose length is below ``targets[n]``; label setting with
    latency as the resource.  Returns {n: (length, arcs)} for the targets reached."""
    if not targets:
        return {}
    tlist = np.fromiter(targets, dtype=np.int64)
    lb = G.latdist[:, tlist].min(axis=1)  # latency lower bound to any remaining target
    maxthr = max(targets.values())
    best_lat = np.full(G.N, np.inf)
    lab_node, lab_arc, lab_parent = [o], [-1], [-1]
    heap = [(0.0, 0.0, 0)]
    found: dict[int, tuple[float, tuple[int, ...]]] = {}
    remaining = dict(targets)
    lat, av, out = G.lat, G.av, G.out
    while heap:
        c, lt, lid = heapq.heappop(heap)
        if c >= maxthr:
            break
        v = lab_node[lid]
        if lt >= best_lat[v]:
            continue  # dominated: a cheaper (or equal) label reached v with no more latency
        best_lat[v] = lt
        if v in remaining:
            thr = remaining.pop(v)
            if c < thr:
                arcs = []
                x = lid
                while lab_arc[x] >= 0:
                    arcs.append(lab_arc[x])
                    x = lab_parent[x]
                found[v] = (c, tuple(reversed(arcs)))
            if not remaining:
                break
            maxthr = max(remaining.values())
        for a in out[v]:
            w = int(av[a])
            if w == o:
                continue
            nl = lt + lat[a]
            if nl + lb[w] > half_limit + LAT_TOL or nl >= best_lat[w]:
                continue
            nc = c + length[a]
            if nc >= maxthr:
                continue
            lab_node.append(w), lab_arc.append(a), lab_parent.append(lid)
            heapq.heappush(heap, (nc, nl, len(lab_node) - 1))
    return found


def price(inp: Inputs, G: Graph, lam: np.ndarray, mu: np.ndarray, rho: np.ndarray, *, with_costs: bool,
          rows: np.ndarray | None = None, max_per_row: int = 8, rel_tol: float = 1e-9,
          exists=None) -> list[tuple[int, int, tuple[int, ...], int, float]]:
    """Admissible columns with negative reduced cost: [(o, n, arcs, k, reduced cost)],
    at most ``max_per_row`` per (o, k), most negative first.  ``rows`` (N x K bool)
    restricts the search to some demand rows; ``exists(o, arcs, k)`` tells columns the LP has
    already (they are skipped, so a column inside the solver's tolerance cannot hide a new one)."""
    N, K = lam.shape
    node_cost = (inp.proc_cost if with_costs else 0.0) + inp.intensity[None, :] * mu[:, None]
    has_cap = inp.capacity_kw > 0
    lengths = arc_lengths(inp, rho, with_costs) if inp.L else np.zeros((K, 0))
    out: list[tuple[int, int, tuple[int, ...], int, float]] = []
    cache: dict[bytes, tuple] = {}
    # every workload at once: a route is at least as long as the shortest path (latency ignored),
    # so where no origin x node pair has a negative reduced cost under it, no admissible route
    # has one either (the usual case at an optimum); the workloads with one are searched below
    if inp.L:
        trees = [_shared_dijkstra(G, inp, k, lengths, cache) for k in range(K)]
    else:
        alone = np.where(np.eye(N, dtype=bool), 0.0, np.inf)
        trees = [(alone, None, alone)] * K
    active = np.isfinite(lam) if rows is None else (rows & np.isfinite(lam))  # N x K
    tol = rel_tol * np.maximum(1.0, np.abs(lam))
    # (all workloads in one array where it is small; one workload at a time on large networks)
    groups = [list(range(K))] if 0 < K * N * N <= PRICE_STACK_MAX else [[k] for k in range(K)]
    for group in groups:
        with np.errstate(invalid="ignore"):
            rc_g = node_cost.T[group, None, :] + np.stack([trees[k][0] for k in group]) - lam.T[group, :, None]
        rc_g[:, :, ~has_cap] = np.inf
        rc_g[~active.T[group]] = np.inf
        cand_g = rc_g < -tol.T[group, :, None]
        for j in np.flatnonzero(cand_g.any(axis=(1, 2))):
            _search(inp, G, group[int(j)], rc_g[j], cand_g[j], trees, lam, node_cost, lengths, tol, exists,
                    max_per_row, out)
    return out


#: workloads x nodes^2 up to which :func:`price` checks every workload's reduced costs in one array
PRICE_STACK_MAX = 2_000_000


def _search(inp: Inputs, G: Graph, k: int, rc: np.ndarray, cand: np.ndarray, trees: list, lam: np.ndarray,
            node_cost: np.ndarray, lengths: np.ndarray, tol: np.ndarray, exists, max_per_row: int,
            out: list) -> None:
    """:func:`price` for workload ``k``, where origin x node pairs have a negative reduced cost
    ``rc`` under the shortest paths (``cand``): the admissible columns, appended to ``out``."""
    half = inp.latency_ms[k] / 2.0
    lam_k = lam[:, k]
    _, pred, tlat = trees[k]
    tol_k = tol[:, k]
    ok = 2.0 * tlat <= inp.latency_ms[k] + LAT_TOL
    reach = 2.0 * G.latdist <= inp.latency_ms[k] + LAT_TOL
    for o in np.nonzero(cand.any(axis=1))[0]:
        o = int(o)
        picks, need_rcsp = [], {}
        ns = np.nonzero(cand[o])[0]
        adm = ns[ok[o, ns]]
        for n in adm[np.argsort(rc[o, adm], kind="stable")]:
            n = int(n)
            arcs = () if n == o else _walk(G, pred, o, n)
            if exists is not None and exists(o, arcs, k):
                continue
            true_rc = float(node_cost[n, k] + (lengths[k][list(arcs)].sum() if arcs else 0.0) - lam_k[o])
            if true_rc < -tol_k[o]:
                picks.append((true_rc, n, arcs))
                if len(picks) >= max_per_row:
                    break
        for n in ns[~ok[o, ns] & reach[o, ns]]:
            need_rcsp[int(n)] = float(lam_k[o] - node_cost[n, k] - tol_k[o])
        if need_rcsp:
            for n, (length, arcs) in rcsp(G, o, lengths[k], half, need_rcsp).items():
                if exists is None or not exists(o, arcs, k):
                    picks.append((float(node_cost[n, k] + length - lam_k[o]), n, arcs))
        picks.sort(key=lambda t: t[0])
        for r, n, arcs in picks[:max_per_row]:
            out.append((o, n, arcs, k, r))


def cheapest(inp: Inputs, G: Graph, mu: np.ndarray, rho: np.ndarray, rows: np.ndarray,
             *, with_costs: bool = True) -> dict[tuple[int, int], tuple[float, int, tuple[int, ...]]]:
    """For each (o, k) with ``rows[o, k]``: the cheapest admissible route by full cost
    (node cost + route length) as {(o, k): (cost, n, arcs)}; exact (Dijkstra, then
    label setting where the cheapest route breaks the latency limit)."""
    N, K = rows.shape
    node_cost = (inp.proc_cost if with_costs else 0.0) + inp.intensity[None, :] * mu[:, None]
    has_cap = inp.capacity_kw > 0
    lengths = arc_lengths(inp, rho, with_costs) if inp.L else np.zeros((K, 0))
    out = {}
    cache: dict = {}
    for k in range(K):
        if not rows[:, k].any():
            continue
        if inp.L:
            dist, pred, tlat = _shared_dijkstra(G, inp, k, lengths, cache)
        else:
            dist = tlat = np.where(np.eye(N, dtype=bool), 0.0, np.inf)
            pred = None
        full = node_cost[None, :, k] + dist
        full[:, ~has_cap] = np.inf
        ok = 2.0 * tlat <= inp.latency_ms[k] + LAT_TOL
        reach = 2.0 * G.latdist <= inp.latency_ms[k] + LAT_TOL
        for o in np.nonzero(rows[:, k])[0]:
            o = int(o)
            best = None
            inadmissible = {}
            adm = np.nonzero(ok[o] & np.isfinite(full[o]))[0]
            if len(adm):
                n = int(adm[np.argmin(full[o, adm])])
                arcs = () if n == o else _walk(G, pred, o, n)
                best = (float(node_cost[n, k] + (lengths[k][list(arcs)].sum() if arcs else 0.0)), n, arcs)
            bound = best[0] if best else np.inf
            for n in np.nonzero(~ok[o] & reach[o] & (full[o] < bound))[0]:
                inadmissible[int(n)] = None
            if inadmissible:
                bound = best[0] if best else np.inf
                thr = {n: bound - float(node_cost[n, k]) for n in inadmissible}
                thr = {n: (t if np.isfinite(t) else 1e300) for n, t in thr.items()}
                for n, (length, arcs) in rcsp(G, o, lengths[k], inp.latency_ms[k] / 2.0, thr).items():
                    c = float(node_cost[n, k] + length)
                    if best is None or c < best[0]:
                        best = (c, n, arcs)
            if best is not None:
                out[(o, k)] = best
    return out


def face_routes(inp: Inputs, G: Graph, lam: np.ndarray, mu: np.ndarray, rho: np.ndarray, *, with_costs: bool,
                rel_tol: float = 1e-7, max_expansions: int = 2_000_000
                ) -> tuple[list[tuple[int, int, tuple[int, ...], int]], bool]:
    """Every admissible column whose reduced cost at the duals (lam, mu, rho) is at most
    ``rel_tol max(1, |lam[o, k]|)`` ($/M tokens): [(o, n, arcs, k)], loop-free routes within
    the workload's latency limit, by depth-first search pruned on the route's length so far
    (arc lengths and node costs are non-negative, so a partial route that already costs more
    than ``lam[o, k]`` plus the tolerance cannot end in such a column).

    By complementary slackness every optimal dispatch of the full path LP (all routes) uses
    only columns with zero reduced cost at an optimal dual, so these columns span the LP's
    whole optimal face.  Returns (columns, complete): ``complete`` is False when the search
    stopped after ``max_expansions`` partial routes (the columns found so far are returned)."""
    N, K = lam.shape
    node_cost = (inp.proc_cost if with_costs else 0.0) + inp.intensity[None, :] * mu[:, None]
    node_cost = np.broadcast_to(node_cost, (N, K))
    has_cap = inp.capacity_kw > 0
    lengths = arc_lengths(inp, rho, with_costs) if inp.L else np.zeros((K, 0))
    out: list[tuple[int, int, tuple[int, ...], int]] = []
    expanded = 0
    for k in range(K):
        limit = inp.latency_ms[k] + LAT_TOL  # round trip, ms
        cap_cost = node_cost[has_cap, k]
        if not len(cap_cost):
            continue
        floor = float(cap_cost.min())
        for o in range(N):
            lam_ok = lam[o, k]
            if not np.isfinite(lam_ok):
                continue
            tol = rel_tol * max(1.0, abs(float(lam_ok)))
            budget = float(lam_ok) + tol
            stack = [(o, 0.0, 0.0, (), frozenset((o,)))]
            while stack:
                expanded += 1
                if expanded > max_expansions:
                    return out, False
                v, length, lat, arcs, seen = stack.pop()
                if has_cap[v] and node_cost[v, k] + length <= budget:
                    out.append((o, v, arcs, k))
                for a in G.out[v]:
                    w = int(G.av[a])
                    if w in seen:
                        continue
                    nlat = lat + G.lat[a]
                    nlen = length + float(lengths[k][a])
                    if 2.0 * nlat > limit or nlen + floor > budget:
                        continue
                    stack.append((w, nlen, nlat, (*arcs, a), seen | {w}))
    return out, True
