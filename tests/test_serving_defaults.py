"""Issue 16: the package's serving layer defaults to the measured profiles, not the identity.

``default_profiles`` fits the step-time slope so that the LP's capacity equals a replica's
saturation throughput by construction; every function that needs profiles and is not given
them must use ``serving_profiles`` (= ``measured_profiles``) instead."""

from __future__ import annotations

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.latency.market_latency import market_latency
from tokenflow.latency.profiles import default_profiles, energy_mix, measured_profiles, serving_profiles


@pytest.fixture(scope="module")
def us5c():
    return tf.load_scenario("us5").with_choices(energy_accounting="prefill_and_decode")


def test_serving_profiles_are_the_measured_ones_and_not_the_identity(us5c):
    P, M, D = serving_profiles(us5c), measured_profiles(us5c), default_profiles(us5c)
    assert P == M
    # the identity: LP capacity == saturation in every default profile, by a slope fitted to the
    # energy figure; the measured ones keep the measured step times (and in the consistent unit
    # their capacity matches because energy and capacity come from one source, not by a fit)
    Pg, Dg = measured_profiles(tf.load_scenario("us5")), default_profiles(tf.load_scenario("us5"))
    for w in ("chat", "code_review"):
        assert D[w].lp_to_pool_utilisation() == 1.0
        assert P[w].step_slope_s != pytest.approx(D[w].step_slope_s, rel=1e-3), w
        assert abs(Pg[w].lp_to_pool_utilisation() - 1.0) > 1e-3, w  # the paper's unit: two sources
        assert Dg[w].lp_to_pool_utilisation() == 1.0
        assert P[w].lp_tokens_per_s is not None
    # image has no serving data: it keeps its declared profile
    assert P["image"] == D["image"]
    with pytest.raises(tf.ScenarioError, match="serving_profiles"):
        serving_profiles("us5")


def test_market_latency_and_energy_mix_default_to_the_measured_profiles(us5c):
    r = tf.solve(us5c, demand_scale=5.0)
    lat = market_latency(r, us5c)
    meas = market_latency(r, us5c, measured_profiles(us5c))
    ident = market_latency(r, us5c, default_profiles(us5c))
    np.testing.assert_allclose(lat["p_ms"].values, meas["p_ms"].values, equal_nan=True)
    # the pools run at their own utilisation: the code-review pool's differs from the LP's
    u = r.dataset["compute_utilization"].to_pandas()
    pu = lat["pool_utilisation"].sel(workload="code_review").to_pandas().dropna()
    ratio = measured_profiles(us5c)["code_review"].lp_to_pool_utilisation()
    np.testing.assert_allclose(pu.values, (u[pu.index] * ratio).values, rtol=1e-12)
    assert not np.allclose(lat["p_ms"].sel(workload="code_review").values,
                           ident["p_ms"].sel(workload="code_review").values, equal_nan=True)
    em = energy_mix(us5c)
    em_meas = energy_mix(us5c, measured_profiles(us5c))
    np.testing.assert_allclose(em["factor"].astype(float), em_meas["factor"].astype(float))


def test_clearing_and_replay_default_to_the_measured_profiles(us5c):
    from tokenflow.latency.latency_clearing import latency_consistent_clearing
    from tokenflow.latency.simulate import simulate_market

    a = latency_consistent_clearing(us5c, 5.0, peak=False, max_iter=3)
    b = latency_consistent_clearing(us5c, 5.0, profiles=measured_profiles(us5c), peak=False, max_iter=3,
                                    network_only=a.network_only)
    pd_ = a.pool_rho_max.fillna(-1.0)
    assert pd_.equals(b.pool_rho_max.fillna(-1.0))
    # the replay's default: each pool at its own utilisation (LP utilisation x LP/saturation)
    r = a.network_only
    sim = simulate_market(r, us5c, n_requests=60, max_steps=2000)
    u = r.dataset["compute_utilization"].to_pandas()
    rho = sim["rho"].sel(workload="code_review").to_pandas().dropna()
    ratio = measured_profiles(us5c)["code_review"].lp_to_pool_utilisation()
    np.testing.assert_allclose(rho.values, np.minimum(u[rho.index] * ratio, 1.49).values, rtol=1e-12)
