"""Request statistics of real GenAI traffic: the Azure LLM inference traces 2023.

Source: Azure Public Dataset, ``AzureLLMInferenceTrace_conv.csv`` (conversation) and
``AzureLLMInferenceTrace_code.csv`` (code completion), one hour on 2023-11-16, CC-BY 4.0.
Cite: P. Patel, E. Choukse, C. Zhang, A. Shah, I. Goiri, S. Maleki, R. Bianchini,
"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.

The package ships only a compact derived summary (``data/azure_trace_summary.json``,
written by ``tools/build_trace_summary.py`` with :func:`summarize_trace`): quantiles and
histograms of prompt / generated / total tokens per request, request and response bytes
under a declared bytes-per-token figure, the inter-arrival coefficient of variation and
the peak-to-mean request rate over 1 s and 1 min windows.  Units: tokens, bytes, seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import TokenflowError

SUMMARY_FILE = "azure_trace_summary.json"
TRACES = ("conv", "code")
# Payload assumption for request / response bytes (declared; see ai_workload_parameters.md §6).
BYTES_PER_TOKEN = 4.0
BYTES_PER_TOKEN_SOURCE = ("https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them "
                          "(about 4 characters per English token x 1 byte/char; payload only, no JSON/HTTP/"
                          "streaming framing)")
CITATION = ("P. Patel, E. Choukse, C. Zhang, A. Shah, I. Goiri, S. Maleki, R. Bianchini, "
            "'Splitwise: Efficient generative LLM inference using phase splitting', ISCA 2024; "
            "Azure LLM inference traces 2023 (github.com/Azure/AzurePublicDataset), CC-BY 4.0")
QUANTILE_GRID = np.round(np.r_[np.linspace(0.0, 0.99, 100), 0.995, 0.999, 1.0], 4)
REPORT_QUANTILES = (0.5, 0.9, 0.99)
HIST_EDGES = np.unique(np.round(np.logspace(0, np.log10(20000), 41))).astype(float)
WINDOWS_S = {"1s": 1.0, "1min": 60.0}


def _dist(x: np.ndarray) -> dict:
    """Moments, a fine quantile grid (for inverse-CDF sampling) and a log-binned histogram."""
    x = np.asarray(x, dtype=float)
    counts, _ = np.histogram(x, bins=HIST_EDGES)
    return {
        "mean": float(x.mean()), "std": float(x.std()), "scv": float(x.var() / x.mean() ** 2),
        "min": float(x.min()), "max": float(x.max()),
        "quantile_levels": QUANTILE_GRID.tolist(),
        "quantiles": np.quantile(x, QUANTILE_GRID).tolist(),
        "hist_edges": HIST_EDGES.tolist(), "hist_counts": counts.astype(int).tolist(),
    }


def peak_to_mean(t_s: np.ndarray, window_s: float) -> float:
    """Largest request count in a window of ``window_s`` seconds over the mean count per window
    (complete windows only; arrival times ``t_s`` in seconds)."""
    t = np.asarray(t_s, dtype=float) - float(np.min(t_s))
    n_full = int(np.floor(t.max() / window_s))
    if n_full < 1:
        raise TokenflowError(f"trace shorter than one {window_s:g} s window")
    counts = np.bincount((t[t < n_full * window_s] // window_s).astype(int), minlength=n_full)
    return float(counts.max() / counts.mean())


def summarize_trace(csv_path: str | Path, bytes_per_token: float = BYTES_PER_TOKEN) -> dict:
    """Summary of one Azure trace CSV (columns ``TIMESTAMP``, ``ContextTokens``, ``GeneratedTokens``).

    Used by ``tools/build_trace_summary.py``; the package itself reads the bundled summary."""
    d = pd.read_csv(csv_path)
    missing = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} - set(d.columns)
    if missing:
        raise TokenflowError(f"{csv_path}: missing columns {sorted(missing)}")
    t = pd.to_datetime(d["TIMESTAMP"])
    order = np.argsort(t.values, kind="stable")
    secs = ((t - t.min()).dt.total_seconds().to_numpy())[order]
    prompt = d["ContextTokens"].to_numpy(dtype=float)[order]
    gen = d["GeneratedTokens"].to_numpy(dtype=float)[order]
    ia = np.diff(secs)
    duration = float(secs[-1] - secs[0])
    return {
        "file": Path(csv_path).name,
        "n_requests": int(len(d)),
        "start": str(t.min()), "duration_s": duration,
        "rate_per_s": float((len(d) - 1) / duration),
        "prompt_tokens": _dist(prompt),
        "generated_tokens": _dist(gen),
        "total_tokens": _dist(prompt + gen),
        "prompt_per_generated": float(prompt.sum() / gen.sum()),
        "log_corr_prompt_generated": float(np.corrcoef(np.log(prompt), np.log(gen))[0, 1]),
        "request_bytes": {q: float(np.quantile(prompt, float(q)) * bytes_per_token)
                          for q in map(str, REPORT_QUANTILES)} | {"mean": float(prompt.mean() * bytes_per_token)},
        "response_bytes": {q: float(np.quantile(gen, float(q)) * bytes_per_token)
                           for q in map(str, REPORT_QUANTILES)} | {"mean": float(gen.mean() * bytes_per_token)},
        "interarrival": {"mean_s": float(ia.mean()), "cv": float(ia.std() / ia.mean()),
                         "p50_s": float(np.median(ia)), "max_s": float(ia.max())},
        "peak_to_mean": {k: peak_to_mean(secs, w) for k, w in WINDOWS_S.items()},
    }


def build_summary(trace_dir: str | Path, bytes_per_token: float = BYTES_PER_TOKEN) -> dict:
    """Summary of both traces in ``trace_dir`` (the shared reference folder), with provenance."""
    trace_dir = Path(trace_dir)
    out = {"citation": CITATION, "licence": "CC-BY 4.0",
           "source": "github.com/Azure/AzurePublicDataset data/AzureLLMInferenceTrace_{conv,code}.csv",
           "bytes_per_token": {"value": bytes_per_token, "source": BYTES_PER_TOKEN_SOURCE},
           "traces": {}}
    for name in TRACES:
        out["traces"][name] = summarize_trace(trace_dir / f"AzureLLMInferenceTrace_{name}.csv", bytes_per_token)
    return out


@lru_cache(maxsize=1)
def _load_text() -> str:
    res = resources.files("tokenflow") / "data" / SUMMARY_FILE
    try:
        return res.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenflowError(f"packaged trace summary {SUMMARY_FILE} is missing: run "
                             "tools/build_trace_summary.py") from None


def load_trace_summary() -> dict:
    """The bundled summary (a fresh copy; see the module docstring for its contents)."""
    return json.loads(_load_text())


@dataclass(frozen=True)
class TraceStats:
    """Per-request statistics of one trace, as the queueing layer and the simulator use them."""

    name: str
    rate_per_s: float
    interarrival_cv: float
    peak_to_mean_1s: float
    peak_to_mean_1min: float
    prompt_levels: np.ndarray
    prompt_quantiles: np.ndarray
    generated_levels: np.ndarray
    generated_quantiles: np.ndarray
    prompt_mean: float
    prompt_scv: float
    generated_mean: float
    generated_scv: float

    def sample(self, rng: np.random.Generator, n: int, what: str = "generated") -> np.ndarray:
        """``n`` token counts drawn by inverse CDF from the stored quantile grid (integers >= 1)."""
        lv, q = ((self.generated_levels, self.generated_quantiles) if what == "generated"
                 else (self.prompt_levels, self.prompt_quantiles))
        return np.maximum(1.0, np.round(np.interp(rng.random(n), lv, q)))

    def prompt_quantile(self, p: np.ndarray | float) -> np.ndarray:
        return np.interp(p, self.prompt_levels, self.prompt_quantiles)


@lru_cache(maxsize=8)
def trace_stats(name: str) -> TraceStats:
    """:class:`TraceStats` of the bundled trace ``"conv"`` or ``"code"``."""
    traces = load_trace_summary()["traces"]
    if name not in traces:
        raise TokenflowError(f"unknown trace {name!r}: the bundled traces are {', '.join(traces)}")
    t = traces[name]
    p, g = t["prompt_tokens"], t["generated_tokens"]
    return TraceStats(name, t["rate_per_s"], t["interarrival"]["cv"], t["peak_to_mean"]["1s"],
                      t["peak_to_mean"]["1min"], np.array(p["quantile_levels"]), np.array(p["quantiles"]),
                      np.array(g["quantile_levels"]), np.array(g["quantiles"]), p["mean"], p["scv"],
                      g["mean"], g["scv"])


def summary_table() -> pd.DataFrame:
    """One row per trace: the headline statistics (tokens, bytes, s) for the book."""
    rows = {}
    for name, t in load_trace_summary()["traces"].items():
        rows[name] = {
            "requests": t["n_requests"], "duration (s)": t["duration_s"], "requests/s": t["rate_per_s"],
            "prompt tokens mean": t["prompt_tokens"]["mean"],
            "prompt tokens p99": np.interp(0.99, t["prompt_tokens"]["quantile_levels"],
                                           t["prompt_tokens"]["quantiles"]),
            "generated tokens mean": t["generated_tokens"]["mean"],
            "generated tokens p99": np.interp(0.99, t["generated_tokens"]["quantile_levels"],
                                              t["generated_tokens"]["quantiles"]),
            "tokens/request mean": t["total_tokens"]["mean"],
            "prompt/generated": t["prompt_per_generated"],
            "request bytes mean": t["request_bytes"]["mean"], "response bytes mean": t["response_bytes"]["mean"],
            "inter-arrival CV": t["interarrival"]["cv"],
            "peak/mean 1 s": t["peak_to_mean"]["1s"], "peak/mean 1 min": t["peak_to_mean"]["1min"],
        }
    return pd.DataFrame(rows).T
