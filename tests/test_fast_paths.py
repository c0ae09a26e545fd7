"""The per-solve fast paths of issue 20 give the same answers as the slow ones.

* ``verify`` computes row and column scales only where the cheap necessary test fires: it
  must refuse exactly what the full computation refuses (reference copy below);
* ``Market._price`` skips pricing at duals that already priced out: only with the same
  duals, inputs, graph and columns, and the answers equal a fresh market's;
* the all-pairs Dijkstra cache returns what a fresh computation returns, read-only.
"""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.clearing.engine import Market
from tokenflow.core.errors import SolverError
from tokenflow.lp import routes
from tokenflow.lp.solver import DUAL_TOL, PRIMAL_TOL, verify


def _reference_verify(arr, x, y) -> str | None:
    """verify as it was before issue 20 (full scales everywhere); the reason or None."""
    mats = arr.matrix()
    row, col, data, absdata = mats["row"], mats["col"], arr.data, mats["absdata"]
    ax = np.bincount(row, weights=data * x[col], minlength=arr.n_rows)
    mag = np.bincount(row, weights=absdata * np.abs(x[col]), minlength=arr.n_rows)
    lb, ub = arr.row_lb, arr.row_ub
    scale = np.maximum.reduce([np.ones_like(ax), mag, np.where(np.isfinite(lb), np.abs(lb), 0.0),
                               np.where(np.isfinite(ub), np.abs(ub), 0.0)])
    viol = np.maximum(np.maximum(lb - ax, ax - ub), 0.0) / scale
    if len(viol) and viol.max() > PRIMAL_TOL:
        return f"row {int(np.argmax(viol))}"
    xs = np.maximum(arr.col_lb - x, x - arr.col_ub) / np.maximum(1.0, np.abs(x))
    if len(xs) and xs.max() > PRIMAL_TOL:
        return f"col {int(np.argmax(xs))}"
    ymax = max(1.0, float(np.abs(y).max(initial=0.0)))
    bad = np.isinf(lb) & np.isfinite(ub) & (y > DUAL_TOL * ymax)
    if bad.any():
        return "dual"
    d = arr.cost - np.bincount(col, weights=data * y[row], minlength=arr.n_cols)
    dmag = np.abs(arr.cost) + np.bincount(col, weights=absdata * np.abs(y[row]), minlength=arr.n_cols)
    bad = np.isinf(arr.col_ub) & (d < -DUAL_TOL * np.maximum(1.0, dmag))
    if bad.any():
        return f"reduced {int(np.nonzero(bad)[0][0])}"
    return None


@pytest.mark.parametrize("case", ["us5", "us20"])
def test_verify_refuses_exactly_what_the_full_check_refuses(case):
    m = Market(tf.load_scenario(case))
    m.solve(demand_scale=0.5 * m.scale_limit().max_scale)
    arr = m._main.arr
    x0, y0, _ = m._main.solution()
    rng = np.random.default_rng(0)
    names = {"row": lambda i: f"row {i}", "col": lambda j: f"col {j}"}
    refused = accepted = 0
    for trial in range(300):
        x, y = x0.copy(), y0.copy()
        # perturbations around the tolerances, of the primal or the duals, absolute and relative
        size = 10.0 ** rng.uniform(-9, 1)
        if trial % 2:
            i = rng.integers(len(x), size=rng.integers(1, 4))
            x[i] += rng.choice([-1, 1], size=len(i)) * size * np.maximum(1.0, np.abs(x[i]))
        else:
            i = rng.integers(len(y), size=rng.integers(1, 4))
            y[i] += rng.choice([-1, 1], size=len(i)) * size * np.maximum(1.0, np.abs(y[i]))
        want = _reference_verify(arr, x, y)
        try:
            verify(arr, x, y, names["row"], names["col"])
            got = None
        except SolverError as exc:
            got = str(exc)
        if want is None:
            assert got is None, (trial, got)
            accepted += 1
        else:
            assert got is not None, (trial, want)
            refused += 1
            if want.startswith(("row", "col")):
                assert want in got  # the same row or column is named
            elif want.startswith("reduced"):
                assert f"column {want.split()[1]} " in got or f"col {want.split()[1]} " in got
    assert refused > 20 and accepted > 20  # both sides of the tolerance were exercised


def test_pricing_is_skipped_only_at_unchanged_duals_and_answers_match_fresh_markets():
    s = tf.load_scenario("us20")
    m = Market(s)
    s_star = m.scale_limit().max_scale
    xs = [s_star * f for f in np.linspace(0.50, 0.51, 12)]  # close: the basis stays
    m.solve(demand_scale=xs[0])
    skips0 = m.price_skips
    for x in xs[1:]:
        r = m.solve(demand_scale=x)
        fresh = tf.solve(s, demand_scale=x)
        assert r.objective == pytest.approx(fresh.objective, rel=1e-9)
        np.testing.assert_allclose(r.arrays()["price"], fresh.arrays()["price"], rtol=1e-7, atol=1e-9)
    assert m.price_skips > skips0  # the demand-only re-solves did skip pricing somewhere
    # a number that moves reduced costs (transfer cost) must be priced again
    calls = []
    real = routes.price

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    import tokenflow.clearing.engine as eng
    eng.price = counting
    try:
        r = m.solve(transfer_cost_usd_per_gb=0.02)
    finally:
        eng.price = real
    assert calls
    fresh = Market(s).solve(transfer_cost_usd_per_gb=0.02, demand_scale=xs[-1])
    assert r.objective == pytest.approx(fresh.objective, rel=1e-9)


def test_dijkstra_cache_is_exact_and_read_only():
    s = tf.load_scenario("us20")
    m = Market(s)
    inp, G = m.inp, m._graph
    length = routes.arc_lengths(inp, np.zeros(inp.L), True)[0]
    a = routes._dijkstra_all(G, length)
    b = routes._dijkstra_all(G, length)
    assert all(x is y for x, y in zip(a, b))  # the second call is the cache's
    G.dj_cache.clear()
    c = routes._dijkstra_all(G, length.copy())
    for x, y in zip(a, c):
        np.testing.assert_array_equal(x, y)
        assert not x.flags.writeable
    with pytest.raises(ValueError):
        a[0][0, 0] = 1.0


def test_markets_share_a_graph_only_for_the_same_network():
    s = tf.load_scenario("us5")
    a, b = Market(s), Market(s, transfer_aware=False)
    assert a._graph is b._graph
    far = s.replace(params={"route_factor": 2.0 * s.params["route_factor"]})  # other arc latencies
    c = Market(far)
    assert c._graph is not a._graph
    np.testing.assert_allclose(c._graph.lat, 2.0 * a._graph.lat)
    # a market moved to the other network and back gets the right graph each time
    r_far = a.solve(scenario=far, demand_scale=5.0)
    assert a._graph is c._graph
    assert r_far.objective == pytest.approx(tf.solve(far, demand_scale=5.0).objective, rel=1e-9)
    a.solve(scenario=s, demand_scale=5.0)
    assert a._graph is b._graph
