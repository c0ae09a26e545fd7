"""Batching and queueing at a node: a replica's latency from its utilisation.

A replica of a service profile (:mod:`tokenflow.latency.profiles`: GPUs, batch slots, the
affine step time ``t(b) = a + c*b``) serves requests with continuous batching:

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

Units: seconds inside, milliseconds in every returned table.  The service profiles are in
:mod:`tokenflow.latency.profiles`; the latency of a cleared market (pools, round trips of the
routes in use) is in :mod:`tokenflow.latency.market_latency`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..core import validate as _v
from ..core.errors import TokenflowError
from ..scenarios.traces import trace_stats
from .profiles import ServiceProfile

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
