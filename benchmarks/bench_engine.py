"""Benchmark of the persistent engine against HiGHS alone on the same LP (not a test).

Prints, in one run:

* first solve (``tokenflow.solve`` builds the market from scratch: best of 3, imports
  excluded) vs HiGHS alone on the exported MPS of the final LP (``run`` only, cold);
* re-solve after each kind of change on a live ``Market`` vs HiGHS's own ``run`` inside
  that re-solve (warm, same instance) and vs HiGHS cold on the changed LP;
* a 40-point demand sweep (``Market.solve`` per point, and ``analysis.demand_sweep``) against
  HiGHS's last run inside each re-solve, every run of it (one per column-generation round),
  and HiGHS alone re-solving each point's final LP warm from the previous point's basis;
* the robustness Monte Carlo (``tokenflow.sweep``, ``evaluate="claims"``, 2 workers) vs
  the HiGHS time of its LPs (cold solves of the same LPs, divided over the workers);
* optionally (``--scale``) the 200-node path LP (peak memory) and the 1,000-node arc LP.

Run:  python benchmarks/bench_engine.py [--draws 500] [--workers 2] [--scale]
      python benchmarks/bench_engine.py --breakdown 200   (where a warm re-solve's time goes)
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bench_scale import in_process as run  # each case in a fresh process


def load() -> str:
    """The machine's 1-min load average, printed next to each figure."""
    import os

    return f"[load {os.getloadavg()[0]:.1f}]"


def cold_highs(path: Path) -> float:
    """HiGHS alone on an MPS file: best of 3 ``run`` calls on fresh instances (read excluded)."""
    import highspy

    best = float("inf")
    for _ in range(3):
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.readModel(str(path))
        t0 = time.perf_counter()
        h.run()
        best = min(best, time.perf_counter() - t0)
    return best


def first_solve(case: str, scale: float, q) -> None:
    import tokenflow as tf

    s = tf.load_scenario(case)
    tf.solve(tf.load_scenario("us5"), demand_scale=1.0)  # imports and one-time set-up, not timed
    t = float("inf")
    for _ in range(3):  # every tokenflow.solve builds its market from scratch
        t0 = time.perf_counter()
        r = tf.solve(s, demand_scale=scale)
        t = min(t, time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        p = tf.export_lp(s, Path(tmp) / "m.mps", demand_scale=scale)
        hi = cold_highs(p)
    q.put((t, hi, r.dataset.attrs["cg_rounds"]))


def _quiet_write(m, path: Path) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        m.linopy_model().to_file(path, progress=False)


def changes_for(s) -> dict:
    n0, n1 = s.node_ids[0], s.node_ids[1]
    w = s.workload_ids[0]
    link = list(s.links.index)[0]
    return {
        "demand scale": [{"demand_scale": x} for x in (30.0, 31.0, 32.0)],
        "demand per node": [{"demand": {n0: {w: float(s.demand.sel(node=n0, workload=w)) * f}}}
                            for f in (0.8, 1.1, 1.3)],
        "electricity price": [{"electricity_usd_per_kwh": {n1: float(s.nodes.loc[n1, "electricity_usd_per_kwh"]) * f}}
                              for f in (0.9, 1.1, 1.2)],
        "compute capacity": [{"capacity_mw": {n0: float(s.nodes.loc[n0, "capacity_mw"]) * f}} for f in (0.9, 1.1, 1.0)],
        "link bandwidth": [{"link_bandwidth_gbps": {link: float(s.link_bandwidth_gbps[link]) * f}}
                           for f in (0.8, 1.2, 1.0)],
        "transfer cost": [{"transfer_cost_usd_per_gb": x} for x in (0.003, 0.004, 0.002)],
        "latency limit": [{"latency_limits_ms": {"chat": x}} for x in (15.0, 30.0, 100.0)],
    }


def resolves(case: str, q) -> None:
    import tokenflow as tf

    s = tf.load_scenario(case)
    m = tf.Market(s)
    m.solve(demand_scale=30.0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, seq in changes_for(s).items():
            ts, hs, cold = [], [], []
            for ch in seq:
                t0 = time.perf_counter()
                m.solve(**ch)
                ts.append(time.perf_counter() - t0)
                hs.append(m._main.run_seconds)
            p = Path(tmp) / "m.mps"
            _quiet_write(m, p)
            cold.append(cold_highs(p))
            rows.append((kind, statistics.median(ts), statistics.median(hs), cold[0]))
        # 40-point demand sweep on one market
        m2 = tf.Market(s)
        m2.solve(demand_scale=1.0)
        t_pts, h_pts, h_all, h_alone = [], [], [], []
        s_star = m2.scale_limit().max_scale
        # HiGHS alone on the same LPs: a second live HiGHS model that is given each point's final
        # LP (every column the point needs, known up front) by the same in-place changes (row
        # bounds, new columns) and re-solves it warm from the previous point's basis
        from tokenflow.lp.solver import LiveLP

        ref = LiveLP()
        ref.sync(m2._main.arr)
        ref.run()
        for x in [s_star * (0.02 + 0.96 * i / 39) for i in range(40)]:
            before = m2._main.total_run_seconds
            t0 = time.perf_counter()
            m2.solve(demand_scale=x)
            t_pts.append(time.perf_counter() - t0)
            h_pts.append(m2._main.run_seconds)
            h_all.append(m2._main.total_run_seconds - before)
            ref.sync(m2._main.arr)
            assert ref.run() == "optimal"
            h_alone.append(ref.run_seconds)
            o1, o2 = ref.solution()[2], m2._main.solution()[2]
            assert abs(o1 - o2) <= 1e-9 * max(1.0, abs(o2)), (o1, o2)  # the same LP
        p = Path(tmp) / "m.mps"
        _quiet_write(m2, p)
        rows.append(("40-pt sweep, per point", statistics.mean(t_pts), statistics.mean(h_pts), cold_highs(p)))
        # a point where column generation adds routes runs HiGHS once per round: against all its runs
        rows.append(("  same, vs every HiGHS run", statistics.mean(t_pts), statistics.mean(h_all), None))
        rows.append(("  same, vs HiGHS alone warm", statistics.mean(t_pts), statistics.mean(h_alone), None))
        from tokenflow.studies.analysis import demand_sweep

        t0 = time.perf_counter()
        demand_sweep(s, [s_star * (0.02 + 0.96 * i / 39) for i in range(40)])
        rows.append(("demand_sweep(), per point", (time.perf_counter() - t0) / 40, statistics.mean(h_pts), None))
    q.put(rows)


def breakdown(case: str, n: int, q) -> None:
    """Where a warm demand-scale re-solve's time goes: cProfile over ``n`` re-solves of one live
    market; per re-solve, HiGHS's own ``run`` against tokenflow's fixed Python work by function."""
    import cProfile
    import io
    import pstats

    import tokenflow as tf

    s = tf.load_scenario(case)
    m = tf.Market(s)
    s_star = m.scale_limit().max_scale
    xs = [s_star * (0.3 + 0.6 * i / (n - 1)) for i in range(n)]
    m.solve(demand_scale=xs[0])
    t0, hs = time.perf_counter(), 0.0
    for x in xs:  # unprofiled first: the figure to compare
        m.solve(demand_scale=x)
        hs += m._main.run_seconds
    wall = time.perf_counter() - t0
    prof = cProfile.Profile()
    prof.enable()
    for x in xs:
        m.solve(demand_scale=x)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(r"tokenflow|highspy", 18)
    q.put((wall / n, hs / n, buf.getvalue()))


def monte_carlo(draws: int, workers: int, q) -> None:
    import tokenflow as tf

    s5 = tf.load_scenario("us5")
    prov = s5.provenance_table()
    ranged = prov[prov["range"] != ""]
    ranges = {}
    for item, rng in zip(ranged["item"], ranged["range"]):
        parts = item.split(".")
        key = {"parameters": "param.", "workloads": "workload."}[parts[0]] + ".".join(parts[1:])
        lo, hi = (float(x) for x in rng.split(" - "))
        ranges[key] = (lo, hi)
    t0 = time.perf_counter()
    mc = tf.sweep(s5, ranges=ranges, n_samples=draws, seed=0, evaluate="claims", n_workers=workers, progress=False)
    t = time.perf_counter() - t0
    ok = int((mc["status"] == "ok").sum())
    # HiGHS alone: the four LPs of one draw (3 us5 solves, the us20 max-scale LP), cold, at the base point
    with tempfile.TemporaryDirectory() as tmp:
        hs = 0.0
        for kw in ({}, {"transfer_aware": False}, {"latency_limits_ms": {"chat": 15.0}}):
            p = tf.export_lp(s5, Path(tmp) / "m.mps", demand_scale=35.0, **kw)
            hs += cold_highs(p)
        m = tf.Market(tf.load_scenario("us20"))
        m.scale_limit()
        hs += m._smax.cold_seconds()
    q.put((t, ok, draws * hs / workers))


def scale_case(kind: str, q) -> None:
    import tokenflow as tf

    if kind == "path200":
        s = tf.synthetic_network(200, seed=0)
        formulation = "path"
    else:
        s = tf.synthetic_network(1000, seed=0)
        formulation = "arc"
    t0 = time.perf_counter()
    m = tf.Market(s, formulation=formulation)
    r = m.solve(demand_scale=35.0)
    t = time.perf_counter() - t0
    q.put((t, r.dataset.attrs["n_variables"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           m._main.cold_seconds()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", action="store_true", help="also the 200-node path and 1,000-node arc LPs")
    ap.add_argument("--draws-only", action="store_true", help="only the Monte Carlo")
    ap.add_argument("--no-mc", action="store_true", help="skip the Monte Carlo")
    ap.add_argument("--breakdown", type=int, default=0, metavar="N",
                    help="only: profile N warm demand-scale re-solves on us5 and us20 (fixed Python cost)")
    args = ap.parse_args()
    if args.breakdown:
        import os

        for case in ("us5", "us20"):
            per, hs, table = run(breakdown, case, args.breakdown)
            print(f"{case}: warm demand-scale re-solve {1000 * per:.3f} ms, HiGHS run {1000 * hs:.3f} ms "
                  f"({per / hs:.1f}x; fixed Python cost {1000 * (per - hs):.3f} ms per re-solve) "
                  f"[load {os.getloadavg()[0]:.1f}]")
            print(table)
        return

    print(f"{'what':<34} {'tokenflow s':>12} {'HiGHS warm s':>13} {'HiGHS cold s':>13} "
          f"{'x warm':>7} {'x cold':>7}")
    print("-" * 92)
    for case in ("us5", "us20") if not args.draws_only else ():
        t, hi, rounds = run(first_solve, case, 35.0)
        print(f"{case + ': first solve (35x)':<34} {t:>12.4f} {'':>13} {hi:>13.4f} {'':>7} {t / hi:>7.1f}"
              f"   ({rounds} CG rounds) {load()}", flush=True)
    for case in ("us5", "us20") if not args.draws_only else ():
        for kind, t, warm, cold in run(resolves, case):
            c = f"{cold:>13.4f}" if cold else f"{'':>13}"
            xc = f"{t / cold:>7.1f}" if cold else f"{'':>7}"
            print(f"{case + ': ' + kind:<34} {t:>12.5f} {warm:>13.5f} {c} {t / warm:>7.1f} {xc}   {load()}",
                  flush=True)
    if not args.no_mc:
        t, ok, hs = run(monte_carlo, args.draws, args.workers)
        label = f"Monte Carlo {args.draws} draws, {args.workers} workers"
        print(f"{label:<34} {t:>12.2f} {'':>13} {hs:>13.2f} "
              f"{'':>7} {t / hs:>7.1f}   ({ok} ok) {load()}", flush=True)
    if args.scale:
        for kind in ("path200", "arc1000"):
            t, nvar, peak, cold = run(scale_case, kind)
            print(f"{kind + ' (35x)':<34} {t:>12.2f} {'':>13} {cold:>13.2f} {'':>7} {t / cold:>7.1f}"
                  f"   ({nvar:,} columns, peak {peak:,.0f} MiB)", flush=True)
    print("\nx warm: tokenflow time / HiGHS's own run time inside the same re-solve (warm basis).\n"
          "x cold: tokenflow time / HiGHS alone solving the same LP from scratch (MPS, read excluded).\n"
          "Monte Carlo HiGHS column: draws x (cold time of the 4 LPs of a draw at the base point) / workers.")


if __name__ == "__main__":
    main()
