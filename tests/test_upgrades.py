"""Upgrade values: the value of a small upgrade per unit equals the rent (finite differences)."""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.planning.upgrades import rank_upgrades, upgrade_sweep, upgrade_values


@pytest.mark.parametrize("scale", [35.0, 50.0])
def test_small_upgrade_per_unit_equals_rent(us5, scale):
    """saving / size of a tiny upgrade = the dual-based marginal value, every link and node;
    and at least one asset has a positive rent (the check is not vacuous)."""
    v = upgrade_values(us5, demand_scale=scale, link_step_gbps=1e-3, node_step_mw=1e-3)
    mv, fd = v["marginal_value"].values, v["saving_per_unit"].values
    assert (mv > 1e-3).any()
    np.testing.assert_allclose(fd, mv, rtol=1e-5, atol=1e-6 * max(1.0, mv.max()))


def test_discrete_upgrade_is_bounded_by_rent(us5):
    """The cost is convex in capacity: a large upgrade saves at most rent x size."""
    v = upgrade_values(us5, demand_scale=35.0)
    slack = v["marginal_value"] * v["step"] - v["cost_saving"]
    assert float(slack.min()) >= -1e-6 * float(v.attrs["objective"])
    assert float(v["cost_saving"].max()) > 0


def test_market_is_left_as_found(us5):
    m = tf.Market(us5)
    before = m.solve(demand_scale=20.0)
    upgrade_values(m, demand_scale=35.0)
    assert m.demand_scale == 20.0
    after = m.solve()
    assert after.objective == pytest.approx(before.objective, rel=1e-9)
    fresh = tf.Market(us5).inp
    np.testing.assert_array_equal(m.inp.arc_capacity_gbh, fresh.arc_capacity_gbh)
    np.testing.assert_array_equal(m.inp.capacity_kw, fresh.capacity_kw)


def test_rank_and_sweep(us5):
    v = upgrade_values(us5, demand_scale=35.0)
    t = rank_upgrades(v, by="congestion_rent_reduction")
    assert list(t["congestion_rent_reduction"]) == sorted(t["congestion_rent_reduction"], reverse=True)
    with pytest.raises(tf.ScenarioError, match="by must be"):
        rank_upgrades(v, by="nonsense")
    sw = upgrade_sweep(us5, [20.0, 35.0])
    assert sw["cost_saving"].dims == ("demand_scale", "asset")
    np.testing.assert_allclose(sw["cost_saving"].sel(demand_scale=35.0).values, v["cost_saving"].values,
                               rtol=1e-6, atol=1e-6)


def test_bad_arguments(us5):
    with pytest.raises(tf.ScenarioError, match="link_step_gbps"):
        upgrade_values(us5, demand_scale=35.0, link_step_gbps=-1)
    with pytest.raises(tf.ScenarioError, match="unknown"):
        upgrade_values(us5, demand_scale=35.0, nodes=["atlantis"])
    with pytest.raises(tf.ScenarioError, match="Market or Scenario"):
        upgrade_values("us5")
