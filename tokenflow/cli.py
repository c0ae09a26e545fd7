"""Command line: ``tokenflow scenarios | solve | max-scale | export-lp | claims | calibrate | reproduce``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import InfeasibleMarketError, TokenflowError


def _latency(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise TokenflowError(f"--latency expects WORKLOAD=MS, got {item!r}")
        try:
            out[key.strip()] = float(val)
        except ValueError:
            raise TokenflowError(f"--latency {item!r}: {val!r} is not a number of ms") from None
    return out


def cmd_scenarios(args: argparse.Namespace) -> int:
    from .scenario import available_scenarios, load_scenario

    for name in available_scenarios():
        s = load_scenario(name)
        print(f"{name:6s} {s.title}: {len(s.nodes)} nodes, {len(s.links)} fibre links, "
              f"workloads {', '.join(s.workload_ids)}")
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from .market import demand_scale_limit, solve
    from .scenario import load_scenario

    s = load_scenario(args.scenario)
    lat = _latency(args.latency)
    r = solve(s, transfer_aware=not args.token_equivalent, demand_scale=args.demand_scale,
              latency_limits_ms=lat)
    print(r.summary())
    lim = demand_scale_limit(s, transfer_aware=not args.token_equivalent, latency_limits_ms=lat)
    print(f"largest feasible demand scale s* = {lim.max_scale:.4f} (binding there: {lim.binding})")
    if args.out:
        print(f"wrote {r.to_netcdf(args.out)}")
    return 0


def cmd_max_scale(args: argparse.Namespace) -> int:
    from .market import demand_scale_limit
    from .scenario import load_scenario

    lim = demand_scale_limit(load_scenario(args.scenario), transfer_aware=not args.token_equivalent,
                             latency_limits_ms=_latency(args.latency))
    print(f"s* = {lim.max_scale:.6g}  (aggregate-capacity bound {lim.aggregate_bound:.6g})")
    print(f"binding: {lim.binding}")
    return 0


def cmd_export_lp(args: argparse.Namespace) -> int:
    from .market import export_lp
    from .scenario import load_scenario

    path = export_lp(load_scenario(args.scenario), args.path, transfer_aware=not args.token_equivalent,
                     demand_scale=args.demand_scale, latency_limits_ms=_latency(args.latency))
    print(f"wrote {path}")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from .claims import scorecard, scorecard_frame

    results = scorecard()
    if args.json:
        print(json.dumps([{**r.row(), "passed": r.passed, "detail": r.detail} for r in results],
                         indent=2, default=str))
    else:
        import pandas as pd

        with pd.option_context("display.max_colwidth", 60, "display.width", 200):
            print(scorecard_frame(results).to_string())
        for r in results:
            print(f"{r.claim}: {json.dumps(r.detail, default=str)}")
    failed = [r.claim for r in results if not r.passed]
    if failed:
        print(f"NOT reproduced: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibration import calibrate
    from .scenario import load_scenario

    s = load_scenario("us5")
    c = calibrate(s)
    print(f"link_bandwidth_gbps    calibrated {c.link_bandwidth_gbps:.6g}  (scenario file: "
          f"{s.params['link_bandwidth_gbps']:.6g})")
    print(f"other_opex_usd_per_kwh calibrated {c.other_opex_usd_per_kwh:.6g}  (scenario file: "
          f"{s.params['other_opex_usd_per_kwh']:.6g})")
    print(f"at the calibrated point: C2 uplift {c.c2_uplift_pct:.4f} %, C3 rise {c.c3_rise_pct:.4f} %")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import load_spec, summary_table, sweep

    spec = load_spec(args.spec)
    ds = sweep(spec.pop("scenario"), scheduler=args.scheduler, n_workers=args.workers, **spec)
    print(summary_table(ds).to_string())
    print(f"{ds.attrs['n_points']} points in {ds.attrs['wall_seconds']:.1f} s")
    out = Path(args.out)
    ds.to_netcdf(out)
    print(f"wrote {out}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    return reproduce(root=Path(args.root), fast=args.fast, build=not args.no_build, force=args.force,
                     only=args.only)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tokenflow", description="Token-flow market clearing for "
                                "generative-AI workloads (reproduction of arXiv 2605.09047).")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("scenarios", help="list packaged scenarios").set_defaults(func=cmd_scenarios)

    def market_args(sp: argparse.ArgumentParser, scale: bool = True) -> None:
        sp.add_argument("scenario", help="us5, us20 or a path to a scenario YAML")
        if scale:
            sp.add_argument("--demand-scale", type=float, default=1.0, help="multiplier on base demand")
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
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_claims)
    sub.add_parser("calibrate", help="recompute the two calibrated inputs of us5").set_defaults(
        func=cmd_calibrate)
    sp = sub.add_parser("sweep", help="many solves in parallel (Dask) from a YAML spec",
                        description="Spec: scenario; one of grid: {input: [values]}, "
                        "samples: {n, seed, ranges: {input: [low, high]}}, points: [{input: value}]; "
                        "optional fixed: {input: value}, evaluate: market|claims. Inputs: demand_scale, "
                        "transfer_aware, latency.<workload>, param.<name>, workload.<workload>.<field>, "
                        "scale.<electricity|capacity|payload|bandwidth>.")
    sp.add_argument("spec", help="sweep specification (YAML)")
    sp.add_argument("--scheduler", help="address of an existing Dask scheduler (default: local cluster)")
    sp.add_argument("--workers", type=int, default=None, help="local cluster size (0: no Dask)")
    sp.add_argument("--out", default="sweep.nc", help="output netCDF file")
    sp.set_defaults(func=cmd_sweep)
    sp = sub.add_parser("reproduce", help="run every notebook and build the book")
    sp.add_argument("--root", default=".", help="repository root (holds notebooks/ and book/)")
    sp.add_argument("--fast", action="store_true", help="small parameters (tests, CI smoke)")
    sp.add_argument("--no-build", action="store_true", help="run notebooks only")
    sp.add_argument("--force", action="store_true", help="re-execute even notebooks whose inputs are unchanged")
    sp.add_argument("--only", nargs="+", metavar="NAME", help="only these notebooks (names without .ipynb)")
    sp.set_defaults(func=cmd_reproduce)

    args = p.parse_args(argv)
    try:
        return args.func(args)
    except InfeasibleMarketError as exc:
        print(f"tokenflow: infeasible: {exc}", file=sys.stderr)
        return 3
    except TokenflowError as exc:
        print(f"tokenflow: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"tokenflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
