"""Benchmark of the planning LP (not a test): ``tokenflow.plan`` against ``tokenflow.solve``.

Both timed in the same process after one warm-up call each (imports and the first HiGHS
instance excluded), best of ``--repeat`` runs, at the same demand scale.  Target (issue 18):
plan on us20 within 5x the time of solve on us20.

Run:  python benchmarks/bench_plan.py [--cases us5 us20] [--scales 1 35 45] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time


def best(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    import tokenflow as tf

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["us5", "us20"])
    ap.add_argument("--scales", nargs="+", type=float, default=[1.0, 35.0, 45.0])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print(f"{'case':6} {'scale':>6} {'solve (s)':>10} {'plan (s)':>10} {'ratio':>6} {'added Gbps':>11} "
          f"{'added MW':>9}")
    for case in a.cases:
        s = tf.load_scenario(case)
        for scale in a.scales:
            t_solve = best(lambda s=s, x=scale: tf.solve(s, demand_scale=x), a.repeat)
            t_plan = best(lambda s=s, x=scale: tf.plan(s, demand_scale=x), a.repeat)
            p = tf.plan(s, demand_scale=scale)
            print(f"{case:6} {scale:6g} {t_solve:10.4f} {t_plan:10.4f} {t_plan / t_solve:6.2f} "
                  f"{float(p.dataset['link_added_gbps'].sum()):11.1f} {float(p.dataset['node_added_mw'].sum()):9.2f}")


if __name__ == "__main__":
    main()
