"""Service profiles: how each workload is served on a GPU replica.

The LP treats a node as a fixed token capacity.  Here each node's AI capacity becomes GPUs
and the GPUs become model replicas serving with *continuous batching*:

* **GPUs per node** = AI capacity (kW of IT power) / IT power per GPU.  An 8-GPU DGX H100
  draws at most 10.2 kW (GPUs at 700 W TDP are 55 % of it), so 1.275 kW per GPU including
  its share of host, network and fans.
* **Step time** of one generation step with ``b`` sequences in the batch is affine,
  ``t(b) = a + c*b`` (s).  Two sets of profiles give ``a`` and ``c``:

  - :func:`measured_profiles` (**the default of every function of the serving layer**
    (:mod:`tokenflow.latency.market_latency`, :mod:`tokenflow.latency.latency_clearing`,
    :mod:`tokenflow.latency.simulate`) when no ``profiles``
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

Also here: :func:`with_limits` (profiles with other latency limits) and :func:`energy_mix`
(energy per token with prompt processing weighted in).  The queueing mathematics on these
profiles is in :mod:`tokenflow.latency.queueing`, the latency of a cleared market in
:mod:`tokenflow.latency.market_latency`.

Units: seconds inside, milliseconds for latency limits.  Every figure used is in
:data:`HARDWARE`, :func:`default_profiles`, :func:`measured_profiles` or the serving data file
with its source or a declared assumption.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

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
    Every function of :mod:`tokenflow.latency.market_latency`, :mod:`tokenflow.latency.latency_clearing` and
    :mod:`tokenflow.latency.simulate` uses these when ``profiles`` is not given; pass
    ``default_profiles(s)`` for the paper's identity."""
    _v.scenario(s, "s", "serving_profiles")
    return measured_profiles(s)



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
