"""Serving measurements, the energy_accounting choice and the consistent claims."""

from __future__ import annotations

import csv
import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tokenflow as tf
from tokenflow.cli import main
from tokenflow.core.errors import ScenarioError
from tokenflow.scenarios.serving import SERVER_W_PER_GPU, energy_terms, load_serving_data, serving_models

DATA = resources.files("tokenflow").joinpath("data", "serving_measurements.csv")


def _rows() -> list[dict[str, str]]:
    with DATA.open("r", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_row_has_a_source():
    rows = _rows()
    assert rows
    for i, r in enumerate(rows, 1):
        assert r["source_url"].startswith(("https://", "script:")), (i, r["source_url"])
        assert r["source_date"].strip() and r["source_locator"].strip(), i


def test_bundled_data_loads_and_covers_8b_and_70b_on_h100():
    d = load_serving_data()
    assert set(d["model"]) >= {"8b-class", "70b-class"}
    assert (d["accelerator"] == "H100-SXM-80GB").all()
    ms = serving_models()
    for key in [("H100-SXM-80GB", "8b-class"), ("H100-SXM-80GB", "70b-class")]:
        m = ms[key]
        assert m.prefill_tokens_per_s > 0 and m.prefill_j_per_prompt_token_gpu > 0
        # the step-time fit grows with batch and with context and reproduces the points within 15 %
        assert m.step_time(128, 1000) > m.step_time(32, 1000)
        assert m.step_time(64, 3000) > m.step_time(64, 500)
        pts = m.decode_points
        assert (abs(pts["fit_s"] / pts["step_s"] - 1) < 0.2).all()
    # a bigger model is slower per prompt token on its replica and costs more energy
    assert ms[("H100-SXM-80GB", "70b-class")].prefill_j_per_prompt_token_gpu > \
        ms[("H100-SXM-80GB", "8b-class")].prefill_j_per_prompt_token_gpu


def _write(tmp_path: Path, mutate) -> Path:
    rows = _rows()
    rows = mutate(rows) or rows
    cols = list(rows[0].keys())
    p = tmp_path / "serving.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return p


def test_missing_column_names_file_and_column(tmp_path):
    p = _write(tmp_path, lambda rows: [{k: v for k, v in r.items() if k != "source_url"} for r in rows])
    with pytest.raises(ScenarioError, match=r"serving\.csv.*missing columns \['source_url'\]"):
        load_serving_data(p)


@pytest.mark.parametrize("field,value,pattern", [
    ("value", "0", r"row 3: value: must be a positive"),
    ("value", "-5", r"row 3: value: must be a positive"),
    ("value", "nan", r"row 3: value: must be a positive"),
    ("value", "fast", r"row 3: value: expected a number"),
    ("accelerator", "TPU-v9", r"row 3: accelerator: unknown 'TPU-v9'"),
    ("model", "1t-class", r"row 3: model: unknown '1t-class'"),
    ("unit", "tok/h", r"row 3: unit: 'tok/h' is not a unit of output_throughput"),
    ("source_url", "", r"row 3: source_url: empty"),
    ("batch", "", r"row 3: batch: missing"),
])
def test_bad_row_names_file_row_and_field(tmp_path, field, value, pattern):
    def mutate(rows):
        assert rows[2]["quantity"] == "output_throughput"
        rows[2][field] = value
    p = _write(tmp_path, mutate)
    with pytest.raises(ScenarioError, match=pattern) as exc:
        load_serving_data(p)
    assert str(p) in str(exc.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(ScenarioError, match="file not found"):
        load_serving_data(tmp_path / "nope.csv")


def _independent_energy(workload: str, trace: str, model_rows: str, e_kwh: float) -> tuple[float, float]:
    """(generated-only, prefill-and-decode) J per generated token, from the raw CSV rows and the
    trace summary JSON, without tokenflow.scenarios.serving."""
    rows = [r for r in _rows() if r["model"] == model_rows]
    ttft = sorted((float(r["input_tokens"]), float(r["value"]) / 1e3) for r in rows if r["quantity"] == "ttft")
    (x0, y0), (x1, y1) = ttft[0], ttft[-1]
    gpus = float(next(r["gpus"] for r in rows if r["quantity"] == "ttft"))
    prefill_server_j = (y1 - y0) / (x1 - x0) * gpus * 10.2e3 / 8
    summ = json.loads(resources.files("tokenflow").joinpath("data", "azure_trace_summary.json").read_text())
    t = summ["traces"][trace]
    ratio = t["prompt_tokens"]["mean"] / t["generated_tokens"]["mean"]
    dec = e_kwh * 3.6
    return dec, dec + ratio * prefill_server_j


@pytest.mark.parametrize("scenario", ["us5", "us20"])
def test_energy_per_generated_token_under_both_accountings(scenario):
    s = tf.load_scenario(scenario)
    assert s.choices["energy_accounting"] == "generated_only"
    pd_ = s.with_choices(energy_accounting="prefill_and_decode")
    terms = energy_terms(s.workloads["energy_kwh_per_mtok"])
    for w, trace, model in (("chat", "conv", "8b-class"), ("code_review", "code", "70b-class")):
        raw = s.workloads.loc[w, "energy_kwh_per_mtok"]
        go, with_scenario_decode = _independent_energy(w, trace, model, raw)
        assert s.workloads.loc[w, "energy_kwh_per_mtok"] * 3.6 == pytest.approx(go, rel=1e-12)
        # one source: the serving data's decode term plus the prefill term (independent of the
        # scenario's figure, which is whole-response energy on another engine)
        prefill = with_scenario_decode - go
        assert pd_.workloads.loc[w, "energy_kwh_per_mtok"] * 3.6 == pytest.approx(
            terms.loc[w, "decode_j_serving"] + prefill, rel=1e-9)
        assert terms.loc[w, "decode_source"] == "serving"
    # code review prompts dominate: its factor is far larger than chat's
    f = pd_.workloads["energy_kwh_per_mtok"] / s.workloads["energy_kwh_per_mtok"]
    assert f["code_review"] > 5 * f["chat"] and f["code_review"] > 5
    for w in ("image", "batch_training"):  # no prompt trace: unchanged
        assert pd_.workloads.loc[w, "energy_kwh_per_mtok"] == s.workloads.loc[w, "energy_kwh_per_mtok"]
    # back to the default gives the file's numbers exactly
    back = pd_.with_choices(energy_accounting="generated_only")
    pd.testing.assert_series_equal(back.workloads["energy_kwh_per_mtok"], s.workloads["energy_kwh_per_mtok"])
    # the older mixed reading (scenario decode + serving prefill) is kept for comparison
    mixed = energy_terms(s.workloads["energy_kwh_per_mtok"], decode_source="scenario")
    for w, trace, model in (("chat", "conv", "8b-class"), ("code_review", "code", "70b-class")):
        assert mixed.loc[w, "consistent_j"] == pytest.approx(
            _independent_energy(w, trace, model, s.workloads.loc[w, "energy_kwh_per_mtok"])[1], rel=1e-9)
    with pytest.raises(ScenarioError, match="decode_source"):
        energy_terms(s.workloads["energy_kwh_per_mtok"], decode_source="vllm")


def test_default_scenario_energy_is_the_file_value():
    s = tf.load_scenario("us5")
    assert s.workloads.loc["chat", "energy_kwh_per_mtok"] == 0.101  # value in us5.yaml
    assert s.workloads.loc["code_review", "energy_kwh_per_mtok"] == 0.278


def test_replace_sets_the_decode_figure_under_both_accountings():
    """The scenario's figure is what ``replace`` sets; under prefill_and_decode a workload with
    serving data takes its energy from the serving data (one source), so it does not move."""
    s = tf.load_scenario("us5").with_choices(energy_accounting="prefill_and_decode")
    r = s.replace(workloads={"chat": {"energy_kwh_per_mtok": 0.2}, "image": {"energy_kwh_per_mtok": 0.9}})
    assert r.workloads.loc["chat", "energy_kwh_per_mtok"] == s.workloads.loc["chat", "energy_kwh_per_mtok"]
    assert r.workloads.loc["image", "energy_kwh_per_mtok"] == 0.9  # no serving data: the figure itself
    g = r.with_choices(energy_accounting="generated_only")
    assert g.workloads.loc["chat", "energy_kwh_per_mtok"] == 0.2


def test_compute_use_and_scale_limit_follow_the_consistent_energy():
    s = tf.load_scenario("us5")
    c = s.with_choices(energy_accounting="prefill_and_decode")
    lim, limc = tf.demand_scale_limit(s), tf.demand_scale_limit(c)
    # the aggregate-capacity bound scales with demand-weighted energy per token
    d = s.demand.sum("node").to_pandas()
    e0, e1 = s.workloads["energy_kwh_per_mtok"], c.workloads["energy_kwh_per_mtok"]
    assert limc.aggregate_bound == pytest.approx(lim.aggregate_bound * float((d * e0).sum() / (d * e1).sum()),
                                                 rel=1e-9)
    assert limc.max_scale < lim.max_scale
    # compute used at a node = sum over workloads of processed tokens x (consistent) energy
    r = tf.solve(c, demand_scale=5.0)
    proc = r.dataset["processing"].to_pandas()
    used = r.dataset["compute_used"].to_pandas()
    np.testing.assert_allclose((proc * e1).sum(axis=1).reindex(used.index), used, rtol=1e-6, atol=1e-6)


def test_claims_json_has_consistent_entries(capsys):
    main(["claims", "--json"])  # in this process: the same command without a second interpreter's imports
    data = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in data] == ["C1", "C2", "C3", "C4"]
    s5 = tf.demand_scale_limit(tf.load_scenario("us5").with_choices(energy_accounting="prefill_and_decode"))
    for d in data:
        c = d["detail"]["consistent"]
        assert c["energy_accounting"] == "prefill_and_decode"
        assert math.isfinite(c["s_star"]) and c["s_star"] < c["s_star_generated_only"]
        assert d["consistent_verdict"] in ("holds", "fails")
        if d["id"] != "C4":
            assert c["s_star"] == pytest.approx(s5.max_scale, rel=1e-9)
            assert c["cleared"] == (35.0 <= s5.max_scale)
            if not c["cleared"]:
                assert "infeasible" in str(d["consistent"]) and d["consistent_verdict"] == "fails"
                assert c["equivalent_load"]["scale"] < c["s_star"]


def test_measured_profiles_are_not_fitted_to_the_scenario_energy():
    from tokenflow.latency.profiles import default_profiles, measured_profiles

    s = tf.load_scenario("us5")
    P = measured_profiles(s)
    Q = measured_profiles(s.replace(workloads={"chat": {"energy_kwh_per_mtok": 0.5},
                                               "code_review": {"energy_kwh_per_mtok": 2.0}}))
    for w in ("chat", "code_review"):
        # the step-time curve and prefill do not move with the energy figure; the LP's capacity does
        assert P[w].step_time(10) == Q[w].step_time(10) and P[w].prefill_s_per_token == Q[w].prefill_s_per_token
        assert P[w].lp_tokens_per_s > Q[w].lp_tokens_per_s
        assert P[w].lp_to_pool_utilisation() == pytest.approx(
            P[w].lp_tokens_per_s / P[w].saturation_tokens_per_s(), rel=1e-12)
        m = {"chat": "8b-class", "code_review": "70b-class"}[w]
        sm = serving_models()[("H100-SXM-80GB", m)]
        assert P[w].gpus_per_replica == sm.gpus and P[w].max_batch <= sm.max_batch_kv(100)
        # LP capacity of a replica: GPUs x IT kW per GPU / energy per token
        assert P[w].lp_tokens_per_s == pytest.approx(
            sm.gpus * SERVER_W_PER_GPU / 1e3 / s.workloads.loc[w, "energy_kwh_per_mtok"] * 1e6 / 3600, rel=1e-12)
    # profiles built on the LP's capacity keep the identity (pool utilisation = LP utilisation)
    for p in default_profiles(s).values():
        assert p.lp_to_pool_utilisation() == 1.0
    with pytest.raises(tf.TokenflowError, match="batch"):
        measured_profiles(s, batch=0)


def test_kv_cache_limit():
    m = serving_models()[("H100-SXM-80GB", "8b-class")]
    assert m.kv_bytes_per_token() == 2 * 32 * 8 * 128 * 2
    b = m.max_batch_kv(2048)
    free = 80e9 - 8.03e9 * 2
    assert b * 2048 * m.kv_bytes_per_token() <= free < (b + 1) * 2048 * m.kv_bytes_per_token()
    assert m.max_batch_kv(10 ** 9) == 0


def test_market_latency_feeds_each_pool_its_own_utilisation():
    from tokenflow.latency.market_latency import market_latency
    from tokenflow.latency.profiles import measured_profiles

    s = tf.load_scenario("us5").with_choices(energy_accounting="prefill_and_decode")
    P = measured_profiles(s)
    r = tf.solve(s, demand_scale=3.0)
    lat = market_latency(r, s, P)
    u = r.dataset["compute_utilization"].to_pandas()
    pu = lat["pool_utilisation"].to_pandas()
    for w in ("chat", "code_review"):
        served = pu[w].dropna().index
        assert len(served)
        np.testing.assert_allclose(pu.loc[served, w], u[served] * P[w].lp_to_pool_utilisation(), rtol=1e-12)


def test_referees_chapter_uses_no_slope_fitted_to_the_scenario_energy():
    """The chapter's serving layer is built on the measurements (measured_profiles), not on
    default_profiles, whose step-time slope is fitted to the scenario's energy per token."""
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "referees.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "measured_profiles(" in code
    for banned in ("default_profiles", "_slope_for_energy", "energy_mix"):
        assert banned not in code, banned
