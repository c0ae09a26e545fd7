"""Trace summary: computed statistics on hand-made traces, and the bundled summary's consistency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tokenflow.core.errors import TokenflowError
from tokenflow.scenarios.traces import (
    load_trace_summary,
    peak_to_mean,
    summarize_trace,
    summary_table,
    trace_stats,
)


def _write_trace(path, secs, prompt, gen):
    t = pd.Timestamp("2023-11-16 18:00:00") + pd.to_timedelta(np.asarray(secs), unit="s")
    pd.DataFrame({"TIMESTAMP": t.strftime("%Y-%m-%d %H:%M:%S.%f"), "ContextTokens": prompt,
                  "GeneratedTokens": gen}).to_csv(path, index=False)
    return path


def test_peak_to_mean_by_hand():
    # windows of 1 s: counts 1, 3, 1, 1 (last partial window dropped) -> peak 3, mean 1.5
    t = np.array([0.0, 1.1, 1.2, 1.3, 2.5, 3.5, 4.0])
    assert peak_to_mean(t, 1.0) == pytest.approx(3 / 1.5)
    with pytest.raises(TokenflowError, match="shorter than one"):
        peak_to_mean(np.array([0.0, 0.5]), 60.0)


def test_summarize_regular_trace(tmp_path):
    # perfectly regular arrivals every 0.5 s: CV 0, peak-to-mean 1 for both windows
    n = 400
    secs = np.arange(n) * 0.5
    prompt = np.full(n, 100)
    gen = np.tile([10, 30], n // 2)
    s = summarize_trace(_write_trace(tmp_path / "t.csv", secs, prompt, gen), bytes_per_token=4.0)
    assert s["n_requests"] == n
    assert s["interarrival"]["cv"] == pytest.approx(0.0, abs=1e-9)
    assert s["rate_per_s"] == pytest.approx(2.0)
    assert s["peak_to_mean"]["1s"] == pytest.approx(1.0)
    assert s["peak_to_mean"]["1min"] == pytest.approx(1.0)
    assert s["generated_tokens"]["mean"] == pytest.approx(20.0)
    assert s["generated_tokens"]["scv"] == pytest.approx(0.25)  # (10^2)/(20^2)
    assert s["total_tokens"]["mean"] == pytest.approx(120.0)
    assert s["prompt_per_generated"] == pytest.approx(5.0)
    assert s["request_bytes"]["mean"] == pytest.approx(400.0)
    assert s["response_bytes"]["mean"] == pytest.approx(80.0)
    assert sum(s["prompt_tokens"]["hist_counts"]) == n


def test_summarize_poisson_trace_cv_near_one(tmp_path):
    rng = np.random.default_rng(1)
    secs = np.cumsum(rng.exponential(0.2, 20000))
    s = summarize_trace(_write_trace(tmp_path / "p.csv", secs, np.full(20000, 5), np.full(20000, 5)))
    assert s["interarrival"]["cv"] == pytest.approx(1.0, abs=0.03)


def test_missing_columns(tmp_path):
    p = tmp_path / "bad.csv"
    pd.DataFrame({"TIMESTAMP": ["2023-11-16 00:00:00"], "Tokens": [3]}).to_csv(p, index=False)
    with pytest.raises(TokenflowError, match="missing columns"):
        summarize_trace(p)


def test_bundled_summary_consistent():
    summ = load_trace_summary()
    assert set(summ["traces"]) == {"conv", "code"}
    assert "Splitwise" in summ["citation"]
    for t in summ["traces"].values():
        for key in ("prompt_tokens", "generated_tokens", "total_tokens"):
            q = np.array(t[key]["quantiles"])
            assert np.all(np.diff(q) >= 0)
            assert sum(t[key]["hist_counts"]) == t["n_requests"]
        assert t["rate_per_s"] == pytest.approx((t["n_requests"] - 1) / t["duration_s"])
        assert t["peak_to_mean"]["1s"] >= t["peak_to_mean"]["1min"] >= 1.0
    # code completion is far burstier than conversation in this hour
    assert summ["traces"]["code"]["interarrival"]["cv"] > summ["traces"]["conv"]["interarrival"]["cv"]
    table = summary_table()
    assert list(table.index) == ["conv", "code"]


def test_sampling_reproduces_distribution():
    t = trace_stats("conv")
    x = t.sample(np.random.default_rng(0), 200_000)
    assert x.mean() == pytest.approx(t.generated_mean, rel=0.02)
    assert np.median(x) == pytest.approx(np.interp(0.5, t.generated_levels, t.generated_quantiles), rel=0.02)
    with pytest.raises(TokenflowError, match="unknown trace"):
        trace_stats("image")
