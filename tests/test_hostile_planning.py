"""Review findings on the planning APIs (plan, clear_bids, upgrades, topology,
identifiability, serving, consistent unit, VoLL): regression tests and hostile inputs.
Each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.bids import clear_bids
from tokenflow.errors import InfeasibleMarketError, ScenarioError, TokenflowError
from tokenflow.plan import plan


@pytest.fixture(scope="module")
def us5():
    return tf.load_scenario("us5")


@pytest.fixture(scope="module")
def zero_cells(us5):
    m = tf.Market(us5)
    m.solve(demand={"new_york": {"chat": 0.0}, "dallas": {"image": 0.0}})
    return m.scenario


# ---------------------------------------------------------------- finding 1: first-token prices
@pytest.mark.parametrize("formulation", ["path", "arc"])
@pytest.mark.parametrize("fn", [plan, clear_bids], ids=["plan", "clear_bids"])
def test_zero_demand_cells_priced_as_the_engine(zero_cells, fn, formulation):
    want = tf.solve(zero_cells, formulation=formulation).prices
    got = fn(zero_cells, formulation=formulation).prices
    assert float(want.sel(node="dallas", workload="image")) > 0.1
    np.testing.assert_allclose(got.values, want.values, rtol=1e-9, atol=1e-12)
    assert not np.signbit(got.values).any()
