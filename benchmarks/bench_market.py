"""Benchmark of the market LP (not a test): prints LP size, timings and peak memory.

For each case, in a fresh process (so peak memory is the case's own):
  prepare  - Market construction: inputs as arrays, seed columns (tokenflow)
  build    - (0: the engine passes arrays to HiGHS, no linopy build)
  solve    - linopy hand-over + HiGHS solve + solution read-back (``m.solve``)
  highs    - HiGHS alone on the exported MPS file (read excluded)
  peak     - peak resident memory of the process (MiB)

Targets (2-core machine): us20 prepare+build+solve < 1 s; 200 nodes < 60 s and < 4 GiB;
linopy's build + hand-over no more than the HiGHS solve time itself.

Run:  python benchmarks/bench_market.py [--cases us5 us20 50 100 200] [--scale 35]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path


def run_solve(case: str, scale: float, queue) -> None:
    """Exactly what tokenflow.solve does (prepare + column generation), for time and peak memory."""
    import tokenflow as tf

    s = tf.load_scenario(case) if case.startswith("us") else tf.synthetic_network(int(case), seed=0)
    t0 = time.perf_counter()
    r = tf.solve(s, demand_scale=scale)
    queue.put({"total": time.perf_counter() - t0, "rounds": r.dataset.attrs["cg_rounds"],
               "cols": r.dataset.attrs["n_variables"],
               "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run_case(case: str, scale: float, queue) -> None:
    """The engine's phases: Market construction (inputs, seed columns), solve (column
    generation on the live HiGHS instance), and HiGHS alone on the final LP."""
    import highspy

    import tokenflow as tf

    s = tf.load_scenario(case) if case.startswith("us") else tf.synthetic_network(int(case), seed=0)
    t0 = time.perf_counter()
    m = tf.Market(s)
    t1 = time.perf_counter()
    r = m.solve(demand_scale=scale)
    t2 = time.perf_counter()
    t3 = t2
    arr = m._main.arr
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.mps"
        m.linopy_model().to_file(path, progress=False)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.readModel(str(path))
        t4 = time.perf_counter()
        h.run()
        t5 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"case": case, "nodes": len(s.nodes), "vars": arr.n_cols, "cons": arr.n_rows, "nnz": len(arr.data),
               "prepare": t1 - t0, "build": 0.0, "solve": t3 - t1, "highs": t5 - t4,
               "peak_mib": peak, "status": "optimal" if r else "?"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", default=["us5", "us20", "50", "100", "200"])
    ap.add_argument("--scale", type=float, default=35.0)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    header = (f"{'case':>6} {'nodes':>5} {'vars':>9} {'cons':>7} {'nnz':>9} {'prepare s':>9} {'build s':>8} "
              f"{'solve s':>8} {'total s':>8} {'HiGHS s':>8} | {'tf.solve s':>10} {'CG rounds':>9} "
              f"{'columns':>9} {'peak MiB':>9}")
    print(header)
    print("-" * len(header))
    for case in args.cases:
        r = {}
        for target in (run_case, run_solve):
            q = ctx.Queue()
            p = ctx.Process(target=target, args=(case, args.scale, q))
            p.start()
            r[target.__name__] = q.get()
            p.join()
        a, b = r["run_case"], r["run_solve"]
        total = a["prepare"] + a["build"] + a["solve"]
        print(f"{a['case']:>6} {a['nodes']:>5} {a['vars']:>9,} {a['cons']:>7,} {a['nnz']:>9,} {a['prepare']:>9.3f} "
              f"{a['build']:>8.3f} {a['solve']:>8.3f} {total:>8.3f} {a['highs']:>8.3f} | {b['total']:>10.3f} "
              f"{b['rounds']:>9} {b['cols']:>9,} {b['peak_mib']:>9.0f}", flush=True)
    print("\nLeft of |: Market construction (prepare) and its first solve (column generation on the live"
          " HiGHS instance); HiGHS = HiGHS alone on the final LP.\nRight of |: tokenflow.solve end to end,"
          " in its own process.")


if __name__ == "__main__":
    main()
