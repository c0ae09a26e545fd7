"""Identifiability of the calibrated claims: recalibration per choice set and per backbone.

The packaged scenarios carry two inputs calibrated once, at the default modelling choices
and the packaged backbone: ``link_bandwidth_gbps`` (to C2) and ``other_opex_usd_per_kwh``
(to C3), see :mod:`tokenflow.studies.calibration`.  The fixed-calibration factorial of the choices
chapter keeps those two values when a choice changes; this module instead reruns both
calibrations for every combination of :data:`tokenflow.CHOICES` (and for alternative
backbones, :mod:`tokenflow.scenarios.topology`), inside the same plausible ranges
(:data:`tokenflow.studies.calibration.BANDWIDTH_RANGE`, :data:`~tokenflow.studies.calibration.OPEX_RANGE`),
and reports whether C2 and C3 can be hit at all, at which values, and what C1 and C4 then
are.  A target that is not reachable is reported with the reachable range and the input
left at the end of the range closest to it; nothing leaves the range.

Differences from :func:`tokenflow.studies.calibration.calibrate`: each 1-D search first scans a
grid over the range (so a target reached only inside the range, or a case that clears
only in part of it, is found) and brackets the root between neighbouring grid points;
the root itself is found by the same :func:`tokenflow.studies.calibration._root` on the same
live-market evaluations (:func:`~tokenflow.studies.calibration._uplift`, :func:`~tokenflow.studies.calibration._rise`).
Where the target is bracketed in one place only (the default choices) both give the same value.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..clearing.engine import pooled_scale_limit, pooled_solve
from ..core import validate as _v
from ..core.errors import InfeasibleMarketError, ScenarioError, TokenflowError
from ..scenarios.choices import CHOICES, check_choices
from ..scenarios.scenario import load_scenario
from ..scenarios.scenario_class import Scenario
from ..scenarios.topology import check_k, knn_backbone, public_map_backbone
from .calibration import OPEX_RANGE, _rise, _root, _uplift, feasible_bandwidth_range
from .claims import CASE_SCALE, CHAT_LIMITS_MS, CLAIM_DECIMALS, PAPER_CLAIMS, SATURATION


def _is_nan(x: object) -> bool:
    try:
        return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isnan(float(x))
    except (TypeError, ValueError):
        return False


BW, OPEX = "link_bandwidth_gbps", "other_opex_usd_per_kwh"
GRID_POINTS = 7  # grid points per 1-D scan (first round)


def choice_sets(choices: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, str]]:
    """Every combination of modelling choices (default: all of :data:`CHOICES`, in
    :func:`itertools.product` order).  ``choices`` may restrict some names to some values;
    unknown names or values raise :class:`ScenarioError`."""
    spec = {k: tuple(v) for k, v in CHOICES.items()}
    if choices is not None and not isinstance(choices, Mapping):
        raise ScenarioError(f"choice_sets: choices must be a mapping name -> list of values, got "
                            f"{type(choices).__name__} {choices!r:.80}")
    for k, vals in (choices or {}).items():
        if isinstance(vals, str) or not isinstance(vals, Sequence) or not vals:
            raise ScenarioError(f"identifiability: choices.{k} must be a non-empty list of values, got {vals!r:.80}")
        vals = _v.names(vals, f"choices.{k}", "identifiability", min_len=1, kind="values")
        for v in vals:
            check_choices({k: v}, "identifiability: choices")
        spec[k] = tuple(vals)
    return [dict(zip(spec, combo)) for combo in itertools.product(*spec.values())]


# ---------------------------------------------------------------------------- claims per case

def claims_at(s5: Scenario, s20: Scenario, scale: float = CASE_SCALE) -> dict[str, Any]:
    """C1-C4 at ``s5`` (5-node claims) and ``s20`` (C4), each case on its own: a case that
    cannot clear makes only its own claim NaN and is named in ``cases`` (e.g. "C3: the 15 ms
    case does not clear (s* = 34.1)").  Same LPs as :mod:`tokenflow.studies.claims` (live markets)."""
    out: dict[str, Any] = {"c1": math.nan, "c1_links": "", "c2": math.nan, "c3": math.nan, "c3_node": "",
                           "c4": math.nan, "s_star": math.nan}
    failed: list[str] = []
    try:
        out["s_star"] = float(pooled_scale_limit(s5).max_scale)
    except TokenflowError as exc:
        failed.append(f"s*: {exc}")
    ta = None
    try:
        ta = pooled_solve(s5, demand_scale=scale)
        util = ta.link_utilization
        links = [str(v) for v in util["link"].values[util.values >= SATURATION]]
        out["c1"], out["c1_links"] = float(len(links)), ", ".join(links)
    except InfeasibleMarketError as exc:
        failed.append(f"C1/C2: the {scale:g}x case does not clear (s* = {exc.max_scale:.4g})")
    if ta is not None:
        try:
            bl = pooled_solve(s5, demand_scale=scale, transfer_aware=False)
            out["c2"] = round(100.0 * (ta.objective / bl.objective - 1.0), CLAIM_DECIMALS) + 0.0
        except InfeasibleMarketError as exc:
            failed.append(f"C2: the token-equivalent baseline does not clear at {scale:g}x (s* = {exc.max_scale:.4g})")
    k = s5.workload_ids.index("chat")
    prices = []
    for lim in CHAT_LIMITS_MS:
        try:
            r = pooled_solve(s5, demand_scale=scale, latency_limits_ms={"chat": lim})
            prices.append(r.arrays()["price"][:, k])
        except InfeasibleMarketError as exc:
            failed.append(f"C3: the {lim:g} ms chat case does not clear (s* = {exc.max_scale:.4g})")
    if len(prices) == 2:  # read as tokenflow.studies.sweep_evaluate.evaluate_claims reads it (solver noise rounded off)
        rise = np.round(100.0 * (prices[1] / prices[0] - 1.0), CLAIM_DECIMALS) + 0.0
        out["c3"] = float(np.nanmax(rise))
        out["c3_node"] = s5.node_ids[int(np.nanargmax(rise))] if out["c3"] > 0 else ""  # "": no price rises
    try:
        lim = pooled_scale_limit(s20)
        out["c4"] = float(lim.max_scale / lim.aggregate_bound)
    except TokenflowError as exc:
        failed.append(f"C4: {exc}")
    out["cases"] = "; ".join(failed) if failed else "every case clears"
    return out


def holds(values: Mapping[str, Any]) -> dict[str, bool]:
    """Whether C1-C4 (keys ``c1``..``c4`` of :func:`claims_at`) are within the paper's tolerance."""
    spec = PAPER_CLAIMS
    if not isinstance(values, Mapping):
        raise ScenarioError(f"holds: values must be a mapping with keys c1..c4, got {type(values).__name__}")
    c = {k: _v.number(values.get(k, math.nan), k, "holds", finite=False) if not _is_nan(values.get(k, math.nan))
         else math.nan for k in ("c1", "c2", "c3", "c4")}
    return {"C1": c["c1"] == spec["C1"]["paper"],
            "C2": abs(c["c2"] - spec["C2"]["paper"]) <= spec["C2"]["tolerance"],
            "C3": abs(c["c3"] - spec["C3"]["paper"]) <= spec["C3"]["tolerance"],
            "C4": abs(c["c4"] - 1.0) <= spec["C4"]["tolerance"]}


# ---------------------------------------------------------------------------- recalibration

def _scan(f: Callable[[float], float], lo: float, hi: float, target: float, near: float,
          n: int, what: str) -> tuple[float, bool, float, float]:
    """Find ``f(x) = target`` in [lo, hi]: scan ``n`` grid points (a case that does not clear
    is NaN), bracket between neighbours, root by :func:`tokenflow.studies.calibration._root`; of
    several brackets the one nearest ``near``.  Returns (x, hit, min f, max f over the grid);
    when not hit, x is the grid point with f closest to the target."""
    def safe(x: float) -> float:
        try:
            return float(f(x))
        except InfeasibleMarketError:
            return math.nan

    xs = np.linspace(lo, hi, n)
    vals = np.array([safe(x) for x in xs])
    ok = np.isfinite(vals)
    if not ok.any():
        return math.nan, False, math.nan, math.nan
    fmin, fmax = float(vals[ok].min()), float(vals[ok].max())
    brackets = [(xs[i], xs[i + 1]) for i in range(n - 1)
                if ok[i] and ok[i + 1] and (vals[i] - target) * (vals[i + 1] - target) <= 0]
    if not brackets:
        i = int(np.nanargmin(np.abs(vals - target)))
        return float(xs[i]), False, fmin, fmax

    def distance(ab: tuple[float, float]) -> float:
        return 0.0 if ab[0] <= near <= ab[1] else min(abs(ab[0] - near), abs(ab[1] - near))

    a, b = min(brackets, key=distance)
    x = _root(lambda v: safe(v) - target, float(a), float(b), what)
    fx = safe(x)
    return float(x), True, min(fmin, fx), max(fmax, fx)


def recalibrate(s5: Scenario, *, rounds: int = 3, grid_points: int = GRID_POINTS,
                rtol: float = 1e-6) -> dict[str, Any]:
    """Rerun both calibrations on ``s5`` (its choices and backbone), alternating the 1-D
    searches like :func:`tokenflow.studies.calibration.calibrate` until neither input moves by more
    than ``rtol`` (at most ``rounds`` rounds).  Returns the inputs (``bandwidth_gbps``,
    ``opex_usd_per_kwh``), whether each target was hit (``c2_hit``, ``c3_hit``), the
    reachable ranges over the last scan (``c2_min``/``c2_max``, ``c3_min``/``c3_max``) and
    ``note`` (why a target is out of reach)."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ScenarioError(f"identifiability: rounds must be a whole number >= 1, got {rounds!r}")
    if isinstance(grid_points, bool) or not isinstance(grid_points, int) or grid_points < 2:
        raise ScenarioError(f"identifiability: grid_points must be a whole number >= 2, got {grid_points!r}")
    c2t, c3t = PAPER_CLAIMS["C2"]["paper"], PAPER_CLAIMS["C3"]["paper"]
    out: dict[str, Any] = {"bandwidth_gbps": math.nan, "opex_usd_per_kwh": math.nan, "c2_hit": False,
                           "c3_hit": False, "c2_min": math.nan, "c2_max": math.nan, "c3_min": math.nan,
                           "c3_max": math.nan, "rounds": 0, "note": ""}
    try:
        lo, hi = feasible_bandwidth_range(s5)
    except TokenflowError as exc:
        out["note"] = str(exc)
        return out
    cur = s5
    bw, opex = float(s5.params[BW]), float(s5.params[OPEX])
    for r in range(rounds):
        def g2(b: float, cur: Scenario = cur) -> float:
            return _uplift(cur.replace(params={BW: b}))

        new_bw, out["c2_hit"], out["c2_min"], out["c2_max"] = _scan(g2, lo, hi, c2t, bw, grid_points, BW)
        if math.isnan(new_bw):  # C2's markets clear nowhere on the bandwidth grid: keep the value in force
            new_bw = bw
        cur = cur.replace(params={BW: new_bw})

        def g3(o: float, cur: Scenario = cur) -> float:
            return _rise(cur.replace(params={OPEX: o}))

        new_opex, out["c3_hit"], out["c3_min"], out["c3_max"] = _scan(g3, *OPEX_RANGE, c3t, opex, grid_points, OPEX)
        if math.isnan(new_opex):  # the 15 ms case does not clear at any opex: keep the value in force
            new_opex = opex
        cur = cur.replace(params={OPEX: new_opex})
        moved = abs(new_bw - bw) > rtol * abs(bw) or abs(new_opex - opex) > rtol * max(abs(opex), 1e-12)
        bw, opex = new_bw, new_opex
        out["rounds"] = r + 1
        if not moved and r > 0:
            break
    out["bandwidth_gbps"], out["opex_usd_per_kwh"] = bw, opex
    notes = []
    if not out["c2_hit"] and math.isnan(out["c2_min"]):
        notes.append(f"C2 out of reach: its markets do not clear at any bandwidth in {lo:.4g}..{hi:.4g} Gbps")
    elif not out["c2_hit"]:
        notes.append(f"C2 reachable only in {out['c2_min']:.3g}..{out['c2_max']:.3g} % for "
                     f"{lo:.4g}..{hi:.4g} Gbps")
    if not out["c3_hit"]:
        notes.append("C3 out of reach: the 15 ms chat case does not clear" if math.isnan(out["c3_min"]) else
                     f"C3 reachable only in {out['c3_min']:.4g}..{out['c3_max']:.4g} % for "
                     f"{OPEX_RANGE[0]:g}..{OPEX_RANGE[1]:g} $/kWh")
    out["note"] = "; ".join(notes)
    return out


def evaluate_recalibration(s: Scenario, point: dict[str, Any], s20: Scenario | None = None,
                           rounds: int = 3, grid_points: int = GRID_POINTS) -> dict[str, Any]:
    """Sweep evaluator (:func:`tokenflow.sweep`): at one choice set (``choice.<name>`` keys of
    ``point``), C1-C4 at the packaged calibrated inputs (``fixed_*``), then both calibrations
    rerun and C1-C4 at the recalibrated inputs (``recal_*``).  C4 uses ``s20`` with the same
    choices and bandwidth (us20 takes the bandwidth calibrated on us5)."""
    choices = {k.split(".", 1)[1]: v for k, v in point.items() if k.startswith("choice.")}
    if set(point) - {f"choice.{k}" for k in choices}:
        raise ScenarioError(f"identifiability: a point may only set choice.<name>, got {sorted(point)}")
    s5 = s.with_choices(**choices) if choices else s
    s20 = (s20 or load_scenario("us20"))
    s20 = s20.with_choices(**choices) if choices else s20
    return _fixed_and_recalibrated(s5, s20, rounds, grid_points)


def _fixed_and_recalibrated(s5: Scenario, s20: Scenario, rounds: int, grid_points: int) -> dict[str, Any]:
    res: dict[str, Any] = {}
    fixed = claims_at(s5, s20)
    res.update({f"fixed_{k}": v for k, v in fixed.items()})
    cal = recalibrate(s5, rounds=rounds, grid_points=grid_points)
    res.update({k: (float(v) if isinstance(v, (bool, np.bool_)) else v) for k, v in cal.items()})
    if math.isnan(cal["bandwidth_gbps"]):
        res.update({f"recal_{k}": (math.nan if isinstance(v, float) else "") for k, v in fixed.items()})
        res["recal_cases"] = cal["note"]
        return res
    p = {BW: cal["bandwidth_gbps"], OPEX: cal["opex_usd_per_kwh"]}
    rec = claims_at(s5.replace(params=p), s20.replace(params=p))
    res.update({f"recal_{k}": v for k, v in rec.items()})
    return res


def _frame(ds, extra_cols: dict[str, list]) -> pd.DataFrame:
    df = ds.drop_vars([v for v in ds.data_vars if ds[v].dims != ("point",)]).to_dataframe()
    for k, v in extra_cols.items():
        df[k] = v
    return df


def recalibrate_choices(s5: Scenario | None = None, s20: Scenario | None = None, *,
                        choices: Mapping[str, Sequence[str]] | None = None, rounds: int = 3,
                        grid_points: int = GRID_POINTS, n_workers: int = 0) -> pd.DataFrame:
    """One row per choice set (:func:`choice_sets`): C1-C4 at the packaged calibrated inputs
    (``fixed_*``), the recalibrated inputs, whether C2/C3 were hit, and C1-C4 there
    (``recal_*``), with ``C1 ok``..``C4 ok`` at the recalibrated point.  Runs as a
    :func:`tokenflow.sweep` (``n_workers`` worker processes; 0 = this process)."""
    from .sweep import sweep

    s5 = s5 or load_scenario("us5")
    s20 = s20 or load_scenario("us20")
    sets = choice_sets(choices)
    points = [{f"choice.{k}": v for k, v in c.items()} for c in sets]
    ds = sweep(s5, points=points, evaluate=evaluate_recalibration,
               evaluate_kwargs={"s20": s20, "rounds": rounds, "grid_points": grid_points},
               n_workers=n_workers, progress=False)
    df = _frame(ds, {k: [c[k] for c in sets] for k in CHOICES})
    for which in ("fixed", "recal"):
        ok = [holds({c: r[f"{which}_{c}"] for c in ("c1", "c2", "c3", "c4")}) for _, r in df.iterrows()]
        for claim in ("C1", "C2", "C3", "C4"):
            df[f"{which} {claim} ok"] = [o[claim] for o in ok]
    for col in ("c2_hit", "c3_hit"):
        df[col] = df[col].fillna(0).astype(bool)
    return df.reset_index(drop=True)


# ---------------------------------------------------------------------------- topology

PUBLIC_MAP_LABEL = "packaged + public map"


def backbones(s5: Scenario, s20: Scenario, ks: Sequence[int] = (2, 3, 4),
              public_map: bool = False) -> dict[str, tuple[Scenario, Scenario]]:
    """label -> (us5, us20) for the packaged backbones ("packaged"), each metro linked to
    its k nearest metros ("k = 2", ...), the same k on both networks, and, with
    ``public_map``, the packaged backbones plus the long-haul links of a public U.S. map
    (:data:`PUBLIC_MAP_LABEL`, :func:`tokenflow.scenarios.topology.public_map_backbone`).  A bad k
    raises :class:`ScenarioError`."""
    _v.scenario(s5, "s5", "backbones")
    _v.scenario(s20, "s20", "backbones")
    ks = _v.items_of(ks, "ks", "backbones", kind="whole numbers k")
    if len(set(map(repr, ks))) != len(ks):
        raise ScenarioError(f"backbones: ks has repeated values {ks!r:.80}")
    for k in ks:
        check_k(k, min(len(s5.node_ids), len(s20.node_ids)))
    if not isinstance(public_map, bool):
        raise ScenarioError(f"backbones: public_map must be True or False, got {public_map!r:.40}")
    out = {"packaged": (s5, s20)}
    for k in ks:
        out[f"k = {k}"] = (knn_backbone(s5, k), knn_backbone(s20, k))
    if public_map:
        out[PUBLIC_MAP_LABEL] = (public_map_backbone(s5), public_map_backbone(s20))
    return out


def _links(s: Scenario) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for p in zip(s.links["a"], s.links["b"])}  # type: ignore[misc]


def topology_study(s5: Scenario | None = None, s20: Scenario | None = None, *, ks: Sequence[int] = (2, 3, 4),
                   rounds: int = 3, grid_points: int = GRID_POINTS, public_map: bool = False) -> pd.DataFrame:
    """One row per backbone (:func:`backbones`, default choices; ``public_map`` adds the
    packaged + public-map variant): link counts, whether it equals the packaged backbone,
    C1-C4 at the packaged calibrated inputs (``fixed_*``) and after rerunning both
    calibrations on that backbone (``recal_*``)."""
    s5 = s5 or load_scenario("us5")
    s20 = s20 or load_scenario("us20")
    rows = []
    for label, (a, b) in backbones(s5, s20, ks, public_map=public_map).items():
        row: dict[str, Any] = {"backbone": label, "us5_links": len(a.links), "us20_links": len(b.links),
                               "us5_same_as_packaged": _links(a) == _links(s5),
                               "us20_same_as_packaged": _links(b) == _links(s20)}
        row.update(_fixed_and_recalibrated(a, b, rounds, grid_points))
        for which in ("fixed", "recal"):
            for claim, ok in holds({c: row[f"{which}_{c}"] for c in ("c1", "c2", "c3", "c4")}).items():
                row[f"{which} {claim} ok"] = ok
        rows.append(row)
    return pd.DataFrame(rows).set_index("backbone")


# ---------------------------------------------------------------------------- outcomes (figure)

OUTCOMES = ("holds", "fails", "does not clear")  # a claim at a choice set, after recalibration
CLAIM_COLUMNS = ("C1", "C2", "C3", "C4", "all four")


def claim_outcomes(rc: pd.DataFrame) -> pd.DataFrame:
    """One of :data:`OUTCOMES` per choice set (a row of :func:`recalibrate_choices`) and
    claim (:data:`CLAIM_COLUMNS`), after both calibrations are rerun: C2 and C3 (the
    calibrated claims) "hold" where their target was hit, "fail" where the search's range
    missed it, and "do not clear" where their case (35x for C2, the 15 ms chat case for C3)
    clears at no scanned value; C1 (a 35x claim) likewise; C4 holds or fails at the
    recalibrated point and "does not clear" where there is none (the bandwidth calibration's
    35x case clears at no scanned bandwidth); "all four" holds only where every claim does.
    A C4 that could not be computed at a recalibrated point (``recal_c4`` NaN there, its s*
    raised; ``recal_cases`` says why) is a :class:`ScenarioError`, not an outcome."""
    need = {"c2_hit", "c3_hit", "c2_max", "c3_max", "recal_c4",
            *(f"recal {c} ok" for c in ("C1", "C2", "C3", "C4"))}
    missing = sorted(need - set(rc.columns))
    if missing:
        raise ScenarioError(f"claim_outcomes: the recalibration table lacks column(s) {missing}")
    clears35 = np.isfinite(rc["c2_max"].astype(float).to_numpy())
    clears15 = np.isfinite(rc["c3_max"].astype(float).to_numpy())
    lost = np.nonzero(clears35 & ~np.isfinite(rc["recal_c4"].astype(float).to_numpy()))[0]
    if len(lost):
        why = rc["recal_cases"].iloc[lost[0]] if "recal_cases" in rc.columns else "no reason recorded"
        raise ScenarioError(f"claim_outcomes: C4 was not computed at {len(lost)} recalibrated point(s) "
                            f"(rows {lost.tolist()}; first: {why})")

    def word(ok, clears):
        return np.where(~clears, OUTCOMES[2], np.where(np.asarray(ok, dtype=bool), OUTCOMES[0], OUTCOMES[1]))

    out = pd.DataFrame({"C1": word(rc["recal C1 ok"], clears35), "C2": word(rc["c2_hit"], clears35),
                        "C3": word(rc["c3_hit"], clears15), "C4": word(rc["recal C4 ok"], clears35)},
                       index=rc.index)
    out["all four"] = np.where((out[["C1", "C2", "C3", "C4"]] == OUTCOMES[0]).all(axis=1), OUTCOMES[0], OUTCOMES[1])
    return out
