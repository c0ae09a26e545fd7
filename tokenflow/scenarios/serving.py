"""Serving measurements: what one prompt token and one generated token cost on real hardware.

The data file ``data/serving_measurements.csv`` holds *published measurements only*, one per
row, each with its source (URL, date, table or figure): first-token latencies at batch 1 over
two prompt lengths, output throughputs of static batches over input/output lengths, measured
GPU energy per generated token, and the power of a busy GPU.  Everything else is derived here,
in code, per accelerator and model class:

* **prefill time per prompt token** (s, per replica of ``gpus`` GPUs): the slope of the
  first-token latency between the two prompt lengths (the fixed part, one decode step and
  launch overhead, drops out); prefill throughput = 1 / slope (prompt tokens/s).
* **decode step time** ``t(b, ctx)`` (s) at batch ``b`` and mean context ``ctx``: a static
  batch of ``b`` requests with ``I`` input and ``O`` output tokens runs
  ``T = b*O / throughput`` s, of which ``b*I*prefill`` is prompt processing, so one step is
  ``(T - b*I*prefill) / O`` at mean context ``I + O/2``.  A least-squares fit
  ``t = a + c*b + d*b*ctx`` (weights read once per step; per-sequence work; KV-cache reads)
  gives the step-time curve; no figure of the scenario enters it.
* **energy** (J): GPU energy = time x GPUs x GPU power (the ``gpu_power`` row, the board
  limit: an upper bound for decode, close for compute-bound prefill).  Server-level energy
  (what the scenario's ``energy_kwh_per_mtok`` counts: GPUs plus their share of host,
  network and fans) uses the DGX H100's 10.2 kW per 8 GPUs, as the scenario's chat figure
  does (0.20 J GPU-only / 0.55 GPU share).

Energy accounting (:data:`tokenflow.scenarios.choices.CHOICES` ``energy_accounting``):
``generated_only`` reads the scenario's energy per token as it is (the paper's reading);
``prefill_and_decode`` counts what a generated token carries, **from one source**: the serving
measurements of the model class that serves it (same engine, precision and model class for
both phases and for the serving layer's capacity),

    E_w = d_m(w) + r_w * p_m(w)

with ``d_m`` the server-level decode energy per generated token of one step at the serving
batch and the trace's mean context (the step times have each run's prompt processing taken
out, so no prefill is inside ``d_m``), ``r_w`` the trace's prompt tokens per generated token
(:mod:`tokenflow.scenarios.traces`) and ``p_m`` the server-level prefill energy per prompt token
(:data:`WORKLOAD_SERVING`).  The LP's capacity of a replica, GPUs x server kW / E_w, is then
the serving layer's saturation throughput (:func:`tokenflow.latency.profiles.measured_profiles`).
The scenario's own per-token figure does not enter ``E_w`` of such a workload (ML.ENERGY's is
whole-response energy over output tokens, bf16 vLLM, a different batch; code review's is an
assumption); :func:`energy_terms` with ``decode_source="scenario"`` gives the older mixed
reading for comparison.  Workloads without a prompt trace (image, batch training) keep the
scenario's figure.  Since the LP's compute use is energy per token, the same factor moves
compute use per token.

**What the "factor" is relative to.**  ``factor = E_w / e_w`` is relative to the scenario's
generated-only figure ``e_w``: a ratio across two sources, not a property of the workload.
The absolute energy ``E_w`` (what enters the LP) is the number to quote.

The mapping is by workload *name* (:data:`WORKLOAD_SERVING`): a scenario that names its chat
workload differently gets factor 1 for it.  When no workload of a scenario has a prompt
trace, ``prefill_and_decode`` changes nothing and :func:`consistent_energy` warns.

Bad input (missing column, non-positive value, unknown accelerator, model, quantity or unit)
is a :class:`~tokenflow.core.errors.ScenarioError` naming the file, the row and the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources  # noqa: F401 - other readers of this module may use it
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import ScenarioError
from .traces import trace_stats

SERVING_FILE = "serving_measurements.csv"
COLUMNS = ["accelerator", "model", "model_name", "gpus", "precision", "engine", "quantity", "batch",
           "input_tokens", "output_tokens", "value", "unit", "source_url", "source_date", "source_locator",
           "note"]
SOURCE_COLUMNS = ("source_url", "source_date", "source_locator")
# quantity -> (allowed units, columns that must be positive numbers)
QUANTITIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ttft": (("ms",), ("batch", "input_tokens")),
    "output_throughput": (("tok/s", "tok/s/GPU"), ("batch", "input_tokens", "output_tokens")),
    "decode_energy": (("J/token",), ("batch",)),
    "gpu_power": (("W",), ()),
    # own measurements (tools/measure_serving.py): batch-1 prefill time, one decode step at a
    # context of input_tokens, NVML energy per prompt / generated token
    "prefill_time": (("ms",), ("batch", "input_tokens")),
    "prefill_energy": (("J/token",), ("batch", "input_tokens")),
    "decode_step": (("ms",), ("batch", "input_tokens")),
}
# accelerators: HBM capacity (GB) and bandwidth (TB/s); sources as in tokenflow.latency.profiles.HARDWARE
ACCELERATORS: dict[str, dict[str, float | str]] = {
    "H100-SXM-80GB": {"memory_gb": 80.0, "hbm_tb_per_s": 3.35,
                      "source": "https://huggingface.co/hardware/h100 (80 GB HBM3, 3.35 TB/s, 700 W)"},
    "H200-SXM-141GB": {"memory_gb": 141.0, "hbm_tb_per_s": 4.8,
                       "source": "https://www.nvidia.com/en-us/data-center/h200/ (141 GB HBM3e, 4.8 TB/s)"},
}
# model classes: parameters and KV-cache bytes per token (2 x layers x KV heads x head dim x 2 B, bf16)
MODELS: dict[str, dict[str, float | str]] = {
    "8b-class": {"params": 8.03e9, "layers": 32, "kv_heads": 8, "head_dim": 128,
                 "source": "https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json "
                           "(32 layers, 8 key-value heads, head dim 4096/32 = 128)"},
    "70b-class": {"params": 70.6e9, "layers": 80, "kv_heads": 8, "head_dim": 128,
                  "source": "https://huggingface.co/meta-llama/Llama-3.1-70B/blob/main/config.json "
                            "(80 layers, 8 key-value heads, head dim 8192/64 = 128)"},
    "30b-class": {"params": 32.8e9, "layers": 64, "kv_heads": 8, "head_dim": 128,
                  "source": "https://huggingface.co/Qwen/Qwen2.5-32B/blob/main/config.json "
                            "(64 layers, 8 key-value heads, head dim 5120/40 = 128)"},
}
KV_BYTES_PER_ELEMENT = 2.0  # bf16 KV cache
# IT power per GPU including its share of host, network and fans: DGX H100 10.2 kW / 8 GPUs
SERVER_W_PER_GPU = 10.2e3 / 8
SERVER_W_SOURCE = "https://www.supercluster.blog/p/6-ai-supercluster-nvidia-dgx-h100 (DGX H100 max 10.2 kW, 8 GPUs)"
# which trace and which model class a workload's requests look like (the scenario's own reading:
# chat = Llama-3.1-8B on H100, code review = a ~70B model; tokenflow.latency.profiles.default_profiles)
WORKLOAD_SERVING: dict[str, tuple[str, str, str]] = {
    "chat": ("conv", "H100-SXM-80GB", "8b-class"),
    "code_review": ("code", "H100-SXM-80GB", "70b-class"),
}
SERVING_BATCH = 64  # the batch size the serving layer assumes (tokenflow.latency.profiles.default_profiles)


def _label(path: str | Path | None) -> str:
    return f"serving data {str(path) if path is not None else 'tokenflow/data/' + SERVING_FILE}"


MAX_SERVING_ROWS = 10_000  # rows a serving-measurement file may hold (the bundled one has a few dozen)
# what makes two rows the same measurement (two such rows are refused, conflicting or not)
MEASUREMENT_KEY = ("accelerator", "model", "gpus", "precision", "engine", "quantity", "batch", "input_tokens",
                   "output_tokens")


def _read(path: str | Path | None) -> pd.DataFrame:
    """The file's cells as text, read through :mod:`tokenflow.scenarios.datafiles`: regular files only
    (a FIFO is refused, never waited on), at most the scenario files' size, UTF-8, a header
    with every column of :data:`COLUMNS` (once), at least one row."""
    from .datafiles import read_csv

    if path is not None and not isinstance(path, (str, Path)):
        raise ScenarioError(f"load_serving_data: path must be a file path (str or pathlib.Path) or None, "
                            f"got {type(path).__name__} {path!r:.80}")
    label = _label(path)
    if path is not None and not Path(path).exists():
        raise ScenarioError(f"{label}: file not found")
    raw = read_csv(path, columns=COLUMNS, label=label, packaged_name=SERVING_FILE, what="serving data file")
    if len(raw) > MAX_SERVING_ROWS:
        raise ScenarioError(f"{label}: {len(raw):,} rows; a serving-measurement file holds at most "
                            f"{MAX_SERVING_ROWS:,}")
    return raw


def load_serving_data(path: str | Path | None = None) -> pd.DataFrame:
    """The serving measurements (the bundled file, or ``path``), validated; numeric columns as
    floats.  Every problem is reported at once, each naming the file, the row (1 = first data
    row) and the field.  Two rows of the same measurement (:data:`MEASUREMENT_KEY`) are
    refused, as is more than one ``gpu_power`` row per accelerator and model (the derived
    energies would otherwise depend on the rows' order)."""
    return _validate(_read(path), _label(path))


def _as_text(data: pd.DataFrame) -> pd.DataFrame:
    """A frame's required columns as text cells (NaN and None as ''), for :func:`_validate`."""
    def cell(x: object) -> str:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return ""
        return x if isinstance(x, str) else repr(x) if isinstance(x, (bool, np.bool_)) else str(x)

    return pd.DataFrame({c: [cell(x) for x in data[c].to_numpy(object)] for c in COLUMNS},
                        index=pd.RangeIndex(len(data)))


def _validate(raw: pd.DataFrame, label: str) -> pd.DataFrame:
    """Check text cells row by row (see :func:`load_serving_data`); returns the numeric frame."""
    from .datafiles import duplicate_rows, limit_problems

    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise ScenarioError(f"{label}: missing columns {missing}")
    if raw.empty:
        raise ScenarioError(f"{label}: no rows")
    raw = raw.reset_index(drop=True)
    problems: list[str] = []
    out = raw[COLUMNS].copy()
    num_cols = ("gpus", "batch", "input_tokens", "output_tokens", "value")
    for c in num_cols:
        out[c] = np.nan
    for i, row in raw.iterrows():
        where = f"{label}: row {int(i) + 1}"
        q = row["quantity"].strip()
        for c in ("accelerator", "model", "quantity", "unit", *SOURCE_COLUMNS):
            if not row[c].strip():
                problems.append(f"{where}: {c}: empty")
        if row["accelerator"].strip() and row["accelerator"] not in ACCELERATORS:
            problems.append(f"{where}: accelerator: unknown {row['accelerator']!r}; known: {', '.join(ACCELERATORS)}")
        if row["model"].strip() and row["model"] not in MODELS:
            problems.append(f"{where}: model: unknown {row['model']!r}; known: {', '.join(MODELS)}")
        if q and q not in QUANTITIES:
            problems.append(f"{where}: quantity: unknown {q!r}; known: {', '.join(QUANTITIES)}")
            continue
        units, needed = QUANTITIES.get(q, ((), ()))
        if q and row["unit"] not in units:
            problems.append(f"{where}: unit: {row['unit']!r} is not a unit of {q} ({', '.join(units)})")
        for c in num_cols:
            txt = row[c].strip()
            if not txt:
                if c in ("value", "gpus") or c in needed:
                    problems.append(f"{where}: {c}: missing")
                continue
            try:
                v = float(txt)
            except ValueError:
                problems.append(f"{where}: {c}: expected a number, got {txt!r:.60}")
                continue
            if not math.isfinite(v) or v <= 0:
                problems.append(f"{where}: {c}: must be a positive finite number, got {txt!r:.60}")
                continue
            if c != "value" and v != int(v):
                problems.append(f"{where}: {c}: must be a whole number, got {txt!r:.60}")
                continue
            out.loc[i, c] = v
        url = row["source_url"].strip()
        if url and not url.startswith(("https://", "http://", "script:")):
            problems.append(f"{where}: source_url: must be a URL or 'script:<path>' for an own measurement, "
                            f"got {url!r:.80}")
    if problems:
        raise ScenarioError(limit_problems(problems))
    key = raw[list(MEASUREMENT_KEY)].apply(lambda col: col.str.strip())
    for c in ("gpus", "batch", "input_tokens", "output_tokens"):  # "64" and "64.0" are one batch
        key[c] = out[c].astype(str)
    problems += duplicate_rows(key, MEASUREMENT_KEY, label, what="measurement")
    pw = out[out["quantity"].str.strip() == "gpu_power"]
    for (acc, mod), g in pw.groupby(["accelerator", "model"], sort=False):
        if len(g) > 1:
            problems.append(f"{label}: {len(g)} gpu_power rows for {acc} / {mod} (rows "
                            f"{', '.join(str(int(i) + 1) for i in g.index)}, values "
                            f"{', '.join(f'{v:g}' for v in g['value'])} W); give one")
    if problems:
        raise ScenarioError(limit_problems(problems))
    return out


@dataclass(frozen=True)
class ServingModel:
    """What a replica of one model class on one accelerator does, derived from the measurements.

    Times in seconds, energies in joules, per replica of ``gpus`` GPUs.
    """

    accelerator: str
    model: str
    gpus: int
    gpu_power_w: float
    prefill_s_per_token: float
    decode_points: pd.DataFrame = field(repr=False)  # batch, context, step_s (+ source row)
    step_coef: tuple[float, float, float] = (0.0, 0.0, 0.0)  # a (s), c (s/seq), d (s/(seq*token))
    measured_decode_j: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def prefill_tokens_per_s(self) -> float:
        """Prompt tokens per second of the replica (compute-bound prefill)."""
        return 1.0 / self.prefill_s_per_token

    @property
    def prefill_j_per_prompt_token_gpu(self) -> float:
        """GPU energy per prompt token (J): prefill time x GPUs x GPU power."""
        return self.prefill_s_per_token * self.gpus * self.gpu_power_w

    @property
    def prefill_j_per_prompt_token_server(self) -> float:
        """Server-level energy per prompt token (J): GPUs plus their share of the host."""
        return self.prefill_s_per_token * self.gpus * SERVER_W_PER_GPU

    def step_time(self, batch: float, context: float) -> float:
        """Decode step time t(b, ctx) = a + c*b + d*b*ctx (s) from the fit to the measurements."""
        a, c, d = self.step_coef
        return a + c * batch + d * batch * context

    def decode_j_per_token_gpu(self, batch: float, context: float) -> float:
        """GPU energy per generated token at batch ``batch`` and mean context ``context`` (J)."""
        return self.step_time(batch, context) * self.gpus * self.gpu_power_w / batch

    def decode_tokens_per_s(self, batch: float, context: float) -> float:
        """Generated tokens per second of the replica at batch ``batch`` and context ``context``."""
        return batch / self.step_time(batch, context)

    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token of context (bf16): 2 x layers x KV heads x head dim x 2 B."""
        m = MODELS[self.model]
        return 2.0 * float(m["layers"]) * float(m["kv_heads"]) * float(m["head_dim"]) * KV_BYTES_PER_ELEMENT

    def max_batch_kv(self, context: float, weight_bytes_per_param: float = 2.0) -> int:
        """Largest batch whose KV cache at ``context`` tokens per sequence fits in the replica's
        memory after the weights (bf16 weights by default)."""
        mem = float(ACCELERATORS[self.accelerator]["memory_gb"]) * 1e9 * self.gpus
        free = mem - float(MODELS[self.model]["params"]) * weight_bytes_per_param
        return max(0, int(free // (self.kv_bytes_per_token() * context)))


def _build(data: pd.DataFrame, accelerator: str, model: str) -> ServingModel:
    d = data[(data["accelerator"] == accelerator) & (data["model"] == model)]
    label = f"serving data: {accelerator} / {model}"
    pw = d[d["quantity"] == "gpu_power"]
    # batch-1 prompt timings: published first-token latencies, or own prefill times
    tt = d[d["quantity"].isin(["ttft", "prefill_time"]) & (d["batch"] == 1)].sort_values("input_tokens")
    if len(tt) < 2 or tt["input_tokens"].nunique() < 2:
        raise ScenarioError(f"{label}: needs batch-1 first-token latencies or prefill times at two prompt lengths")
    gpus = int(tt["gpus"].iloc[0])
    if pw.empty:  # own measurement: GPU power = measured prefill energy / prefill time
        pe = d[d["quantity"] == "prefill_energy"].merge(tt, on="input_tokens", suffixes=("", "_t"))
        if pe.empty:
            raise ScenarioError(f"{label}: needs a gpu_power row or measured prefill energy")
        power = float((pe["value"] * pe["input_tokens"] / (pe["value_t"] / 1e3) / gpus).median())
        pw = pd.DataFrame({"value": [power]})
    x, y = tt["input_tokens"].to_numpy(float), tt["value"].to_numpy(float) / 1e3
    slope = float(np.polyfit(x, y, 1)[0])
    if slope <= 0:
        raise ScenarioError(f"{label}: first-token latency does not grow with the prompt length")
    rows = []
    for i, r in d[(d["quantity"] == "output_throughput") & (d["gpus"] == gpus)].iterrows():
        thr = r["value"] * (r["gpus"] if r["unit"] == "tok/s/GPU" else 1.0)
        b, n_in, n_out = r["batch"], r["input_tokens"], r["output_tokens"]
        step = (b * n_out / thr - b * n_in * slope) / n_out
        rows.append({"row": int(i) + 1, "batch": b, "input_tokens": n_in, "output_tokens": n_out,
                     "context": n_in + n_out / 2.0, "step_s": step, "engine": r["engine"]})
    for i, r in d[(d["quantity"] == "decode_step") & (d["gpus"] == gpus)].iterrows():
        rows.append({"row": int(i) + 1, "batch": r["batch"], "input_tokens": r["input_tokens"], "output_tokens": 1.0,
                     "context": r["input_tokens"], "step_s": r["value"] / 1e3, "engine": r["engine"]})
    pts = pd.DataFrame(rows)
    if len(pts) < 3:
        raise ScenarioError(f"{label}: needs at least three output-throughput rows for the step-time fit")
    A = np.c_[np.ones(len(pts)), pts["batch"], pts["batch"] * pts["context"]]
    coef, *_ = np.linalg.lstsq(A, pts["step_s"].to_numpy(float), rcond=None)
    pts["fit_s"] = A @ coef
    if (coef < 0).any() or not (pts["fit_s"] > 0).all():
        raise ScenarioError(f"{label}: the step-time fit t = a + c b + d b x context has a negative coefficient "
                            f"(a, c, d = {coef[0]:.3g}, {coef[1]:.3g}, {coef[2]:.3g}) or a step time <= 0: the "
                            "output-throughput rows are inconsistent with the first-token latencies")
    me = d[d["quantity"] == "decode_energy"][["batch", "input_tokens", "value", "engine", "source_locator"]].rename(
        columns={"value": "j_per_token_gpu"})
    return ServingModel(accelerator, model, gpus, float(pw["value"].iloc[0]), slope, pts,
                        (float(coef[0]), float(coef[1]), float(coef[2])), me.reset_index(drop=True))


def serving_models(data: pd.DataFrame | None = None) -> dict[tuple[str, str], ServingModel]:
    """One :class:`ServingModel` per (accelerator, model) in ``data`` (default: the bundled file)."""
    if data is None:
        return dict(_bundled_models())
    if not isinstance(data, pd.DataFrame):
        raise ScenarioError(f"serving_models: data must be a DataFrame of load_serving_data(), "
                            f"got {type(data).__name__}")
    missing = [c for c in COLUMNS if c not in data.columns]
    if missing:
        raise ScenarioError(f"serving_models: data lacks columns {missing} (pass load_serving_data(path))")
    # a frame not from the loader (or changed since) is checked by the loader's rules
    data = _validate(_as_text(data), "serving_models: data")
    pairs = data[["accelerator", "model"]].drop_duplicates().itertuples(index=False)
    return {(a, m): _build(data, a, m) for a, m in pairs}


@lru_cache(maxsize=1)
def _bundled_models() -> tuple[tuple[tuple[str, str], ServingModel], ...]:
    data = load_serving_data()
    return tuple(((a, m), _build(data, a, m))
                 for a, m in data[["accelerator", "model"]].drop_duplicates().itertuples(index=False))


DECODE_SOURCES = ("serving", "scenario")


def serving_batch(sm: ServingModel, trace: str, batch: int | None = None) -> int:
    """The batch a replica of ``sm`` runs for requests of ``trace``: ``batch`` (default
    :data:`SERVING_BATCH`) capped by the KV-cache limit of a mean request (prompt + generated)."""
    t = trace_stats(trace)
    return int(min(SERVING_BATCH if batch is None else batch, sm.max_batch_kv(t.prompt_mean + t.generated_mean)))


def energy_terms(generated_only_kwh_per_mtok: pd.Series,
                 models: dict[tuple[str, str], ServingModel] | None = None,
                 decode_source: str | dict[str, str] = "serving") -> pd.DataFrame:
    """Per workload of ``generated_only_kwh_per_mtok`` (index ``workload``, kWh per M generated
    tokens): the terms of the consistent unit, J per generated token at server level.

    **One source per unit** (``decode_source="serving"``, the default): the decode term is the
    serving data's own, from the same measurements as the prefill term and as the serving
    layer's capacity (:func:`tokenflow.latency.profiles.measured_profiles`): one step at the serving
    batch (:func:`serving_batch`) and the trace's mean context, ``t(B, ctx) x GPUs x server W /
    B``.  The step times are derived with the prompt processing of each measured run taken out
    (:func:`_build`), so prefill is counted once: ``consistent_j = decode_j + ratio x prefill``.
    The LP's capacity of a replica (GPUs x server kW / consistent_j) then equals the serving
    layer's saturation throughput.  ``decode_source="scenario"`` (or a dict workload -> source)
    takes the decode term from the scenario's published per-token figure instead (a different
    engine, precision and batch, and for ML.ENERGY a whole-response figure that already holds
    the benchmark's prefill): kept to show what that reading does.

    Columns: ``trace``, ``model``, ``prompt_per_generated`` (trace), ``prefill_j_per_prompt_token``,
    ``decode_j`` (the term used), ``decode_source``, ``decode_j_scenario`` (the scenario's
    figure), ``decode_j_serving`` (the serving data's), ``batch`` (serving batch), ``prefill_j``
    (= ratio x prefill J), ``consistent_j``, ``factor`` (consistent / the *scenario's*
    generated-only figure), ``consistent_kwh_per_mtok``.  Workloads without a prompt trace keep
    their figure (factor 1)."""
    from ..core import validate as _v

    if not isinstance(generated_only_kwh_per_mtok, pd.Series):
        raise ScenarioError("energy_terms: expected a pandas Series of kWh per M generated tokens indexed by "
                            f"workload, got {type(generated_only_kwh_per_mtok).__name__}")
    for w, e in generated_only_kwh_per_mtok.items():
        _v.number(e, f"generated_only_kwh_per_mtok[{w!r}]", "energy_terms", lo=0.0, unit="kWh per M tokens")
    src = ({str(w): decode_source for w in generated_only_kwh_per_mtok.index} if isinstance(decode_source, str)
           else dict(decode_source) if isinstance(decode_source, dict) else None)
    if src is None or any(v not in DECODE_SOURCES for v in src.values()):
        raise ScenarioError(f"energy_terms: decode_source must be one of {DECODE_SOURCES} or a dict of them per "
                            f"workload, got {decode_source!r}")
    models = serving_models() if models is None else models
    rows = {}
    for w, e in generated_only_kwh_per_mtok.items():
        dec_scen = float(e) * 3.6
        if w not in WORKLOAD_SERVING:
            rows[w] = {"trace": "", "model": "", "prompt_per_generated": 0.0, "prefill_j_per_prompt_token": 0.0,
                       "decode_j": dec_scen, "decode_source": "scenario", "decode_j_scenario": dec_scen,
                       "decode_j_serving": np.nan, "batch": np.nan, "prefill_j": 0.0, "consistent_j": dec_scen,
                       "factor": 1.0, "consistent_kwh_per_mtok": float(e)}
            continue
        trace, acc, model = WORKLOAD_SERVING[w]
        if (acc, model) not in models:
            raise ScenarioError(f"serving data: no measurements of {model} on {acc} (needed for workload {w!r})")
        sm, t = models[(acc, model)], trace_stats(trace)
        ratio = t.prompt_mean / t.generated_mean
        pre = sm.prefill_j_per_prompt_token_server
        ctx = t.prompt_mean + t.generated_mean / 2.0
        b = serving_batch(sm, trace)
        if b < 1:
            raise ScenarioError(f"{w}: a mean request's KV cache does not fit beside the weights of {model}")
        dec_serv = sm.step_time(b, ctx) * sm.gpus * SERVER_W_PER_GPU / b
        how = src.get(str(w), "serving")
        dec = dec_serv if how == "serving" else dec_scen
        tot = dec + ratio * pre
        rows[w] = {"trace": trace, "model": model, "prompt_per_generated": ratio, "prefill_j_per_prompt_token": pre,
                   "decode_j": dec, "decode_source": how, "decode_j_scenario": dec_scen, "decode_j_serving": dec_serv,
                   "batch": float(b), "prefill_j": ratio * pre, "consistent_j": tot,
                   "factor": tot / dec_scen if dec_scen > 0 else np.inf, "consistent_kwh_per_mtok": tot / 3.6}
    return pd.DataFrame(rows).T.rename_axis("workload")


def consistent_energy(generated_only_kwh_per_mtok: pd.Series) -> pd.Series:
    """Energy per generated token under ``energy_accounting="prefill_and_decode"`` (kWh/M tokens),
    same index as the input.  Warns (``UserWarning``) when no workload has a prompt trace in
    :data:`WORKLOAD_SERVING` (the choice then changes nothing)."""
    if len(generated_only_kwh_per_mtok) and not any(w in WORKLOAD_SERVING for w in generated_only_kwh_per_mtok.index):
        import warnings

        warnings.warn("energy_accounting='prefill_and_decode' changes nothing: no workload of this scenario "
                      f"({', '.join(map(str, generated_only_kwh_per_mtok.index[:6]))}) has a prompt trace in "
                      "tokenflow.scenarios.serving.WORKLOAD_SERVING "
                      f"(known: {', '.join(WORKLOAD_SERVING)}); the mapping is by workload name",
                      UserWarning, stacklevel=2)
    return energy_terms(generated_only_kwh_per_mtok)["consistent_kwh_per_mtok"].astype(float)
