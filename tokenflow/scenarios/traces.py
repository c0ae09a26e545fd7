"""Request statistics of real GenAI traffic: the Azure LLM inference traces 2023.

Source: Azure Public Dataset, ``AzureLLMInferenceTrace_conv.csv`` (conversation) and
``AzureLLMInferenceTrace_code.csv`` (code completion), one hour on 2023-11-16, CC-BY 4.0.
Cite: P. Patel, E. Choukse, C. Zhang, A. Shah, I. Goiri, S. Maleki, R. Bianchini,
"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.

The package ships only a compact derived summary (``data/azure_trace_summary.json``,
written by ``tools/build_trace_summary.py`` with :func:`summarize_trace`): quantiles and
histograms of prompt / generated / total tokens per request, request and response bytes
as plain text under a declared bytes-per-token figure (no framing; :func:`summary_table`
also gives the streamed response bytes, one :data:`SSE_FRAME` per generated token, which
is what the scenarios' ``response_bytes_per_token`` counts), the inter-arrival coefficient of variation and
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

from ..core import validate as _v
from ..core.errors import TokenflowError

SUMMARY_FILE = "azure_trace_summary.json"
TRACES = ("conv", "code")
# Payload assumption for request / response bytes (declared; see ai_workload_parameters.md §6).
BYTES_PER_TOKEN = 4.0
BYTES_PER_TOKEN_SOURCE = ("https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them "
                          "(about 4 characters per English token x 1 byte/char; payload only, no JSON/HTTP/"
                          "streaming framing)")
# Streaming framing (the one definition; tools/build_scenarios.py uses it for the scenario's
# response bytes): the chat.completion.chunk example of the OpenAI API reference (one streamed
# token) as sent in a server-sent event ("data: <json>" and a blank line).  Its length is the
# bytes one generated token costs on the way back when the response is streamed.
SSE_FRAME_SOURCE = "https://platform.openai.com/docs/api-reference/chat-streaming"
SSE_FRAME = ('data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,'
             '"model":"gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices":[{"index":0,'
             '"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}\n\n')
SSE_FRAME_BYTES = float(len(SSE_FRAME.encode("utf-8")))  # B per streamed generated token
CITATION = ("P. Patel, E. Choukse, C. Zhang, A. Shah, I. Goiri, S. Maleki, R. Bianchini, "
            "'Splitwise: Efficient generative LLM inference using phase splitting', ISCA 2024; "
            "Azure LLM inference traces 2023 (github.com/Azure/AzurePublicDataset), CC-BY 4.0")
QUANTILE_GRID = np.round(np.r_[np.linspace(0.0, 0.99, 100), 0.995, 0.999, 1.0], 4)
REPORT_QUANTILES = (0.5, 0.9, 0.99)
HIST_EDGES = np.unique(np.round(np.logspace(0, np.log10(20000), 41))).astype(float)
WINDOWS_S = {"1s": 1.0, "1min": 60.0}
MAX_WINDOWS = 100_000_000  # peak_to_mean counts requests in at most this many windows (memory bound)


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
    window_s = _v.number(window_s, "window_s", "peak_to_mean", lo=0.0, lo_open=True, unit="s")
    t = _v.vector(t_s, "t_s (arrival times)", "peak_to_mean", lo=None, min_len=2)
    t = t - float(t.min())
    with np.errstate(over="ignore"):  # a tiny window: inf windows, refused below
        n_windows = float(np.floor(t.max() / window_s))
    if n_windows > MAX_WINDOWS:
        raise _v.ScenarioError(f"peak_to_mean: {n_windows:.3g} windows of {window_s:g} s, more than the limit of "
                               f"{MAX_WINDOWS:,}: use a longer window_s")
    n_full = int(n_windows)
    if n_full < 1:
        raise TokenflowError(f"trace shorter than one {window_s:g} s window")
    counts = np.bincount((t[t < n_full * window_s] // window_s).astype(int), minlength=n_full)
    return float(counts.max() / counts.mean())


def summarize_trace(csv_path: str | Path, bytes_per_token: float = BYTES_PER_TOKEN) -> dict:
    """Summary of one Azure trace CSV (columns ``TIMESTAMP``, ``ContextTokens``, ``GeneratedTokens``).

    Used by ``tools/build_trace_summary.py``; the package itself reads the bundled summary."""
    bytes_per_token = _v.number(bytes_per_token, "bytes_per_token", "summarize_trace", lo=0.0, lo_open=True)
    if isinstance(csv_path, (str, Path)) and Path(csv_path).exists():
        from .datafiles import require_regular_file

        require_regular_file(Path(csv_path), "trace file")  # a FIFO would block the reader
    try:
        d = pd.read_csv(csv_path)
    except FileNotFoundError:
        raise TokenflowError(f"{csv_path}: no such trace file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise TokenflowError(f"{csv_path}: not a readable CSV trace ({type(exc).__name__}: {exc})") from None
    missing = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} - set(d.columns)
    if missing:
        raise TokenflowError(f"{csv_path}: missing columns {sorted(missing)}")
    if len(d) < 2:
        raise TokenflowError(f"{csv_path}: a trace needs at least two requests, got {len(d)}")
    try:
        t = pd.to_datetime(d["TIMESTAMP"])
        prompt_raw = d["ContextTokens"].to_numpy(dtype=float)
        gen_raw = d["GeneratedTokens"].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise TokenflowError(f"{csv_path}: unreadable TIMESTAMP or token counts ({exc})") from None
    if t.isna().any():
        raise TokenflowError(f"{csv_path}: TIMESTAMP has {int(t.isna().sum())} missing value(s)")
    for col, v in (("ContextTokens", prompt_raw), ("GeneratedTokens", gen_raw)):
        if not np.isfinite(v).all() or (v < 1).any():
            raise TokenflowError(f"{csv_path}: {col} must be finite token counts >= 1")
    order = np.argsort(t.values, kind="stable")
    secs = ((t - t.min()).dt.total_seconds().to_numpy())[order]
    prompt = prompt_raw[order]
    gen = gen_raw[order]
    ia = np.diff(secs)
    duration = float(secs[-1] - secs[0])
    if not duration > 0:
        raise TokenflowError(f"{csv_path}: every request has the same TIMESTAMP (duration 0 s)")
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
        """``n`` token counts drawn by inverse CDF from the stored quantile grid (integers >= 1);
        ``what`` is ``"generated"`` or ``"prompt"``."""
        if not isinstance(rng, np.random.Generator):
            raise _v.ScenarioError(f"sample: rng must be a numpy Generator (np.random.default_rng(seed)), "
                                   f"got {type(rng).__name__}")
        n = _v.integer(n, "n", "sample", lo=0, hi=_v.MAX_SIM_REQUESTS * 10)
        _v.choice(what, "what", "sample", ("generated", "prompt"))
        lv, q = ((self.generated_levels, self.generated_quantiles) if what == "generated"
                 else (self.prompt_levels, self.prompt_quantiles))
        return np.maximum(1.0, np.round(np.interp(rng.random(n), lv, q)))

    def prompt_quantile(self, p: np.ndarray | float) -> np.ndarray:
        """Prompt tokens at probability level(s) ``p`` (each in [0, 1])."""
        try:
            arr = np.asarray(p, dtype=float) if not isinstance(p, (str, bytes)) else None
        except (TypeError, ValueError, OverflowError):
            arr = None
        if arr is None or not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
            raise _v.ScenarioError(f"prompt_quantile: p must be probability levels in [0, 1], got {p!r:.80}")
        return np.interp(p, self.prompt_levels, self.prompt_quantiles)


def trace_stats(name: str) -> TraceStats:
    """:class:`TraceStats` of the bundled trace ``"conv"`` or ``"code"``."""
    if not isinstance(name, str):
        raise _v.ScenarioError(f"trace_stats: name must be a trace name ({', '.join(TRACES)}), got {name!r:.80}")
    return _trace_stats(name)


@lru_cache(maxsize=8)
def _trace_stats(name: str) -> TraceStats:
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
            "request bytes mean (plain text)": t["request_bytes"]["mean"],
            "response bytes mean (plain text)": t["response_bytes"]["mean"],
            "response bytes mean (streamed, SSE frames)": t["generated_tokens"]["mean"] * SSE_FRAME_BYTES,
            "inter-arrival CV": t["interarrival"]["cv"],
            "peak/mean 1 s": t["peak_to_mean"]["1s"], "peak/mean 1 min": t["peak_to_mean"]["1min"],
        }
    return pd.DataFrame(rows).T
