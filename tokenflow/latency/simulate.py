"""Discrete-event check of the analytic layer: a SimPy replay of a cleared market at reduced scale.

Each (node, workload) pool the market uses becomes a few replicas (``replicas``, instead of
thousands) at the pool's utilisation.  Requests arrive from each origin in proportion to the
LP's flows into the node, as renewal streams with gamma inter-arrival times whose coefficient
of variation is the trace's; each carries its route's round-trip time.  Replicas serve with
continuous batching, step by step: a step with ``n`` occupied slots takes ``t(n) = a + c*n``;
an admitted request first holds its slot for its prefill time (prompt tokens from the trace),
then advances one generated token per step; its first token is out at the end of its first
decode step, its slot is freed after its last.  Dispatch is ``"pooled"`` (one queue, any free
slot: a least-loaded router) or ``"random"`` (a queue per replica).

Measured: time to first token (or completion for images) including the RTT, waiting time,
and served throughput (tokens generated per second, counted step by step) relative to the
offered load, after a warm-up.  Seeded; a few thousand
requests per pool run in well under a second.

Size limits (checked before simulating): at most
:data:`~tokenflow.core.validate.MAX_SIM_REQUESTS` requests (2,000,000) and
:data:`~tokenflow.core.validate.MAX_SIM_REPLICAS` replicas (4,096) per pool, and at most
:data:`~tokenflow.core.validate.MAX_SIM_STEPS` generation steps (5,000,000: requests x mean
generated tokens / the analytic mean batch), whether asked for or implied by the rule that a
run lasts three long requests.  A step costs about 20-30 us of CPU (measured: 20,000 chat
requests on 2 replicas at rho = 0.5, 0.33 M steps, 6 s; on 64 replicas at rho = 0.1,
2.3 M steps, 65 s), so the largest simulation allowed runs for about two minutes.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy
import xarray as xr

from ..core import validate as _v
from ..scenarios.traces import trace_stats
from .market_latency import pool_utilisation, route_rtts
from .profiles import ServiceProfile, serving_profiles
from .queueing import replica_latency


def _arrivals(rng: np.random.Generator, rate: float, cv: float, n: int) -> np.ndarray:
    """``n`` arrival times of a renewal stream with gamma inter-arrivals (mean 1/rate, CV ``cv``),
    started in equilibrium-ish by a random phase."""
    if cv <= 0:
        gaps = np.full(n, 1.0 / rate)
    else:
        k = 1.0 / cv ** 2
        gaps = rng.gamma(k, 1.0 / (k * rate), n)
    return np.cumsum(gaps) - gaps[0] * rng.random()


def simulate_pool(p: ServiceProfile, rho: float, *, replicas: int = 2, n_requests: int = 3000,
                  rtt_ms: np.ndarray | list[float] = (0.0,), weights: np.ndarray | list[float] | None = None,
                  arrival_cv: float | None = None, dispatch: str = "pooled", seed: int = 0,
                  warmup: float = 0.1) -> dict[str, float]:
    """Simulate one pool of ``replicas`` replicas of profile ``p`` at utilisation ``rho`` (in
    [1e-6, 1.5)), for
    ``n_requests`` requests or three times the service of a long request, whichever is longer.

    Arrivals: one stream per route (``rtt_ms``, share ``weights``), each with CV ``arrival_cv``
    (default: the profile's trace; 1 = Poisson).  Returns milliseconds: ``mean_ms``,
    ``p50_ms``, ``p99_ms`` of the latency (RTT + wait + prefill + first step, or completion),
    ``wait_mean_ms``, ``served_ratio`` (tokens generated / tokens offered in the measured
    window) and ``n`` measured requests."""
    fn = "simulate_pool"
    _v.profile(p, "p", fn)
    rho = _v.number(rho, "rho (utilisation)", fn, lo=0.0, hi=1.5, lo_open=True, hi_open=True)
    if rho < 1e-6:  # arrivals so rare that the horizon overflows: nothing to measure
        raise _v.ScenarioError(f"simulate_pool: rho (utilisation): must be at least 1e-06, got {rho!r}")
    replicas = _v.integer(replicas, "replicas", fn, lo=1, hi=_v.MAX_SIM_REPLICAS)
    n_requests = _v.integer(n_requests, "n_requests", fn, lo=1, hi=_v.MAX_SIM_REQUESTS)
    _v.choice(dispatch, "dispatch", fn, ("pooled", "random"))
    seed = _v.integer(seed, "seed", fn, lo=0)
    warmup = _v.number(warmup, "warmup", fn, lo=0.0, hi=1.0, hi_open=True)
    rtts = _v.vector(rtt_ms, "rtt_ms", fn, lo=0.0, hi=1e9) / 1e3  # (1e9 ms: eleven days)
    w = np.ones(len(rtts)) if weights is None else _v.vector(weights, "weights", fn, lo=0.0, length=len(rtts),
                                                              positive_sum=True)
    if arrival_cv is not None:
        arrival_cv = _v.number(arrival_cv, "arrival_cv", fn, lo=0.0)
    rng = np.random.default_rng(seed)
    w = w / w.sum()
    cv = (trace_stats(p.trace).interarrival_cv if p.trace else 1.0) if arrival_cv is None else arrival_cv
    lam = rho * p.saturation_rate() * replicas
    # run at least three times the service of a long request (99.9th percentile), so that
    # long requests do not bias the measured throughput
    if p.trace is not None:
        t = trace_stats(p.trace)
        long_s = (float(t.prompt_quantile(0.999)) * p.prefill_s_per_token
                  + float(np.interp(0.999, t.generated_levels, t.generated_quantiles)) * p.step_time(p.max_batch))
    else:
        long_s = float(p.fixed_steps) * p.step_time(p.max_batch)
    need = lam * 3.0 * long_s
    if not need <= _v.MAX_SIM_REQUESTS:
        raise _v.ScenarioError(f"simulate_pool: three long requests at this load take {need:.3g} requests, "
                               f"more than the limit of {_v.MAX_SIM_REQUESTS:,} per pool (fewer replicas)")
    n_requests = max(int(n_requests), int(math.ceil(need)))
    g_mean = p.steps_moments()[0]
    batch = max(1.0, float(replica_latency(p, min(rho, 1.0), 1.0, 0.5, 1)["batch"]))
    steps_est = n_requests * g_mean / batch
    if steps_est > _v.MAX_SIM_STEPS:
        raise _v.ScenarioError(f"simulate_pool: {n_requests:,} requests of about {g_mean:.0f} steps at a mean batch "
                               f"of {batch:.1f} take about {steps_est:.3g} generation steps, more than the limit of "
                               f"{_v.MAX_SIM_STEPS:,} (about two minutes); ask for fewer n_requests, or fewer "
                               "replicas (a run lasts at least three long requests)")
    times, route = [], []
    for i, wi in enumerate(w):
        if wi <= 0:  # a route without flow sends no requests
            continue
        m = max(1, int(round(n_requests * wi)))
        t = _arrivals(rng, lam * wi, cv, m)
        times.append(t)
        route.append(np.full(m, i))
    times, route = np.concatenate(times), np.concatenate(route)
    order = np.argsort(times)
    times, route = times[order], route[order]
    horizon = float(times[-1])
    times = times[times <= horizon]
    n = len(times)
    if p.trace is not None:
        steps = trace_stats(p.trace).sample(rng, n, "generated")
        prefill = trace_stats(p.trace).sample(rng, n, "prompt") * p.prefill_s_per_token
    else:
        steps, prefill = np.full(n, float(p.fixed_steps)), np.zeros(n)
    first_ms = np.full(n, np.nan)
    done_t = np.full(n, np.nan)
    admit_t = np.full(n, np.nan)

    t0 = warmup * horizon
    generated = [0.0]  # tokens generated (sequence-steps) in the measured window

    env = simpy.Environment()
    B = p.max_batch
    queues = [deque()] if dispatch == "pooled" else [deque() for _ in range(replicas)]
    wake = [env.event() for _ in range(replicas)]

    def replica(r: int):
        q = queues[0] if dispatch == "pooled" else queues[r]
        req = np.full(B, -1, dtype=np.int64)
        rem = np.zeros(B)
        ready = np.zeros(B)
        nb = 0
        while True:
            if q and nb < B:
                for slot in np.flatnonzero(req < 0):
                    if not q:
                        break
                    j = q.popleft()
                    req[slot], rem[slot], ready[slot] = j, steps[j], env.now + prefill[j]
                    admit_t[j] = env.now
                    nb += 1
            if nb == 0:
                wake[r] = env.event()
                yield wake[r]
                continue
            start = env.now
            yield env.timeout(p.step_time(nb))
            dec = (req >= 0) & (ready <= start)
            ids = req[dec]
            if env.now >= t0:
                generated[0] += len(ids)
            if len(ids):
                new = np.isnan(first_ms[ids])
                first_ms[ids[new]] = env.now
                rem[dec] -= 1
                fin = dec & (rem <= 0)
                if fin.any():
                    done_t[req[fin]] = env.now
                    req[fin] = -1
                    nb -= int(fin.sum())

    def source():
        last = 0.0
        for j in range(n):
            yield env.timeout(times[j] - last)
            last = times[j]
            r = 0 if dispatch == "pooled" else int(rng.integers(replicas))
            queues[r if dispatch == "random" else 0].append(j)
            targets = range(replicas) if dispatch == "pooled" else (r,)
            for k in targets:
                if not wake[k].triggered:
                    wake[k].succeed()
                    break

    for r in range(replicas):
        env.process(replica(r))
    env.process(source())
    env.run(until=horizon)

    meas = times >= t0
    end = done_t if p.metric == "completion" else first_ms
    lat = (end - times + rtts[route])[meas]
    # requests still waiting or in service at the horizon count as at least (horizon - arrival)
    lat = np.where(np.isnan(lat), (horizon - times + rtts[route])[meas], lat)
    wait = np.where(np.isnan(admit_t), horizon, admit_t)[meas] - times[meas]
    offered = lam * (horizon - t0) * float(np.mean(steps))
    served = generated[0]
    return {"mean_ms": float(lat.mean() * 1e3), "p50_ms": float(np.quantile(lat, 0.5) * 1e3),
            "p99_ms": float(np.quantile(lat, 0.99) * 1e3), "wait_mean_ms": float(wait.mean() * 1e3),
            "served_ratio": float(served / offered), "n": int(meas.sum())}


def simulate_market(result, s, *, profiles: dict[str, ServiceProfile] | None = None, replicas: int = 2,
                    n_requests: int = 2000, max_steps: int = 60000, utilisation: pd.DataFrame | None = None,
                    dispatch: str = "pooled", seed: int = 0, q: float = 0.99) -> xr.Dataset:
    """Replay the cleared market ``result`` of ``s``: every (node, workload) pool with a latency
    profile and flow, ``replicas`` replicas each, at the pool's own utilisation: the node's
    compute utilisation times the profile's
    :meth:`~tokenflow.latency.profiles.ServiceProfile.lp_to_pool_utilisation` (or ``utilisation``,
    node x workload, already in the pool's own unit), arrivals from the origins by the LP's split, each
    origin's requests with the round trip of its slowest route in use
    (:func:`~tokenflow.latency.market_latency.route_rtts`, ``rtt_max_ms``: the result holds flows per
    origin and per link, not per path, so the replay takes the conservative route).
    Returns simulated and analytic (same reduced pool) latency per node and workload
    (ms), and the served ratio.  ``max_steps`` caps the generation steps simulated per pool.
    ``profiles``: default :func:`~tokenflow.latency.profiles.serving_profiles` (measured step times;
    :func:`~tokenflow.latency.profiles.default_profiles` for the paper's identity)."""
    fn = "simulate_market"
    _v.result_of(result, s, fn)
    replicas = _v.integer(replicas, "replicas", fn, lo=1, hi=_v.MAX_SIM_REPLICAS)
    n_requests = _v.integer(n_requests, "n_requests", fn, lo=1, hi=_v.MAX_SIM_REQUESTS)
    max_steps = _v.integer(max_steps, "max_steps", fn, lo=1)
    _v.choice(dispatch, "dispatch", fn, ("pooled", "random"))
    seed = _v.integer(seed, "seed", fn, lo=0)
    q = _v.quantile(q, "q (quantile)", fn)
    ds = result.dataset
    profiles = serving_profiles(s) if profiles is None else _v.profiles(profiles, "profiles", fn)
    nodes, wls = list(ds["node"].values), list(ds["workload"].values)
    util = pool_utilisation(result, utilisation)
    rtts = route_rtts(result, s, mean=False)["rtt_max_ms"]
    tr = ds["transfers"]
    keys = ["sim_mean_ms", "sim_p99_ms", "sim_p50_ms", "served_ratio", "ana_mean_ms", "ana_p99_ms", "rho", "n"]
    res = {k: np.full((len(nodes), len(wls)), np.nan) for k in keys}
    for j, w in enumerate(wls):
        p = profiles.get(w)
        if p is None:
            continue
        steps_per_req = p.steps_moments()[0]
        for i, n in enumerate(nodes):
            flows = tr.sel(node=n, workload=w).to_pandas()
            flows = flows[flows > 1e-9]
            rho = float(util.loc[n, w]) * (p.lp_to_pool_utilisation() if utilisation is None else 1.0)
            if flows.empty or not rho > 0:
                continue
            rho = min(rho, 1.49)
            rtt = rtts.sel(node=n, workload=w).to_pandas().loc[flows.index].values
            nreq = int(min(n_requests, max_steps * p.max_batch * replicas / steps_per_req / 4 + 200))
            sim = simulate_pool(p, rho, replicas=replicas, n_requests=nreq, rtt_ms=rtt,
                                weights=flows.values, dispatch=dispatch, seed=seed + 7919 * i + 104729 * j)
            ca2 = (trace_stats(p.trace).interarrival_cv ** 2) if p.trace else 1.0
            ana = replica_latency(p, min(rho, 1.0), ca2 if dispatch == "pooled" else 1 + (ca2 - 1) / replicas, q,
                                  replicas if dispatch == "pooled" else 1)
            mean_rtt = float(np.average(rtt, weights=flows.values))
            res["sim_mean_ms"][i, j], res["sim_p99_ms"][i, j] = sim["mean_ms"], sim["p99_ms"]
            res["sim_p50_ms"][i, j], res["served_ratio"][i, j] = sim["p50_ms"], sim["served_ratio"]
            res["n"][i, j] = sim["n"]
            res["ana_mean_ms"][i, j] = ana["mean_ms"] + mean_rtt
            res["ana_p99_ms"][i, j] = ana["p_ms"] + float(rtt.max())
            res["rho"][i, j] = rho
    out = xr.Dataset({k: (("node", "workload"), v) for k, v in res.items()},
                     coords={"node": nodes, "workload": wls},
                     attrs={"replicas": replicas, "dispatch": dispatch, "seed": seed, "quantile": q})
    for k in keys:
        out[k].attrs["unit"] = "ms" if k.endswith("_ms") else "1"
    return out


# ------------------------------------------------------------ which layer is validated where
def pool_size_check(profiles: dict[str, ServiceProfile], rhos, pool_sizes, *, n_requests: int = 800,
                    seed: int = 0) -> pd.DataFrame:
    """Simulated against analytic p99 (ms, processing only: no round trip) of pooled replicas
    with the trace's burstiness, at every pool size in ``pool_sizes`` (replicas) and pool
    utilisation in ``rhos`` (the pool's own, 0-1), for every profile with a trace.

    One row per (workload, replicas, rho): ``sim_p99_ms``, ``ana_p99_ms`` (Allen-Cunneen with
    the trace's arrival SCV, :func:`~tokenflow.latency.queueing.replica_latency`), ``ratio``
    (simulated / analytic), ``served_ratio`` and ``requests``.  The run for the ``i``-th
    utilisation is seeded ``seed + 31 i`` whatever the pool size.  A run lasts at least three
    long requests (:func:`simulate_pool`), so the requests simulated grow with the pool."""
    fn = "pool_size_check"
    profiles = _v.profiles(profiles, "profiles", fn)
    rhos = _v.vector(rhos, "rhos", fn, lo=1e-6, hi=1.49)
    if isinstance(pool_sizes, (str, bytes)) or not hasattr(pool_sizes, "__iter__"):
        raise _v.ScenarioError(f"{fn}: pool_sizes must be a sequence of replica counts, got {pool_sizes!r:.80}")
    sizes = [_v.integer(k, "pool_sizes", fn, lo=1, hi=_v.MAX_SIM_REPLICAS) for k in pool_sizes]
    if not sizes:
        raise _v.ScenarioError(f"{fn}: pool_sizes must name at least one pool size")
    seed = _v.integer(seed, "seed", fn, lo=0)
    rows = []
    for w, p in profiles.items():
        if p.trace is None:
            continue
        ca2 = trace_stats(p.trace).interarrival_cv ** 2
        for k in sizes:
            for i, r in enumerate(rhos):
                sim = simulate_pool(p, float(r), replicas=k, n_requests=n_requests, seed=seed + 31 * i)
                ana = replica_latency(p, min(float(r), 1.0), ca2, 0.99, k)
                rows.append({"workload": w, "replicas": k, "rho": float(r), "sim_p99_ms": sim["p99_ms"],
                             "ana_p99_ms": ana["p_ms"], "ratio": sim["p99_ms"] / ana["p_ms"],
                             "served_ratio": sim["served_ratio"], "requests": sim["n"]})
    return pd.DataFrame(rows)


@dataclass
class LayerCheck:
    """Outcome of :func:`layer_check` for one workload.

    ``validated``: the analytic layer agrees with the simulation within ``tol`` (relative, on
    the p99) at every utilisation up to ``rho_moderate`` at the largest pool simulated
    (``largest_pool`` replicas).  ``cap``: where it is not validated, the largest pool
    utilisation (the pool's own) at which the *simulated* p99 at the largest pool stays within
    ``budget_ms`` (bisection, ``cap_points`` the runs; None when validated);
    ``analytic_rho_star``: the analytic layer's limit for the same pool and budget;
    ``ratio_by_pool``: the largest simulated/analytic p99 ratio up to ``rho_moderate`` per
    pool size."""

    workload: str
    validated: bool
    tol: float
    rho_moderate: float
    largest_pool: int
    budget_ms: float
    cap: float | None
    analytic_rho_star: float
    ratio_by_pool: pd.Series
    cap_points: pd.DataFrame


def layer_check(p: ServiceProfile, table: pd.DataFrame, budget_ms: float, *, tol: float = 0.25,
                rho_moderate: float = 0.85, steps: int = 3, n_requests: int = 800, seed: int = 0) -> LayerCheck:
    """Which layer the latency-consistent clearing may use for profile ``p``, from the runs of
    :func:`pool_size_check` (``table``) and, where the analytic layer is not validated, a
    bisection of ``steps`` further runs at the largest pool size for the simulation's own
    utilisation limit (p99 within ``budget_ms``, ms of processing latency).

    The cap is read at the largest pool the simulation can afford, far below a node's
    thousands of replicas.  Where the runs show the simulated latency at a given utilisation
    falling as the pool grows, a node-sized pool can be loaded at least as far, so the cap is
    the reading least favourable to the paper, and the analytic layer the most favourable;
    which holds at node size the simulation cannot say.  Give the cap to the clearing with
    ``dataclasses.replace(p, max_pool_utilisation=check.cap)``."""
    fn = "layer_check"
    _v.profile(p, "p", fn)
    budget_ms = _v.number(budget_ms, "budget_ms", fn, lo=0.0, lo_open=True, unit="ms")
    tol = _v.number(tol, "tol", fn, lo=0.0, lo_open=True)
    rho_moderate = _v.number(rho_moderate, "rho_moderate", fn, lo=0.0, hi=1.0, lo_open=True)
    steps = _v.integer(steps, "steps", fn, lo=0, hi=20)
    need = {"workload", "replicas", "rho", "sim_p99_ms", "ana_p99_ms", "ratio"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise _v.ScenarioError(f"{fn}: table must be pool_size_check's DataFrame (columns {sorted(need)})")
    t = table[table["workload"] == p.workload]
    if t.empty:
        raise _v.ScenarioError(f"{fn}: table has no runs of workload {p.workload!r}")
    mod = t[t["rho"] <= rho_moderate]
    if mod.empty:
        raise _v.ScenarioError(f"{fn}: table has no run of {p.workload!r} at utilisation <= {rho_moderate:g}")
    big = int(t["replicas"].max())
    ratio_by_pool = mod.groupby("replicas")["ratio"].max()
    dev = (mod[mod["replicas"] == big]["ratio"] - 1.0).abs()
    validated = bool((dev <= tol).all())
    ca2 = trace_stats(p.trace).interarrival_cv ** 2 if p.trace else 1.0
    from .queueing import max_utilisation

    ana_star = max_utilisation(p, budget_ms, ca2, 0.99, big)
    cap, pts = None, pd.DataFrame(columns=["rho", "sim_p99_ms"])
    if not validated:
        at = t[t["replicas"] == big].sort_values("rho")
        ok = at[at["sim_p99_ms"] <= budget_ms]
        lo = float(ok["rho"].max()) if len(ok) else 0.0
        above = at[(at["rho"] > lo) & (at["sim_p99_ms"] > budget_ms)]
        hi = float(above["rho"].min()) if len(above) else 1.0
        rows = []
        for i in range(steps):
            mid = 0.5 * (lo + hi)
            sim = simulate_pool(p, mid, replicas=big, n_requests=n_requests, seed=seed + 7 * (i + 1))
            rows.append({"rho": mid, "sim_p99_ms": sim["p99_ms"]})
            if sim["p99_ms"] <= budget_ms:
                lo = mid
            else:
                hi = mid
        cap, pts = lo, pd.DataFrame(rows)
    return LayerCheck(p.workload, validated, tol, rho_moderate, big, budget_ms, cap, ana_star, ratio_by_pool, pts)
