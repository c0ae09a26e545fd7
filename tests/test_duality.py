"""Prices are marginal costs: finite differences, strong duality, decomposition identity."""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.clearing.market import GBPS_TO_GB_PER_H

SCALE = 20.0  # below the congested 35x case: a non-degenerate point of us5


@pytest.fixture(scope="module")
def base(us5):
    return tf.solve(us5, demand_scale=SCALE)


def test_prices_equal_finite_differences(us5, base):
    """Perturb base demand at each (node, workload) by eps, re-solve: dObjective/dDemand = lambda."""
    demand = us5.demand
    checked = 0
    for node in us5.node_ids:
        for wk in us5.workload_ids:
            d0 = float(demand.sel(node=node, workload=wk))
            eps = 1e-4 * d0  # in base units; served demand moves by SCALE * eps
            up = tf.solve(us5.replace(demand={node: {wk: d0 + eps}}), demand_scale=SCALE)
            fd = (up.objective - base.objective) / (SCALE * eps)
            lam = float(base.prices.sel(node=node, workload=wk))
            assert fd == pytest.approx(lam, rel=1e-6), (node, wk)
            checked += 1
    assert checked == 20


def _dual_objective(r: tf.MarketResult) -> float:
    ds = r.dataset
    return float((ds["price"] * ds["demand"]).sum()
                 - (ds["compute_rent"] * ds["compute_capacity"]).sum()
                 - (ds["congestion_rent"] * ds["link_capacity"] * GBPS_TO_GB_PER_H).sum())


@pytest.mark.parametrize("transfer_aware", [True, False])
@pytest.mark.parametrize("scale", [1.0, SCALE, 35.0, 50.0])
def test_strong_duality(us5, transfer_aware, scale):
    r = tf.solve(us5, transfer_aware=transfer_aware, demand_scale=scale)
    assert _dual_objective(r) == pytest.approx(r.objective, rel=1e-8)


def test_dual_signs_and_complementary_slackness(us5_35):
    ds = us5_35.dataset
    assert (ds["compute_rent"] >= -1e-12).all() and (ds["congestion_rent"] >= -1e-12).all()
    slack_nodes = ds["compute_utilization"] < 1 - 1e-7
    assert (ds["compute_rent"].where(slack_nodes, 0.0) == 0).all()
    slack_links = ds["link_utilization"] < 1 - 1e-7
    assert (ds["congestion_rent"].where(slack_links, 0.0) == 0).all()
    # 35x is congested: some rent is positive
    assert float(ds["congestion_rent"].max()) > 0


@pytest.mark.parametrize("kwargs", [{}, {"transfer_aware": False}, {"latency_limits_ms": {"chat": 15}}])
def test_decomposition_identity(us5, kwargs):
    r = tf.solve(us5, demand_scale=35, **kwargs)
    dec = r.price_decomposition()
    scale = float(abs(dec["price"]).max())
    assert float(abs(dec["residual"]).max()) <= 1e-9 * scale
    parts = ["processing", "compute_rent", "transfer", "congestion_rent"]
    total = sum(dec[p] for p in parts)
    np.testing.assert_allclose(total.values, dec["price"].values, rtol=1e-9)
    # a local path carries no transfer cost or congestion rent
    local = dec["via"] == dec["node"]
    assert float(abs(dec["transfer"].where(local, 0.0)).max()) == 0.0
    # processing component equals the processing cost at the node actually used
    for node in r.dataset["node"].values:
        for wk in r.dataset["workload"].values:
            via = str(dec["via"].sel(node=node, workload=wk).item())
            assert float(dec["processing"].sel(node=node, workload=wk)) == pytest.approx(
                float(r.dataset["processing_cost"].sel(node=via, workload=wk)))


def test_cost_breakdown_adds_up(us5_35):
    ds = us5_35.dataset
    assert float(ds["cost"].sum()) == pytest.approx(us5_35.objective, rel=1e-9)
    assert float(ds["processing"].sum()) == pytest.approx(float(ds["demand"].sum()), rel=1e-9)
