"""Queueing layer: Erlang C against an independent birth-death chain, Allen-Cunneen limits,
and the batching model's identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenflow as tf
from tokenflow.core.errors import TokenflowError
from tokenflow.latency.profiles import GPU_KW, default_profiles
from tokenflow.latency.queueing import (
    erlang_c,
    ggc_wait,
    max_utilisation,
    replica_latency,
    thinned_scv,
)


def mmc_by_ctmc(lam: float, mu: float, c: int, n_max: int = 4000) -> tuple[float, float]:
    """(P(wait), mean wait) of M/M/c from the stationary distribution of the birth-death chain,
    solved numerically (truncated state space) -- independent of the Erlang formulas."""
    rates_up = np.full(n_max, lam)
    rates_down = np.array([min(n + 1, c) * mu for n in range(n_max)])
    logpi = np.concatenate([[0.0], np.cumsum(np.log(rates_up) - np.log(rates_down))])
    pi = np.exp(logpi - logpi.max())
    pi /= pi.sum()
    n = np.arange(n_max + 1)
    p_wait = pi[n >= c].sum()
    lq = ((n - c).clip(min=0) * pi).sum()
    return float(p_wait), float(lq / lam)


@pytest.mark.parametrize("c,lam,mu", [(1, 0.5, 1.0), (2, 1.5, 1.0), (8, 6.0, 1.0), (64, 60.0, 1.0),
                                      (300, 285.0, 1.0)])
def test_erlang_c_matches_birth_death_chain(c, lam, mu):
    pw, wq = ggc_wait(lam, 1 / mu, c, 1.0, 1.0)
    pw_ref, wq_ref = mmc_by_ctmc(lam, mu, c)
    assert pw == pytest.approx(pw_ref, rel=1e-6)
    assert wq == pytest.approx(wq_ref, rel=1e-6)


def test_erlang_c_textbook_values():
    # M/M/1: P(wait) = rho; M/M/2 at a = 1: C = 1/3 (closed form 2a^2 / (2 + a)(2 - a) ... = 1/3)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(5, 5.0) == 1.0
    assert erlang_c(3, 0.0) == 0.0
    # large c uses the Poisson form; continuity across the switch
    assert erlang_c(201, 190.0) == pytest.approx(mmc_by_ctmc(190.0, 1.0, 201)[0], rel=1e-6)
    with pytest.raises(TokenflowError):
        erlang_c(0, 1.0)
    with pytest.raises(TokenflowError):
        erlang_c(2, -1.0)


def test_allen_cunneen_scaling_and_saturation():
    _, w_mm = ggc_wait(3.0, 1.0, 4, 1.0, 1.0)
    _, w_md = ggc_wait(3.0, 1.0, 4, 1.0, 0.0)
    assert w_md == pytest.approx(w_mm / 2)
    assert ggc_wait(4.0, 1.0, 4)[1] == math.inf


@given(st.floats(0.0, 30.0), st.integers(1, 40))
@settings(max_examples=40, deadline=None)
def test_erlang_c_is_a_probability_and_increases_with_load(a, c):
    v = erlang_c(c, a)
    assert 0.0 <= v <= 1.0
    assert erlang_c(c, a * 1.01 + 1e-6) >= v - 1e-12


@pytest.fixture(scope="module")
def profiles():
    return default_profiles(tf.load_scenario("us5"))


def test_profiles_reproduce_lp_capacity(profiles):
    """A full batch delivers exactly the tokens/s the scenario's energy per token implies."""
    s = tf.load_scenario("us5")
    for w, p in profiles.items():
        j_per_token = s.workloads.loc[w, "energy_kwh_per_mtok"] * 3.6
        tokens_per_s = p.max_batch * p.tokens_per_step / p.step_time(p.max_batch)
        assert tokens_per_s == pytest.approx(p.gpus_per_replica * GPU_KW * 1000 / j_per_token)


def test_batch_reaches_max_at_saturation_and_latency_grows(profiles):
    p = profiles["chat"]
    near = replica_latency(p, 0.999999)
    assert near["batch"] == pytest.approx(p.max_batch, rel=1e-3)
    lats = [replica_latency(p, r)["p_ms"] for r in (0.1, 0.5, 0.9, 0.97, 0.99)]
    assert all(np.diff(lats) > 0)
    assert replica_latency(p, 1.0)["p_ms"] == math.inf
    # pooling many replicas (least-loaded router) shortens the wait at the same utilisation
    assert replica_latency(p, 0.95, replicas=50)["p_ms"] < replica_latency(p, 0.95, replicas=1)["p_ms"]


def test_max_utilisation_meets_budget(profiles):
    p = profiles["chat"]
    budget = 400.0
    rho = max_utilisation(p, budget)
    assert 0 < rho < 1
    assert replica_latency(p, rho)["p_ms"] <= budget
    assert replica_latency(p, min(rho + 2e-3, 0.9999))["p_ms"] > budget
    assert max_utilisation(p, 1.0) == 0.0  # an idle replica already needs more


def test_image_is_m_d_1(profiles):
    """One image per GPU, fixed steps: the wait is Allen-Cunneen with cs2 = 0 (half of M/M/1)."""
    p = profiles["image"]
    service = p.fixed_steps * p.step_time(1)
    lat = replica_latency(p, 0.5)
    assert lat["wait_mean_ms"] == pytest.approx(0.5 * service / (2 * 0.5) * 1e3, rel=1e-9)
    assert lat["mean_ms"] == pytest.approx(lat["wait_mean_ms"] + service * 1e3)


def test_thinning():
    assert thinned_scv(5.0, 1) == 5.0
    assert thinned_scv(5.0, 4) == pytest.approx(2.0)


def test_bad_inputs_raise_clear_errors(profiles):
    p = profiles["chat"]
    with pytest.raises(TokenflowError, match="utilisation"):
        replica_latency(p, -0.1)
    with pytest.raises(TokenflowError, match="utilisation"):
        replica_latency(p, float("nan"))
    with pytest.raises(TokenflowError, match="quantile"):
        replica_latency(p, 0.5, q=1.0)


def test_market_latency_needs_origin_flows(us5):
    from tokenflow.latency.market_latency import market_latency

    r = tf.solve(us5, demand_scale=10)
    lat = market_latency(r, us5)
    modelled = ["chat", "image", "code_review"]  # batch training has no latency limit
    used = (r.dataset["transfers"].transpose("origin", "node", "workload") > 1e-9).sel(workload=modelled)
    e2e = lat["e2e_p_ms"].sel(workload=modelled)
    # every route in use gets an end-to-end latency, at least its round trip plus prefill
    assert bool((~np.isnan(e2e) == used).all())
    rtt = lat["rtt_ms"].broadcast_like(e2e)
    assert bool((e2e.where(used) > rtt.where(used)).sum() == used.sum())
    assert bool(np.isnan(lat["e2e_p_ms"].sel(workload="batch_training")).all())
    ra = tf.solve(us5, demand_scale=10, formulation="arc")
    if np.isnan(ra.dataset["transfers"].values).all():
        with pytest.raises(TokenflowError, match="path formulation"):
            market_latency(ra, us5)


def _label_rtt(s, label: str) -> float:
    from tokenflow.scenarios.network import arc_table

    lat = arc_table(s)["latency_ms"]
    hops = label.split(" > ")
    return float(sum(2.0 * lat[f"{a}->{b}"] for a, b in zip(hops[:-1], hops[1:])))


def test_route_rtts_cover_every_route_carrying_flow(us5):
    """The worst RTT used for latency is at least the RTT of each route the LP put flow on (the
    path in use reported by the price decomposition), and at 35x one of them is slower than the
    fastest path: the shortest-path RTT would understate it."""
    from tokenflow.latency.latency_clearing import pool_limits
    from tokenflow.latency.market_latency import market_latency, route_rtt_ms, route_rtts

    r = tf.solve(us5, demand_scale=35)
    rt = route_rtts(r, us5)
    lat = market_latency(r, us5)
    dec = r.price_decomposition()
    fastest = route_rtt_ms(us5)
    slower_than_fastest = 0
    for o in us5.node_ids:
        for w in us5.workload_ids:
            via, label = str(dec["via"].sel(node=o, workload=w).values), str(dec["path"].sel(node=o, workload=w).values)
            if not label or float(r.dataset["transfers"].sel(origin=o, node=via, workload=w)) <= 1e-9:
                continue
            used = _label_rtt(us5, label)
            assert float(rt["rtt_max_ms"].sel(origin=o, node=via, workload=w)) >= used - 1e-9
            assert float(rt["rtt_min_ms"].sel(origin=o, node=via, workload=w)) <= used + 1e-9
            assert float(lat["rtt_ms"].sel(origin=o, node=via, workload=w)) >= used - 1e-9
            if w in ("chat", "image", "code_review"):
                assert float(lat["e2e_p_ms"].sel(origin=o, node=via, workload=w)) > used
            slower_than_fastest += used > fastest.loc[o, via] + 1e-6
    assert slower_than_fastest >= 1
    # flow-weighted RTT lies between the fastest and the slowest route in use, never above the LP limit
    assert bool((rt["rtt_mean_ms"] <= rt["rtt_max_ms"] + 1e-9).where(rt["rtt_max_ms"].notnull(), True).all())
    assert bool((rt["rtt_mean_ms"] >= rt["rtt_min_ms"] - 1e-9).where(rt["rtt_min_ms"].notnull(), True).all())
    lim = us5.workloads["latency_limit_ms"]
    for w in us5.workload_ids:
        assert float(rt["rtt_max_ms"].sel(workload=w).max()) <= lim[w] + 1e-6
    # the derating's worst route is the slowest route in use as well
    rho = pool_limits(r, us5, default_profiles(us5), us5.compute_capacity_kw)
    assert rho.notna().sum().sum() > 0


def test_mixture_quantile_closed_form_matches_bisection():
    """The closed-form quantile of wait + prefill equals the bisection on the survival function
    where the level is not at a grid step, and is the grid point itself where it is (4 of 400
    points above v at q = 0.99: the continuous part never reaches the level)."""
    from tokenflow.latency.queueing import _mixture_quantile, _mixture_quantile_bisect

    rng = np.random.default_rng(7)
    for _ in range(400):
        n = int(rng.integers(1, 300)) * 2 + 1  # odd: 1 - q is never k/n for these q
        x = np.sort(rng.gamma(0.7, rng.uniform(0.001, 1.0), n))
        pw, m = float(rng.uniform(1e-4, 1.0)), float(10 ** rng.uniform(-3, 0.5))
        q = float(rng.choice([0.9, 0.99, 0.999]))
        assert _mixture_quantile(q, pw, m, x) == pytest.approx(_mixture_quantile_bisect(q, pw, m, x), rel=1e-9)
    x = np.linspace(0.1, 0.5, 400)
    v = _mixture_quantile(0.99, 1e-6, 1e-3, x)
    assert v == x[396]  # the jump that takes the share above v from 4/400 to 3/400
    surv = lambda u: np.mean(np.where(u < x, 1.0, 1e-6 * np.exp(-np.maximum(u - x, 0) / 1e-3)))  # noqa: E731
    assert surv(v - 1e-9) > 0.01 >= surv(v)
    # no wait: the grid's own quantile (ties and grid steps included), where bisection converges
    for _ in range(200):
        n = int(rng.integers(1, 500))
        x = np.round(rng.gamma(0.7, 0.3, n), int(rng.integers(1, 4)))  # rounded: ties
        q = float(rng.choice([0.5, 0.9, 0.99, 0.999]))
        for pw, m in ((0.0, 0.0), (0.3, 0.0)):
            v = _mixture_quantile(q, pw, m, x)
            assert v in x and v == pytest.approx(_mixture_quantile_bisect(q, pw, m, x), rel=1e-12, abs=1e-15)
            assert np.mean(x > v) <= 1 - q < np.mean(x >= v) or v == x.min()


def test_route_rtts_without_the_mean_gives_the_same_bounds(us5):
    """mean=False skips the decomposition LP only: the bounds are the same numbers."""
    from tokenflow.latency.market_latency import route_rtts

    r = tf.solve(us5, demand_scale=35)
    full, short = route_rtts(r, us5), route_rtts(r, us5, mean=False)
    assert "rtt_mean_ms" in full and "rtt_mean_ms" not in short
    for k in ("rtt_max_ms", "rtt_min_ms"):
        np.testing.assert_array_equal(full[k].values, short[k].values)
    with pytest.raises(tf.ScenarioError, match="mean"):
        route_rtts(r, us5, mean="no")


def test_ggc_wait_at_saturation_by_round_off_is_unbounded():
    """A pool whose utilisation is one up to round-off (a * mean_service a hair below c) waits
    for ever, instead of dividing by zero."""
    import math as _m

    from tokenflow.latency.queueing import ggc_wait

    hits = 0
    for c in range(1, 400):
        for mean in (0.1, 0.3, 0.7, 1.1, 3.3):
            lam = c / mean
            if lam * mean < c and c / mean - lam <= 0:
                hits += 1
                assert ggc_wait(lam, mean, c) == (1.0, _m.inf)
    assert hits  # the round-off case occurs among these
