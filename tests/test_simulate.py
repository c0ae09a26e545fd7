"""SimPy replay against the analytic layer at moderate utilisation (seeded)."""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.core.errors import TokenflowError
from tokenflow.latency.market_latency import route_rtt_ms, route_rtts
from tokenflow.latency.profiles import default_profiles
from tokenflow.latency.queueing import replica_latency
from tokenflow.latency.simulate import simulate_pool


@pytest.fixture(scope="module")
def chat():
    return default_profiles(tf.load_scenario("us5"))["chat"]


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_simulation_agrees_with_analytic_at_moderate_load(chat, rho):
    """Poisson arrivals, 2 pooled replicas: mean within 10 %, p99 within 15 % of the analytic
    layer (stated tolerances; the analytic tail is a mixture approximation)."""
    sim = simulate_pool(chat, rho, replicas=2, n_requests=1500, arrival_cv=1.0, seed=3)
    ana = replica_latency(chat, rho, 1.0, 0.99, replicas=2)
    assert sim["mean_ms"] == pytest.approx(ana["mean_ms"], rel=0.10)
    assert sim["p99_ms"] == pytest.approx(ana["p_ms"], rel=0.15)
    assert sim["served_ratio"] == pytest.approx(1.0, abs=0.1)


def test_seeded_and_rtt_added(chat):
    a = simulate_pool(chat, 0.6, replicas=1, n_requests=500, arrival_cv=1.0, seed=7)
    b = simulate_pool(chat, 0.6, replicas=1, n_requests=500, arrival_cv=1.0, seed=7)
    c = simulate_pool(chat, 0.6, replicas=1, n_requests=500, arrival_cv=1.0, seed=7, rtt_ms=[40.0])
    assert a == b
    assert c["mean_ms"] == pytest.approx(a["mean_ms"] + 40.0, rel=1e-9)


def test_overload_shows_in_wait_and_throughput(chat):
    low = simulate_pool(chat, 0.5, replicas=1, n_requests=800, arrival_cv=1.0, seed=1)
    over = simulate_pool(chat, 1.2, replicas=1, n_requests=800, arrival_cv=1.0, seed=1)
    assert over["wait_mean_ms"] > 10 * max(low["wait_mean_ms"], 1.0)
    assert over["served_ratio"] < 0.95


def test_bad_input(chat):
    with pytest.raises(TokenflowError, match="utilisation"):
        simulate_pool(chat, 0.0)
    with pytest.raises(TokenflowError, match="dispatch"):
        simulate_pool(chat, 0.5, dispatch="magic")


def test_market_replay_covers_the_pools_in_use(us5):
    from tokenflow.latency.simulate import simulate_market

    r = tf.solve(us5, demand_scale=5)
    profiles = default_profiles(us5)
    out = simulate_market(r, us5, profiles={"chat": profiles["chat"]}, replicas=1, n_requests=200, seed=2)
    proc = r.processing.sel(workload="chat")
    sim = out["sim_p99_ms"].sel(workload="chat")
    # a latency for every node that processes chat, none elsewhere or for other workloads
    assert bool((np.isfinite(sim) == (proc > 1e-9)).all())
    assert bool(np.isnan(out["sim_p99_ms"].sel(workload="image")).all())
    # the end-to-end p99 includes at least the round trip of the routes in use; the analytic
    # p99 adds the slowest route in use, which is no faster than the shortest path
    rtt = route_rtt_ms(us5)
    worst = route_rtts(r, us5)["rtt_max_ms"].sel(workload="chat").max("origin")
    for n in proc["node"].values[proc.values > 1e-9]:
        flows = r.dataset["transfers"].sel(node=n, workload="chat").to_pandas()
        assert float(sim.sel(node=n)) >= rtt.loc[flows.index[flows > 1e-9], n].min()
        assert float(worst.sel(node=n)) >= rtt.loc[flows.index[flows > 1e-9], n].max() - 1e-9
        assert float(out["ana_p99_ms"].sel(node=n, workload="chat")) > float(worst.sel(node=n))
