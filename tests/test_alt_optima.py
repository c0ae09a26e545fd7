"""The optimal face: link load ranges over all cost-optimal dispatches.

By complementary slackness, a link whose congestion rent is positive in one optimum is at
capacity in every optimum; the range computation must say so.  Its cost row must keep the
small (8e-6 $/M tokens) transfer costs of batch work, and every range solution must cost
what the optimum costs.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenflow as tf
from tokenflow.clearing.alt_optima import link_load_range, saturated_count_range
from tokenflow.core.errors import SolverError
from tokenflow.lp.solver import HIGHS_OPTIONS

RENT_TOL = 1e-9  # $/GB: a rent above this counts as positive


def _allowed_shortfall(ds, rent: np.ndarray) -> np.ndarray:
    """How far below capacity (GB/h) a link with ``rent`` ($/GB) may sit inside the cost
    slack the range allows (rel_tol max(|z|, 1) plus the solver's feasibility tolerance)."""
    z = ds.attrs["objective"]
    slack = ds.attrs["rel_tol"] * max(abs(z), 1.0) + HIGHS_OPTIONS["primal_feasibility_tolerance"] * (
        abs(z) + 1.0 / ds.attrs["cost_row_scale"])
    return slack / np.maximum(rent, RENT_TOL)


def _check_rent_links_at_capacity(m: tf.Market, scale: float) -> int:
    r = m.solve(demand_scale=scale)
    ds = m.link_load_range()
    rent = r.dataset["congestion_rent"].sel(link=ds["link"]).values
    cap = m.inp.arc_capacity_gbh[[m.inp.link_ids.index(str(lk)) for lk in ds["link"].values]]
    pos = rent > RENT_TOL
    short = _allowed_shortfall(ds, rent)
    for i in np.nonzero(pos)[0]:
        assert ds["min_load"].values[i] >= cap[i] * (1 - 1e-6) - short[i], \
            (str(ds["link"].values[i]), float(rent[i]), float(ds["min_utilization"].values[i]))
    # every range solution cost what the optimum costs (recomputed as cost @ x)
    z = ds.attrs["objective"]
    assert ds.attrs["max_excess_cost"] <= ds.attrs["rel_tol"] * max(abs(z), 1.0) + \
        HIGHS_OPTIONS["primal_feasibility_tolerance"] * (abs(z) + 1.0 / ds.attrs["cost_row_scale"])
    # the optimum found by solve lies inside the range
    u = r.link_utilization.sel(link=ds["link"]).values
    assert np.all(ds["min_utilization"].values <= u + 1e-6) and np.all(u <= ds["max_utilization"].values + 1e-6)
    return int(pos.sum())


def test_us5_35x_rent_links_saturated_in_every_optimum(us5):
    """us5 at 35x, transfer-aware: the links with positive congestion rent have minimum load
    equal to capacity, and no other link is saturated in any optimum (the dispatch of the
    saturated set is unique)."""
    m = tf.Market(us5, transfer_aware=True)
    n_rent = _check_rent_links_at_capacity(m, 35.0)
    assert n_rent > 0
    rng = link_load_range(us5, demand_scale=35.0, transfer_aware=True)
    every, some = saturated_count_range(rng)
    assert every == some == n_rent
    r = m.solve(demand_scale=35.0)
    rent_links = set(r.dataset["link"].values[r.dataset["congestion_rent"].values > RENT_TOL])
    assert set(rng["link"].values[rng["min"].values >= 1 - 1e-6]) == rent_links


def test_us5_35x_range_solutions_cost_the_optimum(us5):
    """The range is computed on the arc LP with batch training's ~8e-6 $/M-token transfer
    costs in the cost row: the largest recomputed excess is within the stated slack."""
    m = tf.Market(us5, transfer_aware=True)
    ds = m.link_load_range(demand_scale=35.0)
    z = ds.attrs["objective"]
    assert 0.0 <= ds.attrs["max_excess_cost"] <= 2 * ds.attrs["rel_tol"] * z
    arr = m.arc.lp(m.inp, 35.0) if m.formulation == "arc" else tf.Market(us5, formulation="arc").arc.lp(m.inp, 35.0)
    nz = np.abs(arr.cost[arr.cost != 0])
    from tokenflow.lp.model import SMALL
    assert nz.min() / z < SMALL  # the old 1/z scaling would have dropped these
    assert nz.min() * ds.attrs["cost_row_scale"] > SMALL


def test_range_refuses_a_face_that_costs_more(us5, monkeypatch):
    """If the solver lost the small cost entries (as a 1/z-scaled row did), the range
    solutions cost more than z and the range is refused, not reported."""
    import tokenflow.clearing.load_range as lr

    class Lossy(lr.LiveLP):
        def _scaled(self, arr):
            data, lb, ub = super()._scaled(arr)
            last = arr.indices == arr.n_rows - 1
            data = np.where(last & (np.abs(data) < 1.0), 0.0, data)  # drop the cost row's small entries
            return data, lb, ub

    m = tf.Market(us5, transfer_aware=True, formulation="arc")
    m.solve(demand_scale=35.0)  # the market's own LP is built before the solver turns lossy
    monkeypatch.setattr(lr, "LiveLP", Lossy)
    with pytest.raises(SolverError, match="more than the optimum"):
        m.link_load_range()


def test_range_refuses_cost_spans_it_cannot_hold(us5, monkeypatch):
    import tokenflow.lp.model as model

    m = tf.Market(us5, transfer_aware=True, formulation="arc")
    m.solve(demand_scale=35.0)
    monkeypatch.setattr(model, "SMALL", 1e-3)  # pretend the solver kept only entries >= 1e-3
    with pytest.raises(SolverError, match="span"):
        m.link_load_range()


@functools.lru_cache(maxsize=32)
def _network(n: int, seed: int, bw: float) -> tf.Scenario:
    s = tf.synthetic_network(n, seed=seed)
    return s.replace(params={"link_bandwidth_gbps": bw * float(s.params["link_bandwidth_gbps"])})


@settings(deadline=None, max_examples=8, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 5), seed=st.integers(0, 10_000), bw=st.sampled_from([0.001, 0.003, 0.01, 1.0]),
       frac=st.floats(0.3, 0.99), ta=st.booleans())
def test_positive_rent_means_min_load_at_capacity(n, seed, bw, frac, ta):
    """On small random networks (scarce to ample bandwidth, near and below s*): any link with
    a positive congestion rent carries its capacity in every optimum."""
    s = _network(n, seed, bw)
    m = tf.Market(s, transfer_aware=ta, formulation="arc")
    scale = frac * m.scale_limit().max_scale
    _check_rent_links_at_capacity(m, scale)


@pytest.mark.parametrize("n, seed, frac", [(4, 7, 0.5), (5, 11, 0.5), (3, 1, 0.9)])
def test_positive_rent_cases_are_exercised(n, seed, frac):
    """Cases of the property above where links do carry a positive rent (so it is not
    checked on uncongested networks only)."""
    m = tf.Market(_network(n, seed, 0.001), formulation="arc")
    assert _check_rent_links_at_capacity(m, frac * m.scale_limit().max_scale) > 0


def test_a_subnormal_cost_is_a_named_error_not_a_division_by_zero():
    """A transfer cost of 5e-324 $/GB (found by the property test): the cost row's scale is taken
    in logs, and a span the solver cannot hold is a SolverError naming the computation."""
    import tokenflow as tf
    from tokenflow.clearing.engine import Market

    m = Market(tf.load_scenario("us5"))
    m.solve(demand_scale=0.0)
    with pytest.raises(tf.TokenflowError, match="link load range: cost coefficients span"):
        m.link_load_range(transfer_cost_usd_per_gb=5e-324)
