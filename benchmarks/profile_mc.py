"""Profile of the robustness chapter's Monte Carlo (not a test): prints where a draw's time
goes and the draws per second, with the machine load (1-min load average) next to each figure.

The draws are built exactly as in notebooks/robustness.ipynb (every ranged input of us5
uniform over its sourced range, every modelling choice uniform over its values); one batch
is evaluated in this process with the sweep's own claims evaluator under cProfile, then
(``--sweep``) the whole Monte Carlo is timed through :func:`tokenflow.sweep` on N workers.
``--baseline`` also times the batch without the choice-set cache and without
:meth:`Scenario.replace`'s number-only path (each then rebuilds and re-checks the whole scenario).

Run:  python benchmarks/profile_mc.py [--draws 100] [--top 25] [--baseline] [--sweep 2000 --workers 2]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

import numpy as np


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def mc_points(n_draws: int, seed: int = 0) -> list[dict]:
    """The robustness notebook's Monte Carlo points."""
    import tokenflow as tf

    s5 = tf.load_scenario("us5")
    prov = s5.provenance_table()
    ranged = prov[prov["range"] != ""].copy()
    ranged["low"] = ranged["range"].str.split(" - ").str[0].astype(float)
    ranged["high"] = ranged["range"].str.split(" - ").str[1].astype(float)

    def sweep_key(item: str) -> str:
        parts = item.split(".")
        return {"parameters": "param.", "workloads": "workload."}[parts[0]] + ".".join(parts[1:])

    ranged["input"] = ranged["item"].map(sweep_key)
    inputs = ranged.set_index("input")[["low", "high"]]
    rng = np.random.default_rng(seed)
    draws = {k: rng.uniform(r["low"], r["high"], n_draws) for k, r in inputs.iterrows()}
    draws.update({f"choice.{n}": rng.choice(np.array(v), n_draws) for n, v in tf.CHOICES.items()})
    return [{k: (str(v[j]) if k.startswith("choice.") else float(v[j])) for k, v in draws.items()}
            for j in range(n_draws)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=100, help="draws in the profiled batch")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--sweep", type=int, default=0, help="also time this many draws through tokenflow.sweep")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline", action="store_true", help="also time the batch without the choice-set cache")
    args = ap.parse_args()

    import tokenflow as tf
    from tokenflow.studies.sweep_evaluate import _run_points, evaluate_claims

    s5, s20 = tf.load_scenario("us5"), tf.load_scenario("us20")
    pts = mc_points(args.draws)
    # warm the pooled markets and one-time imports (xarray's dask check on the first s.demand)
    _run_points(evaluate_claims, s5, pts[:3], {"s20": s20})
    _ = s5.demand
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    res = _run_points(evaluate_claims, s5, pts, {"s20": s20})
    prof.disable()
    wall = time.perf_counter() - t0
    ok = sum(r["status"] == "ok" for r in res)
    print(f"profiled batch: {args.draws} draws in {wall:.2f} s under cProfile = {args.draws / wall:.1f} draws/s "
          f"on one process ({ok} ok) [{load()}]")
    st = pstats.Stats(prof).sort_stats("cumulative")
    st.print_stats(args.top)
    st.sort_stats("tottime").print_stats(args.top)

    def timed(label: str) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        _run_points(evaluate_claims, s5, pts, {"s20": s20})
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{label}: {wall:.2f} s = {args.draws / wall:.1f} draws/s on one process; CPU time of this "
              f"process {1000 * cpu / args.draws:.1f} ms per draw (what a quiet core would take, about) [{load()}]")

    timed("same batch without the profiler")
    if args.baseline:
        import sys

        sw = sys.modules["tokenflow.studies.sweep_points"]  # (apply_inputs reads _with_choices there)
        cached = sw._with_choices
        sw._with_choices = lambda s, choices: s.with_choices(**choices)  # one validated copy per draw
        try:
            timed("same batch, choice sets not cached (as before issue 20)")
        finally:
            sw._with_choices = cached
        import dataclasses

        from tokenflow.scenarios.scenario import Scenario

        fast = Scenario._replace_numbers
        # Scenario.replace without its number-only path: the constructor resolves and checks all again
        Scenario._replace_numbers = lambda self, params, frames, demand_override, rows: dataclasses.replace(
            self, params=params, **frames, demand_override=demand_override)
        try:
            timed("same batch, replace() without the number-only path (as before issue 20 item 2)")
        finally:
            Scenario._replace_numbers = fast
    if args.sweep:
        pts = mc_points(args.sweep)
        t0 = time.perf_counter()
        mc = tf.sweep(s5, points=pts, evaluate="claims", n_workers=args.workers, progress=False)
        wall = time.perf_counter() - t0
        print(f"Monte Carlo {args.sweep} draws via tokenflow.sweep on {args.workers} workers: {wall:.1f} s "
              f"(incl. starting the worker pool), {args.sweep / wall:.1f} draws/s, "
              f"{int((mc['status'] == 'ok').sum())} ok [{load()}]")


if __name__ == "__main__":
    main()
