"""Command line: ``tokenflow scenarios | solve | max-scale | export-lp | claims | calibrate | sweep | reproduce``.

Errors never show a Python traceback: each is one line on stderr, and the exit code
says what happened (also in the README):

==== =====================================================================
0    success
1    claims not reproduced (``tokenflow claims``)
2    bad input: scenario file, sweep spec or command-line argument
3    the market is infeasible at the requested demand scale (s* is printed)
4    solver problem (HiGHS did not return a verified optimum) or the workers
     of a sweep failed to start
5    output or I/O error (folder missing, is a directory, disk full, permission);
     the target file is left as it was
6    sweep finished but some points failed; the file is written with
     ``complete = 0`` and ``n_failed`` in its attributes
70   internal error (a bug: please report it; ``TOKENFLOW_DEBUG=1`` shows the traceback)
130  interrupted (Ctrl-C); 143 terminated (SIGTERM); nothing half-written is left
==== =====================================================================
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from pathlib import Path

from .core.errors import InfeasibleMarketError, OutputError, SolverError, TokenflowError
from .core.io import atomic_write, check_output_path, verify_model_file, verify_netcdf

EXIT_OK, EXIT_CLAIMS, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_SOLVER, EXIT_OUTPUT, EXIT_INCOMPLETE = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 70, 130, 143


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that writes are abandoned cleanly."""


def _number(text: str, *, low: float = 0.0, strict: bool = False, what: str = "value") -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(v) or v < low or (strict and v == low):
        raise argparse.ArgumentTypeError(f"{what} must be a finite number {'>' if strict else '>='} {low:g}, "
                                         f"got {text!r}")
    return v


def _scale(text: str) -> float:
    return _number(text, what="demand scale")


def _count(low: int, what: str):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{what} must be >= {low}, got {text!r}")
        return v
    return parse


def _latency(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise TokenflowError(f"--latency expects WORKLOAD=MS, got {item!r}")
        try:
            out[key.strip()] = _number(val, strict=True, what=f"--latency {key.strip()}")
        except argparse.ArgumentTypeError as exc:
            raise TokenflowError(f"{exc} (ms)") from None
    return out


def cmd_scenarios(args: argparse.Namespace) -> int:
    from .scenarios.scenario import available_scenarios, load_scenario

    for name in available_scenarios():
        s = load_scenario(name)
        print(f"{name:6s} {s.title}: {len(s.nodes)} nodes, {len(s.links)} fibre links, "
              f"workloads {', '.join(s.workload_ids)}")
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from .clearing.market import demand_scale_limit, solve
    from .scenarios.scenario import load_scenario

    if args.out:
        check_output_path(args.out, "result file")
    s = load_scenario(args.scenario)
    lat = _latency(args.latency)
    r = solve(s, transfer_aware=not args.token_equivalent, demand_scale=args.demand_scale,
              latency_limits_ms=lat)
    print(r.summary())
    lim = demand_scale_limit(s, transfer_aware=not args.token_equivalent, latency_limits_ms=lat)
    print(f"largest feasible demand scale s* = {lim.max_scale:z.6g} (binding there: {lim.binding})")
    if args.out:
        print(f"wrote {atomic_write(args.out, r.to_netcdf, what='result file', verify=verify_netcdf)}")
    return 0


def cmd_max_scale(args: argparse.Namespace) -> int:
    from .clearing.market import demand_scale_limit
    from .scenarios.scenario import load_scenario

    lim = demand_scale_limit(load_scenario(args.scenario), transfer_aware=not args.token_equivalent,
                             latency_limits_ms=_latency(args.latency))
    print(f"s* = {lim.max_scale:z.6g}  (aggregate-capacity bound {lim.aggregate_bound:z.6g})")
    print(f"binding: {lim.binding}")
    return 0


def cmd_export_lp(args: argparse.Namespace) -> int:
    from .clearing.market import export_lp
    from .scenarios.scenario import load_scenario

    if Path(args.path).suffix.lower() not in {".mps", ".lp"}:
        raise TokenflowError(f"export-lp: the file name must end in .mps or .lp, got {args.path!r}")
    check_output_path(args.path, "LP file")
    s = load_scenario(args.scenario)
    lat = _latency(args.latency)
    path = atomic_write(args.path, lambda tmp: export_lp(s, tmp, transfer_aware=not args.token_equivalent,
                                                         demand_scale=args.demand_scale, latency_limits_ms=lat),
                        what="LP file", verify=verify_model_file)
    print(f"wrote {path}")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from .scenarios.scenario import load_scenario
    from .studies.claims import a_priori_scenario, scorecard, scorecard_frame

    if getattr(args, "a_priori", False):  # every calibrated or tuned input at its a-priori value
        results = scorecard(a_priori_scenario(load_scenario("us5")), a_priori_scenario(load_scenario("us20")),
                            a_priori=False)
        passed = {r.claim: bool(r.passed) for r in results}
        if args.json:
            print(json.dumps([{**r.row(), "detail": r.detail} for r in results], indent=2, default=str))
        else:
            import pandas as pd

            with pd.option_context("display.max_colwidth", 60, "display.width", 200):
                print(scorecard_frame(results).to_string())
            print(f"hold with every calibrated or tuned input a priori: {sum(passed.values())} of {len(passed)}")
    else:
        from .studies.citable import claims_json, record

        rows = claims_json(record())  # the record: the same rows as the scorecard and results.json
        passed = {r["id"]: r["verdict"] != "not reproduced" for r in rows}
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        else:
            for r in rows:
                print(f"{r['id']}  {r['value']!s:>12} {r['unit']:<34} {r['verdict']:<28} {r['status']}"
                      + (f" on {r['status_on']}" if r["status_on"] else "")
                      + f"; a priori {r['a_priori']} ({r['a_priori_verdict']})")
            print(f"hold at the evaluated point: {sum(passed.values())} of {len(passed)}")
    failed = [c for c, ok in passed.items() if not ok]
    if failed:
        print(f"NOT reproduced: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .scenarios.scenario import load_scenario
    from .studies.calibration import calibrate

    s = load_scenario("us5")
    c = calibrate(s)
    print(f"link_bandwidth_gbps    calibrated {c.link_bandwidth_gbps:.6g}  (scenario file: "
          f"{s.params['link_bandwidth_gbps']:.6g})")
    print(f"other_opex_usd_per_kwh calibrated {c.other_opex_usd_per_kwh:.6g}  (scenario file: "
          f"{s.params['other_opex_usd_per_kwh']:.6g})")
    print(f"at the calibrated point: C2 uplift {c.c2_uplift_pct:.4f} %, C3 rise {c.c3_rise_pct:.4f} %")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .studies.sweep import sweep
    from .studies.sweep_results import summary_table, write_sweep
    from .studies.sweep_spec import load_spec

    spec = load_spec(args.spec)
    if args.max_points is not None:
        spec["max_points"] = args.max_points
    check_output_path(args.out, "sweep results")
    if args.workers is not None:  # at most 4 per core (tokenflow.studies.sweep_pool.max_workers): exit 2
        from .studies.sweep_pool import check_workers

        check_workers(args.workers, "--workers")
    if args.scheduler is not None:  # tcp:// or tls:// only (exit 2); unreachable: exit 4
        from .studies.sweep_dask import check_scheduler_address

        try:
            check_scheduler_address(args.scheduler)
        except TokenflowError as exc:
            raise TokenflowError(f"--{exc}") from None
    print(f"tokenflow: running sweep {args.spec} -> {args.out}", file=sys.stderr, flush=True)
    try:
        ds = sweep(spec.pop("scenario"), scheduler=args.scheduler, n_workers=args.workers, **spec)
    except (RuntimeError, TimeoutError, OSError) as exc:  # the workers (processes or Dask) did not start
        print(f"tokenflow: worker problem: {exc.__class__.__name__}: {exc}; no output was written",
              file=sys.stderr)
        return EXIT_SOLVER
    print(summary_table(ds).to_string())
    print(f"{ds.attrs['n_points']} points in {ds.attrs['wall_seconds']:.1f} s")
    print(f"wrote {write_sweep(ds, args.out)}")
    if ds.attrs.get("n_failed", 0):
        print(f"tokenflow: incomplete: {ds.attrs['n_failed']} of {ds.attrs['n_points']} points failed "
              f"(see 'status' and 'message'); {args.out} is marked complete = 0", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (e.g. ``--jobs``)."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return v


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .publish.reproduce import reproduce

    return reproduce(root=Path(args.root), fast=args.fast, build=not args.no_build, force=args.force,
                     only=args.only, jobs=args.jobs, fresh=args.fresh_kernels)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tokenflow", description="Token-flow market clearing for "
                                "generative-AI workloads (reproduction of arXiv 2605.09047).")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("scenarios", help="list packaged scenarios").set_defaults(func=cmd_scenarios)

    def market_args(sp: argparse.ArgumentParser, scale: bool = True) -> None:
        sp.add_argument("scenario", help="us5, us20 or a path to a scenario YAML")
        if scale:
            sp.add_argument("--demand-scale", type=_scale, default=1.0,
                            help="multiplier on base demand (finite, >= 0)")
        sp.add_argument("--token-equivalent", action="store_true",
                        help="token-equivalent baseline instead of the transfer-aware model")
        sp.add_argument("--latency", action="append", metavar="WORKLOAD=MS",
                        help="override a round-trip latency limit, e.g. chat=15 (repeatable)")

    sp = sub.add_parser("solve", help="clear the market and print a summary")
    market_args(sp)
    sp.add_argument("--out", help="write the result to this netCDF file")
    sp.set_defaults(func=cmd_solve)
    sp = sub.add_parser("max-scale", help="largest feasible demand scale s* and what binds")
    market_args(sp, scale=False)
    sp.set_defaults(func=cmd_max_scale)
    sp = sub.add_parser("export-lp", help="write the market LP as MPS")
    market_args(sp)
    sp.add_argument("path", help="output file (.mps or .lp)")
    sp.set_defaults(func=cmd_export_lp)
    sp = sub.add_parser("claims", help="evaluate claims C1-C4; non-zero exit if any is not reproduced")
    sp.add_argument("--json", action="store_true",
                    help="the record's rows of C1-C4 (tokenflow.studies.citable.record): value, status and what it is "
                         "on, verdict, a-priori and consistent-unit values, and every run behind the status")
    sp.add_argument("--a-priori", dest="a_priori", action="store_true",
                    help="evaluate with every calibrated or tuned input at its a-priori value")
    sp.set_defaults(func=cmd_claims)
    sub.add_parser("calibrate", help="recompute the two calibrated inputs of us5").set_defaults(
        func=cmd_calibrate)
    sp = sub.add_parser("sweep", help="many solves in parallel (local worker processes or Dask) from a YAML spec",
                        description="Spec: scenario; one of grid: {input: [values]}, "
                        "samples: {n, seed, ranges: {input: [low, high]}}, points: [{input: value}]; "
                        "optional fixed: {input: value}, evaluate: market|claims. Inputs: demand_scale, "
                        "transfer_aware, latency.<workload>, param.<name>, workload.<workload>.<field>, "
                        "scale.<electricity|capacity|payload|bandwidth>.")
    sp.add_argument("spec", help="sweep specification (YAML)")
    sp.add_argument("--scheduler", help="address of an existing Dask scheduler, tcp://host:port or tls://host:port "
                    "(default: local worker processes); exit 4 when none answers within 10 s")
    sp.add_argument("--workers", type=_count(0, "--workers"), default=None,
                    help="local worker processes (0: in this process; default one per core, at most 4 per core)")
    sp.add_argument("--max-points", type=_count(1, "--max-points"), default=None,
                    help="largest number of points allowed (default 10^6; also max_points in the spec)")
    sp.add_argument("--out", default="sweep.nc", help="output netCDF file")
    sp.set_defaults(func=cmd_sweep)
    sp = sub.add_parser("reproduce", help="run every notebook and build the book")
    sp.add_argument("--root", default=".", help="repository root (holds notebooks/ and book/)")
    sp.add_argument("--fast", action="store_true", help="small parameters (tests, CI smoke)")
    sp.add_argument("--no-build", action="store_true", help="run notebooks only")
    sp.add_argument("--force", action="store_true", help="re-execute even notebooks whose inputs are unchanged")
    sp.add_argument("--only", nargs="+", metavar="NAME", help="only these notebooks (names without .ipynb)")
    sp.add_argument("--jobs", "-j", type=_positive_int, default=None, metavar="N",
                    help="notebooks run at once (default: the number of cores)")
    sp.add_argument("--fresh-kernels", action="store_true",
                    help="a new kernel for every notebook (default: one warm kernel per job, reset between notebooks)")
    sp.set_defaults(func=cmd_reproduce)

    args = p.parse_args(argv)
    return _run(args)


def _error(kind: str, exc: BaseException) -> None:
    print(f"tokenflow: {kind}: {exc}", file=sys.stderr)


def _on_sigterm(signum, frame):  # noqa: ANN001 - signal handler signature
    raise _Terminated()


def _run(args: argparse.Namespace) -> int:
    """Run one command; map every failure to one line on stderr and an exit code."""
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not in the main thread (e.g. called from a worker thread)
        pass
    try:
        return args.func(args)
    except _Terminated as exc:  # the message (reproduce) says what was kept
        print(f"tokenflow: terminated (SIGTERM); {str(exc) or 'no output was written'}", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt as exc:
        print(f"tokenflow: interrupted; {str(exc) or 'no output was written'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InfeasibleMarketError as exc:
        _error("infeasible", exc)
        return EXIT_INFEASIBLE
    except SolverError as exc:
        _error("solver problem", exc)
        return EXIT_SOLVER
    except OutputError as exc:
        _error("output error", exc)
        return EXIT_OUTPUT
    except TokenflowError as exc:
        _error("error", exc)
        return EXIT_INPUT
    except BrokenPipeError:  # e.g. `tokenflow solve us5 | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return EXIT_OUTPUT
    except OSError as exc:
        _error("I/O error", exc)
        return EXIT_OUTPUT
    except MemoryError:
        print("tokenflow: out of memory", file=sys.stderr)
        return EXIT_SOLVER
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        if os.environ.get("TOKENFLOW_DEBUG"):
            raise
        where = ""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" (in {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"
        print(f"tokenflow: internal error: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
              f"{where}. This is a bug: please report it with the command you ran "
              "(TOKENFLOW_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if previous is not None:
            try:
                signal.signal(signal.SIGTERM, previous)
            except ValueError:
                pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
