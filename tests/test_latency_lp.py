"""The latency-consistent market as one LP (issue 27): a hand-solved case, one optimal cost
from every start, solver and column order, and the consistent unit from one source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tokenflow as tf
from tokenflow.latency.latency_lp import latency_lp_clearing
from tokenflow.latency.market_latency import pool_replicas
from tokenflow.latency.profiles import measured_profiles
from tokenflow.latency.queueing import arrival_scv, max_utilisation
from tokenflow.scenarios.serving import COLUMNS, SERVER_W_PER_GPU, WORKLOAD_SERVING, energy_terms, serving_models
from tokenflow.scenarios.traces import trace_stats


def test_latency_row_by_hand(two_nodes, profile):
    """A holds all demand; its pool (the whole node) may be loaded to rho*_A, the rest goes to B."""
    p = profile["w"]
    lc = latency_lp_clearing(two_nodes, 1.0, profiles=profile, peak=True)
    assert lc.converged and lc.exact
    f = max_utilisation(p, 500.0, arrival_scv(p), 0.99, pool_replicas(10_000.0, 1.0, p), tol=1e-12) \
        / p.peak_to_mean()
    assert 0 < f < 0.8
    assert lc.rho_star.loc["A", "w"] == pytest.approx(f, rel=1e-9)
    proc = lc.result.processing.sel(workload="w").to_pandas()
    assert proc["A"] == pytest.approx(10_000.0 * f, rel=1e-7)
    assert proc["B"] == pytest.approx(8000.0 - 10_000.0 * f, rel=1e-7)
    # A's price: B's cost plus the transfer (the latency row binds at A, not the compute row)
    assert float(lc.result.prices.sel(node="A", workload="w")) == pytest.approx(0.20 + 0.001, abs=1e-6)
    assert lc.cost_change_pct > 0 and lc.excess_latency_row <= 1e-6
    # without the busiest minute the whole node may be loaded nearly to 1: nothing moves
    st = latency_lp_clearing(two_nodes, 1.0, profiles=profile, peak=False)
    assert st.cost_change_pct == pytest.approx(0.0, abs=1e-9)


@pytest.fixture(scope="module")
def us5c():
    return tf.load_scenario("us5").with_choices(energy_accounting="prefill_and_decode")


VARIANTS = {
    "from rho*=1": {},
    "from rho*=0.5": {"start": 0.5},
    "from rho*=0.9": {"start": 0.9},
    "damped 0.5": {"damping": 0.5},
    "IPM": {"algorithm": "ipm"},
    "shuffled columns": {"order_seed": 1},
    "IPM, shuffled columns": {"algorithm": "ipm", "order_seed": 2},
    "from 0.7, damped 0.3": {"start": 0.7, "damping": 0.3},
}


def _spread(s, scale, peak, names):
    net, costs = None, {}
    for name in names:
        lc = latency_lp_clearing(s, scale, peak=peak, network_only=net, **VARIANTS[name])
        assert lc.converged, name
        net = lc.network_only
        costs[name] = lc.objective
    v = np.array(list(costs.values()))
    return float((v.max() - v.min()) / v.min()), costs


def test_one_cost_from_every_start_fast(us5c):
    """Four variants (start, damping, IPM and column order) reach one cost to 1e-6."""
    scale = 10.0
    spread, costs = _spread(us5c, scale, False, ["from rho*=1", "from rho*=0.5", "damped 0.5",
                                                  "IPM, shuffled columns"])
    assert spread <= 1e-6, costs


@pytest.mark.slow
@pytest.mark.parametrize("peak, scale", [(False, 10.43), (True, 4.2)])
def test_one_cost_from_every_start_all_variants(us5c, peak, scale):
    spread, costs = _spread(us5c, scale, peak, list(VARIANTS))
    assert spread <= 1e-6, costs


def test_latency_lp_is_dearer_than_the_network_only_market(us5c):
    lc = latency_lp_clearing(us5c, 4.0, peak=True)
    assert lc.objective >= lc.network_only.objective * (1 - 1e-9)
    assert (lc.rho_star.to_numpy() <= 1.0).all() and (lc.rho_star.to_numpy() > 0).all()
    # the latency row holds: GPUs each pool needs at its rho* within the node's capacity
    ds = lc.result.dataset
    need = (ds["processing"].to_pandas() * us5c.workloads["energy_kwh_per_mtok"]).div(lc.rho_star).sum(axis=1)
    assert (need <= us5c.compute_capacity_kw * (1 + 1e-7)).all()


@pytest.mark.parametrize("scenario", ["us5", "us20"])
def test_consistent_unit_capacity_equals_serving_saturation(scenario):
    """One source per unit: the LP's capacity of a replica is what the serving layer serves."""
    s = tf.load_scenario(scenario).with_choices(energy_accounting="prefill_and_decode")
    P = measured_profiles(s)
    checked = 0
    for w in WORKLOAD_SERVING:
        if w in P:
            assert P[w].lp_to_pool_utilisation() == pytest.approx(1.0, abs=0.02), w
            checked += 1
    assert checked == 2
    # the mixed reading (scenario decode) misses it for both workloads
    e = energy_terms(tf.load_scenario(scenario).workloads["energy_kwh_per_mtok"], decode_source="scenario")
    e1 = energy_terms(tf.load_scenario(scenario).workloads["energy_kwh_per_mtok"])
    for w in WORKLOAD_SERVING:
        assert abs(e1.loc[w, "consistent_j"] / e.loc[w, "consistent_j"] - 1) > 0.02


def _synthetic(prefill_s: float, coef: tuple[float, float, float], gpus: int = 1) -> pd.DataFrame:
    """A serving file whose first-token latencies have prefill slope ``prefill_s`` and whose
    static-batch throughputs come from the step model ``a + c b + d b ctx`` plus the prompt."""
    a, c, d = coef
    rows = []
    base = {"accelerator": "H100-SXM-80GB", "model": "8b-class", "model_name": "synthetic", "gpus": gpus,
            "precision": "fp8", "engine": "synthetic", "source_url": "script:tests/test_latency_lp.py",
            "source_date": "2026",
            "source_locator": "x", "note": ""}
    for n_in in (128, 2048):
        rows.append(base | {"quantity": "ttft", "batch": 1, "input_tokens": n_in, "output_tokens": 1,
                            "value": 1e3 * (0.005 + prefill_s * n_in), "unit": "ms"})
    for b, n_in, n_out in ((8, 128, 128), (64, 128, 2048), (64, 2048, 128), (32, 1024, 512)):
        ctx = n_in + n_out / 2
        t_run = b * n_in * prefill_s + n_out * (a + c * b + d * b * ctx)
        rows.append(base | {"quantity": "output_throughput", "batch": b, "input_tokens": n_in,
                            "output_tokens": n_out, "value": b * n_out / t_run, "unit": "tok/s"})
    rows.append(base | {"quantity": "gpu_power", "batch": np.nan, "input_tokens": np.nan, "output_tokens": np.nan,
                        "value": 700.0, "unit": "W"})
    return pd.DataFrame(rows)[COLUMNS]


def test_no_energy_counted_twice_on_a_synthetic_measurement():
    """Known prefill and decode energy in, the same out: the decode term holds no prefill."""
    pre_s, coef = 50e-6, (0.008, 1e-4, 2e-8)
    models = serving_models(_synthetic(pre_s, coef))
    sm = models[("H100-SXM-80GB", "8b-class")]
    assert sm.prefill_s_per_token == pytest.approx(pre_s, rel=1e-9)
    np.testing.assert_allclose(sm.step_coef, coef, rtol=1e-6)
    t = trace_stats("conv")
    ctx = t.prompt_mean + t.generated_mean / 2
    known_decode = (coef[0] + coef[1] * 64 + coef[2] * 64 * ctx) * SERVER_W_PER_GPU / 64
    known_prefill = t.prompt_mean / t.generated_mean * pre_s * SERVER_W_PER_GPU
    e = energy_terms(pd.Series({"chat": 0.1}), models=models).loc["chat"]
    assert e["decode_j"] == pytest.approx(known_decode, rel=1e-6)
    assert e["prefill_j"] == pytest.approx(known_prefill, rel=1e-9)
    assert e["consistent_j"] == pytest.approx(known_decode + known_prefill, rel=1e-6)
    # a whole-response reading (run energy over output tokens) would hold the prompt's energy too
    b, n_in, n_out = 64, 2048, 128
    run_s = b * n_in * pre_s + n_out * (coef[0] + coef[1] * b + coef[2] * b * (n_in + n_out / 2))
    whole = run_s * SERVER_W_PER_GPU / (b * n_out)
    assert whole > 2 * (coef[0] + coef[1] * b + coef[2] * b * (n_in + n_out / 2)) * SERVER_W_PER_GPU / b
