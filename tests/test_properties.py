"""Property-based tests (Hypothesis) on random small networks, through the public API only.

Each property is checked on a few random synthetic networks (2-6 metros, random seed,
transfer-aware or baseline, demand at a random fraction of s*).  Examples are
derandomized so the suite is deterministic; ``max_examples`` is kept small for speed.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenflow as tf
from tokenflow.clearing.market import GBPS_TO_GB_PER_H

PROPS = settings(deadline=None, max_examples=5, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=64)
def network(n: int, seed: int) -> tf.Scenario:
    return tf.synthetic_network(n, seed=seed)


@functools.lru_cache(maxsize=128)
def s_star(n: int, seed: int, transfer_aware: bool, loose: bool) -> float:
    s = network(n, seed)
    return tf.max_demand_scale(s, transfer_aware=transfer_aware, latency_limits_ms=_loose(s) if loose else None)


def _loose(s: tf.Scenario) -> dict[str, float]:
    """Latency limits so wide that every route is allowed (latency is slack)."""
    return {w: 1e5 for w in s.workload_ids}


@st.composite
def markets(draw, loose: bool = False):
    """(scenario, transfer_aware, demand scale, latency limits) at a fraction of s*."""
    n = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 10_000))
    ta = draw(st.booleans())
    frac = draw(st.floats(0.05, 0.95))
    s = network(n, seed)
    return s, ta, frac * s_star(n, seed, ta, loose), (_loose(s) if loose else None), (n, seed)


def _dual_objective(r: tf.MarketResult) -> float:
    ds = r.dataset
    return float((ds["price"] * ds["demand"]).sum()
                 - (ds["compute_rent"] * ds["compute_capacity"]).sum()
                 - (ds["congestion_rent"] * ds["link_capacity"] * GBPS_TO_GB_PER_H).sum())


@PROPS
@given(markets(loose=True))
def test_path_and_arc_agree_where_latency_is_slack(m):
    s, ta, scale, lat, _ = m
    path = tf.solve(s, transfer_aware=ta, demand_scale=scale, latency_limits_ms=lat)
    arc = tf.solve(s, transfer_aware=ta, demand_scale=scale, latency_limits_ms=lat, formulation="arc")
    assert path.objective == pytest.approx(arc.objective, rel=1e-7)
    # prices: where the dual is unique both must agree; test with the weighted mean price
    # (unique: it is d(objective)/d(scale)) and every price to a loose tolerance
    d = path.dataset["demand"]
    mean_path = float((path.prices * d).sum() / d.sum())
    mean_arc = float((arc.prices * d).sum() / d.sum())
    assert mean_path == pytest.approx(mean_arc, rel=1e-6)
    np.testing.assert_allclose(path.prices.values, arc.prices.values, rtol=1e-5, atol=1e-9)


@PROPS
@given(markets())
def test_strong_duality(m):
    s, ta, scale, lat, _ = m
    r = tf.solve(s, transfer_aware=ta, demand_scale=scale, latency_limits_ms=lat)
    assert _dual_objective(r) == pytest.approx(r.objective, rel=1e-7)
    ds = r.dataset
    assert float(ds["compute_rent"].min()) >= -1e-9 and float(ds["congestion_rent"].min()) >= -1e-9


@PROPS
@given(markets(), st.data())
def test_prices_are_finite_difference_marginal_costs(m, data):
    """The cost is convex in each demand: left difference <= lambda <= right difference."""
    s, ta, scale, lat, _ = m
    base = tf.solve(s, transfer_aware=ta, demand_scale=scale, latency_limits_ms=lat)
    node = data.draw(st.sampled_from(s.node_ids))
    wk = data.draw(st.sampled_from(s.workload_ids))
    d0 = float(s.demand.sel(node=node, workload=wk))
    eps = 1e-4 * d0
    up = tf.solve(s.replace(demand={node: {wk: d0 + eps}}), transfer_aware=ta, demand_scale=scale,
                  latency_limits_ms=lat)
    down = tf.solve(s.replace(demand={node: {wk: d0 - eps}}), transfer_aware=ta, demand_scale=scale,
                    latency_limits_ms=lat)
    right = (up.objective - base.objective) / (scale * eps)
    left = (base.objective - down.objective) / (scale * eps)
    lam = float(base.prices.sel(node=node, workload=wk))
    tol = 1e-5 * max(abs(lam), abs(right), abs(left))
    assert left - tol <= lam <= right + tol, (left, lam, right)


@PROPS
@given(markets())
def test_settlement_balances(m):
    s, ta, scale, lat, _ = m
    st_ = tf.solve(s, transfer_aware=ta, demand_scale=scale, latency_limits_ms=lat).settlement()
    total = float(st_["total_payments"])
    assert total > 0
    assert abs(float(st_["imbalance"])) <= 1e-7 * total


@PROPS
@given(markets())
def test_s_star_is_exact(m):
    s, ta, _, _, (n, seed) = m
    star = s_star(n, seed, ta, False)
    assert np.isfinite(star) and star > 0
    tf.solve(s, transfer_aware=ta, demand_scale=star * (1 - 1e-6))  # clears just below
    with pytest.raises(tf.InfeasibleMarketError) as info:
        tf.solve(s, transfer_aware=ta, demand_scale=star * (1 + 1e-5))
    assert info.value.max_scale == pytest.approx(star, rel=1e-6)


@PROPS
@given(markets())
def test_netcdf_round_trip(m):
    s, ta, scale, lat, _ = m
    r = tf.solve(s, transfer_aware=ta, demand_scale=scale, latency_limits_ms=lat)
    with tempfile.TemporaryDirectory() as tmp:
        back = tf.MarketResult.from_netcdf(r.to_netcdf(Path(tmp) / "r.nc"))
    assert back.objective == r.objective
    assert set(back.dataset.data_vars) == set(r.dataset.data_vars)
    for name in r.dataset.data_vars:
        xr.testing.assert_equal(back.dataset[name], r.dataset[name])
    assert back.saturated_links() == r.saturated_links()
