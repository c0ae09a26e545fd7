"""Batching and queueing at a node: what the linear market does not see.

The LP treats a node as a fixed token capacity.  Here each node's AI capacity becomes GPUs,
the GPUs become model replicas serving with *continuous batching*, and a replica's latency
follows from its utilisation:

* **GPUs per node** = AI capacity (kW of IT power) / IT power per GPU.  An 8-GPU DGX H100
  draws at most 10.2 kW (GPUs at 700 W TDP are 55 % of it), so 1.275 kW per GPU including
  its share of host, network and fans.
* **Step time** of one generation step with ``b`` sequences in the batch is affine,
  ``t(b) = a + c*b`` (s).  Two sets of profiles give ``a`` and ``c``:

  - :func:`measured_profiles` (**the default of every function here and in
    :mod:`tokenflow.latency.latency_clearing` and :mod:`tokenflow.latency.simulate`** when no ``profiles``
    are passed; :func:`serving_profiles` is that default): chat and code review on the
    serving measurements (:mod:`tokenflow.scenarios.serving`), so the LP's capacity of a replica and
    the replica's saturation throughput are two independent numbers and each queue runs at
    its own utilisation (LP utilisation x :meth:`ServiceProfile.lp_to_pool_utilisation`).
    Image keeps its declared profile (no serving data for diffusion).
  - :func:`default_profiles`, **the paper's identity** (LP capacity = saturation throughput
    by construction): ``a`` is the memory-bound part (weight bytes / HBM bandwidth, H100 SXM
    3.35 TB/s) and ``c`` is fitted so that a full batch ``b_max`` delivers exactly the
    throughput the scenario's energy per token implies (replica power / J per token), so
    LP utilisation = replica utilisation rho.  Kept for comparison; pass it explicitly.
* **Requests** hold one of ``b_max`` batch slots (KV-cache space) for their prefill time
  (prompt tokens x prefill time per token, compute-bound at an assumed 50 % of H100's
  989 dense BF16 TFLOPS) plus ``G`` steps (``G`` = generated tokens, from the Azure traces).
  With mean batch ``b`` a request sees ``b_seen = 1 + b(B-1)/B`` sequences (itself and the
  others), its slot time is ``S = T_pre + G*t(b_seen)``, and Little's law ``b = lambda*E[S]``
  fixes ``b`` at each rho (``b = B`` exactly at rho = 1).
* **Waiting for a slot**: a G/G/c queue with ``c = b_max`` servers, Allen-Cunneen
  approximation ``Wq = C(c, A) / (c/E[S] - lambda) * (ca^2 + cs^2)/2`` (``C`` = Erlang C,
  exact for M/M/c); the wait, given that there is one, is taken as exponential with that
  mean (exact for M/M/c).
* **Latency** of a request: network round trip + wait + prefill + first step + about one
  step of alignment to step boundaries (time to first token, TTFT) for LLM workloads, or
  + all steps (completion) for images.  Tails (p99) are computed from the mixture of the
  wait distribution and the trace's prompt-length distribution, not by adding p99s.

Units: seconds inside, milliseconds in every returned table.  Every figure used is in
:data:`HARDWARE`, :func:`default_profiles`, :func:`measured_profiles` or the serving data file
with its source or a declared assumption.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd
import xarray as xr

from ..core import validate as _v
from ..core.errors import TokenflowError
from ..scenarios.scenario_fields import IMAGE_TOKENS_PER_IMAGE
from ..scenarios.traces import trace_stats

# Sourced hardware figures (see ai_workload_parameters.md §4) and declared assumptions.
HARDWARE = {
    "dgx_h100_kw": (10.2, "https://www.supercluster.blog/p/6-ai-supercluster-nvidia-dgx-h100 "
                          "(DGX H100, 8x H100 SXM, max system power 10.2 kW)"),
    "gpus_per_dgx": (8, "same source"),
    "h100_tdp_w": (700.0, "https://huggingface.co/hardware/h100"),
    "h100_hbm_tb_per_s": (3.35, "https://github.com/scaleway/docs-content (H100-SXM: 3.35 TB/s HBM bandwidth)"),
    "h100_bf16_tflops": (989.0, "https://gist.github.com/mikasenghaas/d63ded03f1f0417b1677627119bacc0d "
                                "(H100 dense BF16 989 TFLOPS)"),
    "prefill_mfu": (0.5, "assumption: prefill is compute-bound and reaches about half of peak FLOPS"),
}
GPU_KW = HARDWARE["dgx_h100_kw"][0] / HARDWARE["gpus_per_dgx"][0]  # IT kW per GPU incl. host share
J_PER_KWH_PER_MTOK = 3.6  # 1 kWh per M tokens = 3.6e6 J / 1e6 tokens


@dataclass(frozen=True)
class ServiceProfile:
    """How one workload is served on a replica (times in seconds).

    ``steps`` is the per-request number of generation steps: the trace's generated tokens
    (``trace`` set) or a fixed count ``fixed_steps`` (images: denoising steps).
    ``tokens_per_step``: market tokens produced per sequence per step.  ``max_pool_utilisation``
    (0-1, the pool's own utilisation, None = no cap) caps how far the latency-consistent
    clearing may load the pool (:func:`tokenflow.latency.latency_clearing.pool_limits`) where the
    analytic layer is not validated.  ``limit_ms`` is the
    end-to-end latency limit at quantile ``q`` (time to first token when ``metric`` is
    ``"ttft"``, completion when ``"completion"``); ``None`` = no latency limit (batch work).
    """

    workload: str
    gpus_per_replica: int
    max_batch: int
    step_fixed_s: float
    step_slope_s: float
    prefill_s_per_token: float
    tokens_per_step: float
    limit_ms: float | None
    metric: str = "ttft"
    trace: str | None = None
    fixed_steps: float | None = None
    peak_trace: str | None = None
    source: str = ""
    # LP capacity of one replica in market tokens/s (compute it may use / energy per token);
    # None: the profile is built so that it equals the saturation throughput (default_profiles,
    # the paper's identity; image in measured_profiles too)
    lp_tokens_per_s: float | None = None
    # cap on the pool's own utilisation from a check outside the analytic layer (the
    # simulation's limit at the largest pool it can run, tokenflow.latency.simulate.layer_check);
    # None: the analytic layer alone sets how far a pool may be loaded
    max_pool_utilisation: float | None = None

    def peak_to_mean(self) -> float:
        """Peak-to-mean request rate over 1-minute windows of ``peak_trace`` (1 without one)."""
        return trace_stats(self.peak_trace).peak_to_mean_1min if self.peak_trace else 1.0

    def step_time(self, b: float) -> float:
        """t(b) = a + c*b, seconds per generation step with ``b`` sequences in the batch."""
        return self.step_fixed_s + self.step_slope_s * b

    # request statistics -------------------------------------------------------------
    def steps_moments(self) -> tuple[float, float]:
        """(mean, squared coefficient of variation) of generation steps per request."""
        if self.trace is not None:
            t = trace_stats(self.trace)
            return t.generated_mean, t.generated_scv
        return float(self.fixed_steps), 0.0

    def prefill_moments(self) -> tuple[float, float]:
        """(mean, variance) of the prefill time per request, s."""
        if self.trace is None or self.prefill_s_per_token == 0:
            return 0.0, 0.0
        t = trace_stats(self.trace)
        m = t.prompt_mean * self.prefill_s_per_token
        return m, t.prompt_scv * m * m

    def prefill_grid(self, n: int = 400) -> np.ndarray:
        """Prefill times (s) at ``n`` equally likely prompt lengths (for tail mixtures)."""
        if self.trace is None or self.prefill_s_per_token == 0:
            return np.zeros(1)
        u = (np.arange(n) + 0.5) / n
        return trace_stats(self.trace).prompt_quantile(u) * self.prefill_s_per_token

    def saturation_rate(self) -> float:
        """Requests/s a replica serves with every slot busy (rho = 1)."""
        g, _ = self.steps_moments()
        tpre, _ = self.prefill_moments()
        return self.max_batch / (tpre + g * self.step_time(self.max_batch))

    def tokens_per_request(self) -> float:
        return self.steps_moments()[0] * self.tokens_per_step

    def saturation_tokens_per_s(self) -> float:
        """Market tokens/s a replica serves at saturation (rho = 1)."""
        return self.saturation_rate() * self.tokens_per_request()

    def lp_to_pool_utilisation(self) -> float:
        """Pool utilisation per unit of LP utilisation: the LP's capacity of a replica over what
        the replica can serve (1 when the profile is built on the LP's capacity)."""
        if self.lp_tokens_per_s is None:
            return 1.0
        return self.lp_tokens_per_s / self.saturation_tokens_per_s()


def _slope_for_energy(energy_kwh_per_mtok: float, gpus: int, b_max: int, tokens_per_step: float,
                      a: float) -> float:
    """c such that a full batch delivers the throughput the energy figure implies:
    b_max*tokens_per_step / t(b_max) = gpus*GPU_KW*1000 / (J per token)."""
    j_per_token = energy_kwh_per_mtok * J_PER_KWH_PER_MTOK
    t_full = b_max * tokens_per_step * j_per_token / (gpus * GPU_KW * 1000.0)
    c = (t_full - a) / b_max
    if c < 0:
        raise TokenflowError(f"step model: fixed step time {a * 1e3:.2f} ms exceeds the full-batch step time "
                             f"{t_full * 1e3:.2f} ms implied by {energy_kwh_per_mtok} kWh/M tokens")
    return c


def default_profiles(s) -> dict[str, ServiceProfile]:
    """**The paper's identity** (LP capacity = saturation by construction): service profiles
    whose step-time slope is fitted to scenario ``s``'s energy per token, so a replica's
    saturation throughput equals the LP's capacity of it and LP utilisation = pool
    utilisation.  Not the default of any function (that is :func:`serving_profiles`, the
    measured step times); kept to show what the identity implies.  Figures and sources:

    * ``chat``: Llama-3.1-8B class on 1 H100 (the scenario's chat energy is measured on it);
      weights 16.06 GB (8.03e9 parameters x 2 B) / 3.35 TB/s -> a = 4.8 ms; batch up to 64
      (the batch of the ML.ENERGY measurement); prefill 2 x 8.03e9 FLOP per token at 50 %
      of 989 TFLOPS; conversation trace; limit p99 TTFT 500 ms (MLPerf Inference, Llama 3.1
      8B interactive).
    * ``code_review``: 70B class (the scenario's 1 J/token assumption) on one 8-GPU DGX;
      weights 141 GB over 8 x 3.35 TB/s; batch 64; code trace; limit p99 TTFT 2000 ms (MLPerf
      Llama 2 70B server).
    * ``image``: one image per GPU at a time (no batching, a = 0), 30 denoising steps of
      IMAGE_TOKENS_PER_IMAGE/30 tokens (the scenario's tokens per image); limit p99 completion
      20 s (MLPerf SDXL server).
    * ``batch_training``: no latency limit (throughput work); not queued here.

    ``peak_trace``: the trace whose 1-minute peak-to-mean rate sets the within-hour peak load
    (conversation for chat and, as an assumption, image; code for code_review).
    """
    _v.scenario(s, "s", "default_profiles")
    e = s.workloads["energy_kwh_per_mtok"]
    tflops = HARDWARE["h100_bf16_tflops"][0] * 1e12 * HARDWARE["prefill_mfu"][0]
    hbm = HARDWARE["h100_hbm_tb_per_s"][0] * 1e12
    mlperf = "https://github.com/mlcommons/inference/blob/001712e9daf80386e0dda43f97b8f36981d792c4/loadgen/mlperf.conf"
    out: dict[str, ServiceProfile] = {}
    if "chat" in e:
        a = 8.03e9 * 2 / hbm
        out["chat"] = ServiceProfile(
            "chat", 1, 64, a, _slope_for_energy(e["chat"], 1, 64, 1.0, a), 2 * 8.03e9 / tflops, 1.0, 500.0,
            "ttft", trace="conv", peak_trace="conv",
            source=f"Llama-3.1-8B on 1 H100; TTFT limit 500 ms at p99: MLPerf llama3_1-8b-interactive ({mlperf})")
    if "code_review" in e:
        a = 70.6e9 * 2 / (8 * hbm)
        out["code_review"] = ServiceProfile(
            "code_review", 8, 64, a, _slope_for_energy(e["code_review"], 8, 64, 1.0, a),
            2 * 70.6e9 / (8 * tflops), 1.0, 2000.0, "ttft", trace="code", peak_trace="code",
            source=f"70B model on 8 H100; TTFT limit 2000 ms at p99: MLPerf llama2-70b server ({mlperf})")
    if "image" in e:
        steps, tokens = 30.0, float(IMAGE_TOKENS_PER_IMAGE)
        out["image"] = ServiceProfile(
            "image", 1, 1, 0.0, _slope_for_energy(e["image"], 1, 1, tokens / steps, 0.0), 0.0, tokens / steps,
            20000.0, "completion", fixed_steps=steps, peak_trace="conv",
            source=f"one image per GPU, 30 steps (assumption); 20 s at p99: MLPerf SDXL server ({mlperf}); "
                   "arrival peaks as the conversation trace (assumption)")
    return out


def measured_profiles(s, batch: int | None = None) -> dict[str, ServiceProfile]:
    """Service profiles of chat and code review built on the serving measurements
    (:mod:`tokenflow.scenarios.serving`), not on the scenario's energy per token; image as in
    :func:`default_profiles` (no serving data for diffusion).  Per workload:

    * step time ``t(b) = a + c'*b`` from the measured fit ``a + c*b + d*b*ctx`` at the
      trace's mean context ``ctx`` (prompt + half the generated tokens): ``c' = c + d*ctx``;
    * prefill time per prompt token measured (first-token latency slope);
    * batch ``min(batch, KV-cache limit)`` (:func:`tokenflow.scenarios.serving.serving_batch`): ``batch``
      defaults to the serving batch (64); the KV-cache limit is the replica's memory after the
      weights over the KV bytes of a mean request (prompt + generated tokens);
    * **prefill/decode interference** (declared approximation; Splitwise, Patel et al. ISCA
      2024, runs both phases on one machine in its baseline): prompt processing takes GPU time
      from decode steps.  At saturation a replica's busy time per request is
      ``prefill + G*t(B)/B``, so a share ``f = lambda_sat*prefill`` of its time goes to
      prefill; every decode step is stretched by ``1 + (B - 1)*prefill/(G*t(B))`` (the other
      slots' prefills; at every load: conservative below saturation), so that a full replica
      serves exactly ``lambda_sat`` requests/s;
    * ``lp_tokens_per_s``: the LP's capacity of the replica, GPUs x IT kW per GPU / the
      scenario's energy per token, so :meth:`ServiceProfile.lp_to_pool_utilisation` maps the
      LP's utilisation to the pool's own.
    """
    from ..scenarios.serving import SERVING_BATCH, WORKLOAD_SERVING, serving_models

    batch = SERVING_BATCH if batch is None else batch
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise TokenflowError(f"measured_profiles: batch must be a whole number >= 1, got {batch!r}")
    base = default_profiles(s)
    e = s.workloads["energy_kwh_per_mtok"]
    models = serving_models()
    out: dict[str, ServiceProfile] = {}
    for w, p in base.items():
        if w not in WORKLOAD_SERVING:
            out[w] = p
            continue
        trace, acc, model = WORKLOAD_SERVING[w]
        sm, t = models[(acc, model)], trace_stats(trace)
        ctx = t.prompt_mean + t.generated_mean / 2.0
        a, c, d = sm.step_coef
        b_kv = sm.max_batch_kv(t.prompt_mean + t.generated_mean)
        b = int(min(batch, b_kv))
        if b < 1:
            raise TokenflowError(f"{w}: a mean request's KV cache does not fit beside the weights of {model}")
        slope = c + d * ctx
        tpre = t.prompt_mean * sm.prefill_s_per_token
        lam_sat = 1.0 / (tpre + t.generated_mean * (a + slope * b) / b)
        f = lam_sat * tpre
        # decode steps stretched by the other B - 1 slots' prefills, so that a full replica
        # serves lam_sat (slot time tpre + G t(B) stretch = B / lam_sat): the request's own
        # prefill is in its slot time once, not again in the stretch
        t_dec = t.generated_mean * (a + slope * b)
        stretch = 1.0 + (b - 1) * tpre / t_dec
        lp = sm.gpus * GPU_KW / float(e[w]) * 1e6 / 3600.0
        out[w] = replace(p, gpus_per_replica=sm.gpus, max_batch=b, step_fixed_s=a * stretch,
                         step_slope_s=slope * stretch, prefill_s_per_token=sm.prefill_s_per_token,
                         lp_tokens_per_s=lp,
                         source=f"{model} on {sm.gpus}x {acc}, measured (tokenflow/data/serving_measurements.csv); "
                                f"batch {b} (KV-cache limit {b_kv}); prefill share of GPU time at saturation "
                                f"{f:.3f}; " + p.source.split(";", 1)[-1].strip())
    return out


def serving_profiles(s) -> dict[str, ServiceProfile]:
    """The default service profiles of the package: :func:`measured_profiles` of ``s`` (chat
    and code review on the serving measurements, at the serving batch; image and any other
    workload without serving data on its declared profile of :func:`default_profiles`).
    Every function of :mod:`tokenflow.latency.queueing`, :mod:`tokenflow.latency.latency_clearing` and
    :mod:`tokenflow.latency.simulate` uses these when ``profiles`` is not given; pass
    ``default_profiles(s)`` for the paper's identity."""
    _v.scenario(s, "s", "serving_profiles")
    return measured_profiles(s)


# --------------------------------------------------------------------------- queues

def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``a`` = lambda/mu
    (Erlang B recursion, numerically stable for large ``c``); 1 when a >= c."""
    c = _v.integer(c, "c (servers)", "erlang_c", lo=1, hi=_v.MAX_SERVERS)
    a = _v.number(a, "a (offered load)", "erlang_c", lo=0.0)
    if a >= c:
        return 1.0
    if a == 0:
        return 0.0
    if c <= 200:
        b = 1.0
        for k in range(1, int(c) + 1):
            b = a * b / (k + a * b)
    else:  # Erlang B = Poisson pmf / cdf at c, in logs (stable for very large c)
        from scipy.special import gammaincc

        log_pmf = c * math.log(a) - a - math.lgamma(c + 1)
        b = math.exp(log_pmf - math.log(float(gammaincc(c + 1, a))))
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def ggc_wait(lam: float, mean_service: float, c: int, ca2: float = 1.0, cs2: float = 1.0) -> tuple[float, float]:
    """(P(wait), mean wait in s) of a G/G/c queue by Allen-Cunneen: the M/M/c wait scaled by
    (ca^2 + cs^2)/2.  Exact for M/M/c (ca2 = cs2 = 1).  Infinite wait at or above saturation."""
    fn = "ggc_wait"
    lam = _v.number(lam, "lam (arrival rate, 1/s)", fn, lo=0.0)
    mean_service = _v.number(mean_service, "mean_service (s)", fn, lo=0.0, lo_open=True)
    c = _v.integer(c, "c (servers)", fn, lo=1, hi=_v.MAX_SERVERS)
    ca2 = _v.number(ca2, "ca2 (arrival SCV)", fn, lo=0.0)
    cs2 = _v.number(cs2, "cs2 (service SCV)", fn, lo=0.0)
    a = lam * mean_service
    if a >= c or c / mean_service - lam <= 0:  # (the second: a just below c by round-off)
        return 1.0, math.inf
    pw = erlang_c(c, a)
    return pw, pw / (c / mean_service - lam) * (ca2 + cs2) / 2.0


def _mixture_quantile(q: float, p_wait: float, cond_mean: float, x: np.ndarray) -> float:
    """q-quantile of W + X, W = 0 w.p. 1 - p_wait else Exp(mean cond_mean), X uniform over the
    grid ``x`` and independent of W: the smallest v with P(W + X > v) <= 1 - q, in closed form.

    Between consecutive sorted grid points ``x_j <= v < x_{j+1}`` the survival function is
    ``A_j + B_j exp(-(v - x_j)/m)`` with ``A_j = (n - j - 1)/n`` (points above v) and
    ``B_j = p_wait/n * sum_{i<=j} exp(-(x_j - x_i)/m)`` (``m`` = cond_mean); it is
    continuous and decreasing there and jumps down at each grid point, so the quantile is
    either a grid point or ``x_j + m ln(B_j / (1 - q - A_j))`` in the interval where the
    level is crossed.  (The number :func:`_mixture_quantile_bisect` finds by bisection, about
    ten times faster, and exact where the bisection is at the mercy of rounding: where ``A_j``
    equals the level, e.g. 4 of 400 grid points above v at q = 0.99, the survival function
    stays above the level until the jump; the clearing asks for this thousands of times.)"""
    if not math.isfinite(cond_mean):
        return math.inf
    xs = np.sort(np.asarray(x, dtype=float))
    if not (p_wait > 0 and cond_mean > 0):  # no wait: the smallest grid point with at most 1 - q above it
        above = (len(xs) - np.searchsorted(xs, xs, side="right")) / len(xs)
        return float(xs[np.flatnonzero(above <= 1.0 - q)[0]])
    n, level, m = len(xs), 1.0 - q, cond_mean
    decay = np.exp(-np.diff(xs) / m)
    t = np.empty(n)
    acc = 0.0
    for j in range(n):  # T_j = sum_{i<=j} exp(-(x_j - x_i)/m), by recurrence (no overflow)
        acc = (acc * decay[j - 1] if j else 0.0) + 1.0
        t[j] = acc
    a = (n - 1 - np.arange(n)) / n
    b = p_wait / n * t
    surv_at = a + b  # survival at each grid point (just after its jump)
    hit = np.flatnonzero(surv_at <= level)
    if len(hit) and hit[0] == 0:
        return float(xs[0])
    j = int(hit[0]) - 1 if len(hit) else n - 1  # the crossing is in [x_j, x_{j+1}) or at x_{j+1}
    # a[j] at the level (up to rounding: 1 - 0.99 is not 4/400 in floating point): the continuous
    # part stays above it, so the jump at x_{j+1} crosses it
    if j < n - 1 and (a[j] >= level * (1.0 - 1e-9) or a[j] + b[j] * decay[j] > level):
        return float(xs[j + 1])  # the level is crossed by the jump at x_{j+1}
    v = float(xs[j] + m * math.log(b[j] / (level - a[j])))
    return min(v, float(xs[j + 1])) if j < n - 1 else v


def _mixture_quantile_bisect(q: float, p_wait: float, cond_mean: float, x: np.ndarray) -> float:
    """:func:`_mixture_quantile` by bisection on the survival function (the reference its
    closed form is tested against)."""
    if not math.isfinite(cond_mean):
        return math.inf

    def surv(v: float) -> float:
        w = v - x
        pw = np.where(w < 0, 1.0, p_wait * np.exp(-np.maximum(w, 0) / cond_mean if cond_mean > 0 else -np.inf))
        return float(np.mean(np.where(w < 0, 1.0, pw)))

    tail = cond_mean * (max(0.0, math.log(p_wait / (1 - q))) + 1.0) if p_wait > 0 else 0.0
    lo, hi = float(x.min()), float(x.max()) + tail + 1e-9
    if surv(lo) <= 1 - q:
        return lo
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if surv(mid) > 1 - q:
            lo = mid
        else:
            hi = mid
    return hi


def replica_latency(p: ServiceProfile, rho: float, ca2: float = 1.0, q: float = 0.99,
                    replicas: int = 1) -> dict[str, float]:
    """Analytic latency of ``replicas`` pooled replicas of profile ``p`` (one queue feeding
    ``replicas * max_batch`` slots: a least-loaded router) at utilisation ``rho`` (0-1 of the
    saturation throughput) with arrival SCV ``ca2``.  Returns milliseconds: ``mean_ms`` and
    ``p_ms`` (the ``q`` quantile) of the processing latency (wait + prefill + first step, or
    + all steps for ``metric="completion"``), ``wait_mean_ms``, ``step_ms`` (time per output
    token at the mean batch) and ``batch`` (mean sequences in the batch), ``p_wait``."""
    fn = "replica_latency"
    _v.profile(p, "p", fn)
    rho = _v.number(rho, "rho (utilisation)", fn, lo=0.0)
    ca2 = _v.number(ca2, "ca2 (arrival SCV)", fn, lo=0.0)
    q = _v.quantile(q, "q (quantile)", fn)
    replicas = _v.integer(replicas, "replicas", fn, lo=1, hi=_v.MAX_REPLICAS)
    if not rho < 1:
        inf = math.inf
        return {"rho": rho, "batch": float(p.max_batch), "step_ms": p.step_time(p.max_batch) * 1e3,
                "p_wait": 1.0, "wait_mean_ms": inf, "mean_ms": inf, "p_ms": inf}
    g, g_scv = p.steps_moments()
    tpre, tpre_var = p.prefill_moments()
    lam = rho * p.saturation_rate()
    big_b = p.max_batch
    # a request sees itself plus the others: b_seen = 1 + b*(B-1)/B; Little: b = lam*E[S(b_seen)]
    b = min(float(big_b), lam * (tpre + g * p.step_time(1.0))
            / (1.0 - lam * g * p.step_slope_s * (big_b - 1) / big_b))
    t = p.step_time(1.0 + b * (big_b - 1) / big_b)
    es = tpre + g * t
    cs2 = (tpre_var + t * t * g_scv * g * g) / es ** 2
    pw, wq = ggc_wait(lam * replicas, es, p.max_batch * int(replicas), ca2, cs2)
    # steps are atomic: admission waits for the running step to end and the first decode step
    # starts at the boundary after prefill, about one step in all for the first token
    x = p.prefill_grid() + 2 * t if p.metric == "ttft" else np.array([g * t])
    if p.metric == "completion" and g_scv > 0:
        raise TokenflowError("completion latency is only modelled for a fixed number of steps")
    pq = _mixture_quantile(q, pw, wq / pw if pw > 0 else 0.0, x)
    return {"rho": rho, "batch": b, "step_ms": t * 1e3, "p_wait": pw, "wait_mean_ms": wq * 1e3,
            "mean_ms": (wq + float(x.mean())) * 1e3, "p_ms": pq * 1e3}


def max_utilisation(p: ServiceProfile, budget_ms: float, ca2: float = 1.0, q: float = 0.99,
                    replicas: int = 1, tol: float = 1e-4) -> float:
    """Largest rho at which the ``q`` quantile of the processing latency stays within
    ``budget_ms`` (0 when even an idle replica misses it).  Memoised: the fixed-point
    iteration asks for the same pools again and again."""
    fn = "max_utilisation"
    _v.profile(p, "p", fn)
    budget_ms = _v.number(budget_ms, "budget_ms", fn)  # < 0 allowed: the round trip alone misses the limit
    ca2 = _v.number(ca2, "ca2 (arrival SCV)", fn, lo=0.0)
    q = _v.quantile(q, "q (quantile)", fn)
    replicas = _v.integer(replicas, "replicas", fn, lo=1, hi=_v.MAX_REPLICAS)
    tol = _v.number(tol, "tol", fn, lo=0.0, hi=0.5, lo_open=True)
    return _max_utilisation(p, budget_ms, ca2, q, replicas, max(tol, _v.MIN_TOL))


@lru_cache(maxsize=4096)
def _max_utilisation(p: ServiceProfile, budget_ms: float, ca2: float, q: float, replicas: int, tol: float) -> float:
    if budget_ms <= 0 or replica_latency(p, 0.0, ca2, q, replicas)["p_ms"] > budget_ms:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(_v.MAX_BISECTION_STEPS):  # bounded: tol >= MIN_TOL needs about 40 steps
        if hi - lo <= tol:
            break
        mid = 0.5 * (lo + hi)
        if replica_latency(p, mid, ca2, q, replicas)["p_ms"] <= budget_ms:
            lo = mid
        else:
            hi = mid
    return lo


def thinned_scv(ca2: float, n: float) -> float:
    """SCV of a renewal stream split at random over ``n`` replicas: 1 + (ca2 - 1)/n."""
    ca2 = _v.number(ca2, "ca2 (arrival SCV)", "thinned_scv", lo=0.0)
    n = _v.number(n, "n (replicas)", "thinned_scv", lo=0.0)
    return 1.0 + (ca2 - 1.0) / max(n, 1.0)


def arrival_scv(p: ServiceProfile) -> float:
    """Squared CV of the trace's inter-arrival times (1 = Poisson when no trace)."""
    _v.profile(p, "p", "arrival_scv")
    return trace_stats(p.trace).interarrival_cv ** 2 if p.trace else 1.0


# --------------------------------------------------------------------------- the market

def route_rtt_ms(s) -> pd.DataFrame:
    """Round-trip time (ms) of the latency-shortest path between every ordered node pair
    (origin rows, processing-node columns; 0 on the diagonal).  A lower bound on the routes a
    cleared market uses; for those see :func:`route_rtts`."""
    from ..scenarios.network import candidate_paths

    _v.scenario(s, "s", "route_rtt_ms")
    ps = candidate_paths(s, 1)
    nodes = s.node_ids
    out = pd.DataFrame(np.inf, index=pd.Index(nodes, name="origin"), columns=pd.Index(nodes, name="node"))
    for o, t, r in zip(ps.origin, ps.target, ps.rtt_ms):
        out.iat[o, t] = min(out.iat[o, t], r)
    return out


def pool_replicas(capacity_kw: float, share: float, p: ServiceProfile) -> int:
    """Replicas of profile ``p`` at a node with ``capacity_kw`` of AI compute of which the share
    ``share`` serves this workload (at least 1)."""
    capacity_kw = _v.number(capacity_kw, "capacity_kw", "pool_replicas", lo=0.0)
    share = _v.number(share, "share", "pool_replicas", lo=0.0, hi=1.0)
    _v.profile(p, "p", "pool_replicas")
    return max(1, int(round(capacity_kw * share / GPU_KW / p.gpus_per_replica)))


def load_shares(result, s) -> pd.DataFrame:
    """Share of each node's compute load (kW) taken by each workload (node x workload)."""
    _v.result_of(result, s, "load_shares")
    load = result.dataset["processing"].to_pandas() * s.workloads["energy_kwh_per_mtok"]
    return load.div(load.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)


def _origin_flows(ds: xr.Dataset) -> np.ndarray:
    """transfers[origin, node, workload]; an error when the result does not track origins."""
    tr = ds["transfers"].transpose("origin", "node", "workload").values
    if np.isnan(tr).all():
        raise TokenflowError("latency needs flows by origin (round trips): solve with the path formulation")
    return np.nan_to_num(tr)


def pool_utilisation(result, utilisation: pd.DataFrame | None = None) -> pd.DataFrame:
    """Utilisation of each pool (node x workload): the node's cleared compute utilisation for
    every workload, or ``utilisation`` (node x workload) where given."""
    _v.result_of(result, None, "pool_utilisation", need_scenario=False)
    _v.frame(utilisation, "utilisation", "pool_utilisation", result.dataset, complete=True)
    ds = result.dataset
    nodes, wls = list(ds["node"].values), list(ds["workload"].values)
    if utilisation is not None:
        return utilisation.reindex(index=nodes, columns=wls)
    node_u = ds["compute_utilization"].to_pandas()
    return pd.DataFrame({w: node_u for w in wls})


def market_latency(result, s, profiles: dict[str, ServiceProfile] | None = None, q: float = 0.99,
                   utilisation: pd.DataFrame | None = None, capacity_kw: pd.Series | None = None,
                   peak: bool = False, dispatch: str = "pooled", shares: pd.DataFrame | None = None,
                   rtt: xr.Dataset | None = None) -> xr.Dataset:
    """Latency of the cleared market ``result`` of scenario ``s``, per node and workload.

    ``profiles``: default :func:`serving_profiles` (measured step times; pass
    :func:`default_profiles` for the paper's identity).  ``utilisation`` is in the LP's unit;
    each pool runs at it times its profile's :meth:`ServiceProfile.lp_to_pool_utilisation`.
    The pool of workload ``k`` at node ``n`` has its share of the node's GPUs
    (``capacity_kw``, default the result's compute capacity; ``shares``, node x workload,
    default :func:`load_shares`, under which every pool runs at the node's utilisation) and
    runs at ``utilisation``
    (node x workload; default the node's compute utilisation for every pool), times the
    profile's 1-minute peak-to-mean when ``peak``.  ``dispatch``: ``"pooled"`` (a least-loaded
    router: one queue for the pool, trace burstiness kept) or ``"random"`` (each replica its
    own queue, the trace's arrivals thinned at random).  Round trips are those of the routes
    the market uses (:func:`route_rtts`, or ``rtt`` if already computed).  Returns
    ``pool_utilisation``, ``replicas``, ``mean_ms``, ``p_ms`` (processing latency, node x
    workload), ``rtt_ms`` (worst route in use) and ``rtt_mean_ms`` (flow-weighted), ``e2e_p_ms``
    (worst-route RTT + processing quantile; all three origin x node x workload, NaN where no
    flow), ``limit_ms`` and ``lp_limit_ms`` (workload)."""
    fn = "market_latency"
    _v.choice(dispatch, "dispatch", fn, ("pooled", "random"))
    _v.result_of(result, s, fn)
    q = _v.quantile(q, "q (quantile)", fn)
    peak = _v.flag(peak, "peak", fn)
    ds = result.dataset
    profiles = serving_profiles(s) if profiles is None else _v.profiles(profiles, "profiles", fn)
    _v.frame(utilisation, "utilisation", fn, ds)
    _v.frame(shares, "shares", fn, ds, hi=1.0)
    _v.series(capacity_kw, "capacity_kw", fn, ds)
    nodes, wls = list(ds["node"].values), list(ds["workload"].values)
    util = pool_utilisation(result, utilisation)
    cap = ds["compute_capacity"].to_pandas() if capacity_kw is None else capacity_kw
    proc = ds["processing"].to_pandas()
    share = load_shares(result, s) if shares is None else shares.reindex(index=nodes, columns=wls).fillna(0.0)
    shape = (len(nodes), len(wls))
    res = {k: np.full(shape, np.nan) for k in ("pool_utilisation", "mean_ms", "p_ms", "replicas", "batch", "step_ms")}
    for j, w in enumerate(wls):
        p = profiles.get(w)
        if p is None:
            continue
        ca2 = arrival_scv(p)
        for i, n in enumerate(nodes):
            if proc.loc[n, w] <= 0:
                continue
            reps = pool_replicas(cap[n], share.loc[n, w], p)
            rho = float(util.loc[n, w]) * (p.peak_to_mean() if peak else 1.0) * p.lp_to_pool_utilisation()
            if not math.isfinite(rho):
                raise _v.ScenarioError(f"market_latency: utilisation of the {w} pool at {n} is {rho!r} "
                                       "although the market sends it flow")
            if dispatch == "pooled":
                lat = replica_latency(p, min(rho, 1.0), ca2, q, reps)
            else:
                lat = replica_latency(p, min(rho, 1.0), thinned_scv(ca2, reps), q, 1)
            res["pool_utilisation"][i, j] = rho
            res["mean_ms"][i, j], res["p_ms"][i, j] = lat["mean_ms"], lat["p_ms"]
            res["replicas"][i, j] = reps
            res["batch"][i, j], res["step_ms"][i, j] = lat["batch"], lat["step_ms"]
    if rtt is None:
        rt = route_rtts(result, s)
    else:
        need = ("rtt_max_ms", "rtt_mean_ms")
        if not isinstance(rtt, xr.Dataset) or any(v not in rtt for v in need) \
                or set(rtt["rtt_max_ms"].dims) != {"origin", "node", "workload"}:
            raise _v.ScenarioError("market_latency: rtt must be the Dataset route_rtts(result, s) returns "
                                   f"(rtt_max_ms, rtt_mean_ms over origin x node x workload), got {type(rtt).__name__}")
        rt = rtt.reindex(origin=nodes, node=nodes, workload=wls)
    rtt_max = rt["rtt_max_ms"].transpose("origin", "node", "workload").values
    used = _origin_flows(ds) > 1e-9
    e2e = np.where(used, rtt_max + res["p_ms"][None, :, :], np.nan)
    lp_lim = json.loads(ds.attrs["latency_limits_ms"])
    out = xr.Dataset(
        {
            **{k: (("node", "workload"), v) for k, v in res.items()},
            "rtt_ms": (("origin", "node", "workload"), rtt_max),
            "rtt_mean_ms": (("origin", "node", "workload"), rt["rtt_mean_ms"].transpose("origin", "node",
                                                                                      "workload").values),
            "e2e_p_ms": (("origin", "node", "workload"), e2e),
            "limit_ms": (("workload",), np.array([np.nan if profiles.get(w) is None or profiles[w].limit_ms is None
                                                  else profiles[w].limit_ms for w in wls])),
            "lp_limit_ms": (("workload",), np.array([float(lp_lim.get(w, np.nan)) for w in wls])),
        },
        coords={"node": nodes, "workload": wls, "origin": nodes},
        attrs={"quantile": q, "peak": int(peak), "dispatch": dispatch},
    )
    for v, u in {"pool_utilisation": "1", "mean_ms": "ms", "p_ms": "ms", "rtt_ms": "ms", "rtt_mean_ms": "ms",
                 "e2e_p_ms": "ms", "limit_ms": "ms", "lp_limit_ms": "ms", "replicas": "1", "batch": "sequences",
                 "step_ms": "ms"}.items():
        out[v].attrs["unit"] = u
    return out


def with_limits(profiles: dict[str, ServiceProfile], limits_ms: dict[str, float | None]) -> dict[str, ServiceProfile]:
    """Profiles with some end-to-end latency limits changed (ms; None removes the limit)."""
    out = dict(_v.profiles(profiles, "profiles", "with_limits"))
    if not hasattr(limits_ms, "items"):
        raise _v.ScenarioError(f"with_limits: limits_ms must be a mapping workload -> ms, got {limits_ms!r:.80}")
    for w, v in limits_ms.items():
        if w not in out:
            raise TokenflowError(f"no service profile for workload {w!r}")
        if v is not None:
            v = _v.number(v, f"limits_ms[{w!r}]", "with_limits", lo=0.0, lo_open=True, unit="ms")
        out[w] = replace(out[w], limit_ms=v)
    return out


def energy_mix(s, profiles: dict[str, ServiceProfile] | None = None) -> pd.DataFrame:
    """Energy per generated token when prompt processing is weighted by the trace's mix.

    Prefill is compute-bound: a prompt token costs the replica's power x its prefill time per
    token (J), while the scenario's figure is per generated token.  Per workload with a trace:
    ``decode_j`` (scenario, J per generated token), ``prefill_j`` (J per prompt token),
    ``prompt_per_generated`` (trace), ``weighted_j`` = decode_j + ratio x prefill_j and
    ``factor`` = weighted_j / decode_j.  Read as: how much the energy per market token would
    grow if the scenario's figure covered generation only and the requests looked like the trace.
    ``profiles``: default :func:`serving_profiles` (measured prefill time per prompt token and
    GPUs per replica); :func:`default_profiles` gives the declared H100 figures."""
    _v.scenario(s, "s", "energy_mix")
    profiles = serving_profiles(s) if profiles is None else _v.profiles(profiles, "profiles", "energy_mix")
    rows = {}
    for w, p in profiles.items():
        if p.trace is None:
            continue
        t = trace_stats(p.trace)
        dec = float(s.workloads.loc[w, "energy_kwh_per_mtok"]) * J_PER_KWH_PER_MTOK
        pre = p.gpus_per_replica * GPU_KW * 1000.0 * p.prefill_s_per_token
        ratio = t.prompt_mean / t.generated_mean
        rows[w] = {"trace": p.trace, "decode_j": dec, "prefill_j": pre, "prompt_per_generated": ratio,
                   "weighted_j": dec + ratio * pre, "factor": (dec + ratio * pre) / dec}
    return pd.DataFrame(rows).T


def route_rtts(result, s, tol: float = 1e-9, mean: bool = True) -> xr.Dataset:
    """Round trips of the routes the cleared market ``result`` of ``s`` uses (ms), per
    ``origin`` x ``node`` x ``workload`` with flow (NaN elsewhere):

    * ``rtt_max_ms``: the largest RTT of any loop-free route from origin to node whose every
      link carries flow of the workload and whose RTT is within the LP's limit.  Every route
      the LP can have used is such a route, so this is an upper bound on the worst route in use
      (exact when the flows admit one decomposition).
    * ``rtt_mean_ms``: flow-weighted RTT of one decomposition of the link flows into those
      routes (a least-residual LP); the result keeps flows per link and per origin x node, not
      per path, so it is one consistent reading, not necessarily the solver's own split.
    * ``rtt_min_ms``: the fastest such route.

    ``mean=False`` leaves out ``rtt_mean_ms`` and the decomposition LP behind it (the
    latency-consistent clearing reads only ``rtt_max_ms``, hundreds of times)."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    from ..scenarios.network import arc_table

    _v.result_of(result, s, "route_rtts")
    tol = _v.number(tol, "tol", "route_rtts", lo=0.0)
    if not isinstance(mean, (bool, np.bool_)):
        raise _v.ScenarioError(f"route_rtts: mean must be True or False, got {mean!r}")
    ds = result.dataset
    nodes, wls = list(ds["node"].values), list(ds["workload"].values)
    pos = {n: i for i, n in enumerate(nodes)}
    arcs = arc_table(s).reindex(ds["link"].values)
    au = np.array([pos[u] for u in arcs["origin"]])
    av = np.array([pos[v] for v in arcs["target"]])
    lat = arcs["latency_ms"].to_numpy(float)
    lim = json.loads(ds.attrs["latency_limits_ms"])
    tr = _origin_flows(ds)
    lf = ds["link_flow"].transpose("link", "workload").values
    N = len(nodes)
    out = {k: np.full((N, N, len(wls)), np.nan)
           for k in ("rtt_max_ms", "rtt_mean_ms", "rtt_min_ms") if mean or k != "rtt_mean_ms"}
    for j, w in enumerate(wls):
        flow = tr[:, :, j]
        if not (flow > tol).any():
            continue
        limit = float(lim.get(w, np.inf)) + 1e-6
        carry = np.flatnonzero(lf[:, j] > tol)
        nbr: list[list[int]] = [[] for _ in range(N)]
        for a in carry:
            nbr[au[a]].append(int(a))
        paths: list[tuple[int, int, float, list[int]]] = []  # (origin, node, rtt, arcs)
        expanded = 0  # partial routes expanded (bounded: loop-free routes can be exponentially many)
        for o in range(N):
            targets = set(np.flatnonzero(flow[o] > tol)) - {o}
            if flow[o, o] > tol:
                paths.append((o, o, 0.0, []))
            if not targets:
                continue
            stack = [(o, 0.0, [], {o})]
            while stack:
                expanded += 1
                if expanded > _v.MAX_ROUTE_EXPANSIONS:
                    raise TokenflowError(f"route_rtts: {w}: more than {_v.MAX_ROUTE_EXPANSIONS:,} partial routes "
                                         "over the links in use within the latency limit; the network is too "
                                         "meshed to list them (a documented bound)")
                u, r, seq, seen = stack.pop()
                for a in nbr[u]:
                    v, r2 = int(av[a]), r + 2.0 * lat[a]
                    if v in seen or r2 > limit:
                        continue
                    if v in targets:
                        paths.append((o, v, r2, [*seq, a]))
                    stack.append((v, r2, [*seq, a], seen | {v}))
        po = np.array([p[0] for p in paths])
        pn = np.array([p[1] for p in paths])
        pr = np.array([p[2] for p in paths])
        for o, n in zip(*np.nonzero(flow > tol)):
            sel = (po == o) & (pn == n)
            if not sel.any():
                raise TokenflowError(f"{w}: flow from {nodes[o]} to {nodes[n]} has no route over links in use "
                                     "within the latency limit")
            out["rtt_max_ms"][o, n, j] = pr[sel].max()
            out["rtt_min_ms"][o, n, j] = pr[sel].min()
        if not mean:
            continue
        # one decomposition: path flows f >= 0 matching each origin x node flow exactly and
        # the link flows up to slacks, least total slack
        P, A = len(paths), len(carry)
        arow = {int(a): i for i, a in enumerate(carry)}
        rows, cols = [], []
        for i, p in enumerate(paths):
            for a in p[3]:
                rows.append(arow[a])
                cols.append(i)
        inc = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(A, P))
        pairs = sorted({(int(o), int(n)) for o, n in zip(po, pn)})
        prow = {p: i for i, p in enumerate(pairs)}
        pair_m = sp.csr_array((np.ones(P), ([prow[(int(o), int(n))] for o, n in zip(po, pn)], np.arange(P))),
                              shape=(len(pairs), P))
        eye = sp.identity(A, format="csr")
        a_eq = sp.vstack([sp.hstack([inc, eye, -eye]),
                          sp.hstack([pair_m, sp.csr_array((len(pairs), 2 * A))])]).tocsr()
        b_eq = np.r_[lf[carry, j], [flow[o, n] for o, n in pairs]]
        res = linprog(np.r_[np.zeros(P), np.ones(2 * A)], A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        if res.status == 0:
            f = res.x[:P]
            for (o, n) in pairs:
                sel = (po == o) & (pn == n)
                tot = f[sel].sum()
                out["rtt_mean_ms"][o, n, j] = float((f[sel] * pr[sel]).sum() / tot) if tot > 0 else pr[sel].min()
        else:  # not expected: fall back to the middle of the range
            out["rtt_mean_ms"][:, :, j] = 0.5 * (out["rtt_max_ms"][:, :, j] + out["rtt_min_ms"][:, :, j])
    res_ds = xr.Dataset({k: (("origin", "node", "workload"), v, {"unit": "ms"}) for k, v in out.items()},
                        coords={"origin": nodes, "node": nodes, "workload": wls})
    return res_ds
