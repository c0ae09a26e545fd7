"""The record: every result of the book, computed once, by one function (:func:`record`), with a
stable identifier, value and unit, the runs that measure its status, and the status the
written rule (:func:`derive_status`) reads from those runs.

Identifiers are stable across builds: ``C1``-``C4`` are the paper's claims (evaluated by
:mod:`tokenflow.studies.claims`), ``F1``-``F4`` the verdicts on the paper's figures, and ``B1``... the
book's own findings beyond the paper.  The scorecard, the results page, ``results.json`` and
``results.csv``, the BibTeX entries and ``tokenflow claims --json`` are all rendered from one
record (a test compares every field).

**Runs.**  Each result is evaluated at the calibrated point (the scenario files as shipped), with
each calibrated or tuned input group alone at its a-priori value (the ``a_priori`` entries of the
scenario files: link bandwidth, non-energy opex, base demand per workload), and with all of them
there together.  Each run keeps the value and the verdict.

**The rule** (:func:`derive_status`): a result an input was chosen to produce
(:data:`tokenflow.studies.calibration.TARGETS`) is *calibrated* on that input; otherwise it is
*conditional* on every input group whose a-priori run alone changes its verdict (or on all of
them jointly when only the run with all of them changes it); otherwise it is *independent*.
No status is written anywhere else.

**Optimal face.**  Statistics of a dispatch that the solver's choice of optimum could move are
given with their range over the optimal face (:mod:`tokenflow.clearing.face`): B1 exactly, F1 over the
extreme dispatches of every node's utilisation; the verdict is checked over the whole range.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import TokenflowError
from .cases import CASE_SCALE

STATUSES = ("independent", "conditional", "calibrated")
_X = f"{CASE_SCALE:g}x"  # the paper's case scale as the record's words print it ("35x")
PAGES = {"C1": "transfer_vs_token", "C2": "transfer_vs_token", "C3": "latency", "C4": "us20_scaleup",
         "F1": "us20_scaleup", "F2": "us5_market", "F3": "us5_demand_growth", "F4": "transfer_vs_token",
         "B1": "us5_market", "B2": "transfer_vs_token", "B3": "us20_scaleup", "B4": "scorecard",
         "B5": "referees"}
CSV_FIELDS = ("id", "title", "value", "unit", "status", "status_on", "verdict", "paper", "a_priori",
              "a_priori_verdict", "consistent", "consistent_verdict", "range_low", "range_high", "range_note",
              "interval_low", "interval_high", "interval_note", "page")
CALIBRATED_RUN, ALL_RUN = "calibrated", "all a priori"
DEMAND_GROUP = "workloads.*.demand_mtok_per_h_per_mpeople"
LABELS = {"parameters.link_bandwidth_gbps": "link bandwidth", "parameters.other_opex_usd_per_kwh": "non-energy opex",
          DEMAND_GROUP: "base demand"}


@dataclass
class Result:
    """One result of the record.  ``value`` in ``unit``; ``status`` one of :data:`STATUSES`
    (derived by :func:`derive_status` from ``runs``, never given); ``status_on`` names the input
    groups it is calibrated or conditional on; ``runs`` maps a run label to its ``value``,
    ``verdict`` (text) and ``ok`` (the verdict: reproduced / agrees / the finding as stated);
    ``range`` is (low, high) over the optimal face where the dispatch is not unique;
    ``interval`` a (5 %, 95 %) Monte Carlo interval."""

    id: str
    title: str
    value: object
    unit: str
    status: str
    page: str
    status_on: str = ""
    paper: object = None
    a_priori: object = None
    a_priori_verdict: str = ""
    consistent: object = None
    consistent_verdict: str = ""
    range: tuple[float, float] | None = None
    range_note: str = ""
    interval: tuple[float, float] | None = None
    interval_note: str = ""
    verdict: str = ""
    runs: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise TokenflowError(f"result {self.id}: status must be one of {STATUSES}, got {self.status!r}")

    def row(self) -> dict:
        lo, hi = self.interval if self.interval else (None, None)
        rlo, rhi = self.range if self.range else (None, None)
        return {"id": self.id, "title": self.title, "value": self.value, "unit": self.unit, "status": self.status,
                "status_on": self.status_on, "verdict": self.verdict, "paper": self.paper,
                "a_priori": self.a_priori, "a_priori_verdict": self.a_priori_verdict,
                "consistent": self.consistent, "consistent_verdict": self.consistent_verdict,
                "range_low": rlo, "range_high": rhi, "range_note": self.range_note,
                "interval_low": lo, "interval_high": hi, "interval_note": self.interval_note, "page": self.page}


def _num(x):
    """JSON-safe number (NaN/inf -> None), numpy scalars -> Python."""
    if isinstance(x, (np.generic,)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ---------------------------------------------------------------------------- the rule

def derive_status(rid: str, runs: dict[str, dict], groups: list[str],
                  targets: dict[str, tuple[str, ...]]) -> tuple[str, list[str]]:
    """(status, input groups it is on) of result ``rid`` from its runs (label -> {"ok": ...}):

    * ``calibrated`` on the groups that were chosen to produce it (``targets``);
    * else ``conditional`` on each group whose a-priori run alone gives a verdict other than the
      calibrated run's, or on all ``groups`` jointly if only the run with all of them does;
    * else ``independent``."""
    cal = [g for g in groups if rid in targets.get(g, ())]
    if cal:
        return "calibrated", cal
    base = runs[CALIBRATED_RUN]["ok"]
    alone = [g for g in groups if g in runs and runs[g]["ok"] != base]
    if alone:
        return "conditional", alone
    if ALL_RUN in runs and runs[ALL_RUN]["ok"] != base:
        return "conditional", list(groups)
    return "independent", []


def verdict_word(kind: str, ok: bool, status: str) -> str:
    """The verdict of a claim (``kind`` "C") or figure ("F"): "reproduced" only where independent."""
    if kind == "C":
        if not ok:
            return "not reproduced"
        return {"independent": "reproduced", "conditional": "holds at a calibrated input",
                "calibrated": "matched by calibration"}[status]
    if not ok:
        return "differs from the caption"
    return {"independent": "agrees with the caption", "conditional": "agrees at a calibrated input",
            "calibrated": "matched by calibration"}[status]


def finding_word(text: str, status: str) -> str:
    """The verdict of a finding of this book (a B result): its statement, marked where it holds
    only at the calibrated or tuned inputs."""
    return text + (" (at the calibrated or tuned inputs only)" if status == "conditional" else "")


# ---------------------------------------------------------------------------- evaluation

def input_groups(s) -> dict[str, list[str]]:
    """Calibrated and tuned inputs of ``s`` by group: group -> provenance items (the base
    demand of every workload is one group: a priori the workloads keep the tuned mix)."""
    from .claims import calibrated_inputs

    out: dict[str, list[str]] = {}
    for item in calibrated_inputs(s):
        g = DEMAND_GROUP if item.endswith(".demand_mtok_per_h_per_mpeople") else item
        out.setdefault(g, []).append(item)
    return out


def evaluate(us5, us20, scale: float | None = None) -> dict[str, dict]:
    """Every result at one configuration of the inputs: id -> {"value", "ok", "verdict", "detail"}.
    ``ok`` is the claim's or figure's verdict (reproduced / agrees) or, for a B result, the
    predicate its finding states (see :data:`FINDINGS`)."""
    from ..clearing.market import demand_scale_limit, solve
    from . import claims as cl
    from .consistent import consistent_scenario

    scale = cl.CASE_SCALE if scale is None else scale
    out: dict[str, dict] = {}
    cards = {r.claim: r for r in cl.evaluate_all(us5, us20)}
    for c, r in cards.items():
        out[c] = {"value": _num(r.reproduced), "ok": bool(r.passed), "detail": r.detail,
                  "verdict": "passes" if r.passed else "fails"}
    figs = {v.figure: v for v in cl.figure_verdicts(us5, us20)}
    f_value = {
        "F1": lambda d: float(d["merit_order_spearman"]),
        "F2": lambda d: 100 * float(d["cheap_share"]),
        # a fall within the solver's round-off (the verdict's 1e-9 relative) is no fall
        "F3": lambda d: 100 * float(d["largest_relative_step_down"]) if float(d["largest_relative_step_down"]) > 1e-9
        else 0.0,
        "F4": lambda d: int(d["saturated_every"]),
    }
    for f, v in figs.items():
        out[f] = {"value": _num(f_value[f](v.detail)), "ok": bool(v.agrees), "verdict": v.computed,
                  "detail": {k: _num(x) if isinstance(x, (float, np.generic)) else x for k, x in v.detail.items()}}
    d = figs["F2"].detail
    img, chat = 100 * float(d["image_local"]), 100 * float(d["chat_local"])
    out["B1"] = {"value": img - chat, "detail": {"local_share_pct": {"image": img, "chat": chat}}}
    try:
        bl = solve(us5, transfer_aware=False, demand_scale=scale)
        out["B2"] = {"value": 100 * float(bl.dataset["link_utilization_physical"].max()), "detail": {}}
    except TokenflowError as exc:
        out["B2"] = {"value": None, "detail": {"error": str(exc)}}
    out["B3"] = {"value": float(demand_scale_limit(us20).max_scale), "detail": {}}
    ap = cl.a_priori_scenario(us5, ["parameters.link_bandwidth_gbps", "parameters.other_opex_usd_per_kwh"])
    c1 = cl._evaluate("C1", cl.evaluate_c1, ap)
    out["B4"] = {"value": _num(c1.reproduced), "detail": c1.detail}
    lim = demand_scale_limit(consistent_scenario(us5))
    out["B5"] = {"value": float(lim.max_scale), "detail": {"binding": lim.binding}}
    for b, (pred, yes, no) in FINDINGS.items():
        v = out[b]["value"]
        out[b]["ok"] = bool(pred(v)) if v is not None else False
        out[b]["verdict"] = yes if out[b]["ok"] else no
    return out


def _is_four(v) -> bool:
    from .claims import PAPER_CLAIMS

    return v == PAPER_CLAIMS["C1"]["paper"]


def _clears(v) -> bool:
    from .claims import CASE_SCALE

    return v is not None and v >= CASE_SCALE


# B results: (predicate of the value, finding when it is true, finding when it is false)
FINDINGS = {
    "B1": (lambda v: v > 0, "image tokens stay at their origin more often than chat tokens",
           "image tokens do not stay at their origin more often than chat tokens"),
    "B2": (lambda v: v > 100, "the token-equivalent dispatch overloads links with the real payloads",
           "the token-equivalent dispatch fits the links with the real payloads"),
    "B3": (_clears, f"the paper's {_X} case clears in the 20-node network", f"the {_X} case does not clear"),
    "B4": (_is_four, "C1 holds with link bandwidth and opex a priori",
           "C1 does not hold with link bandwidth and opex a priori"),
    "B5": (_clears, f"the 5-node {_X} case clears when a token carries its prompt processing",
           f"the 5-node {_X} case does not clear when a token carries its prompt processing"),
}
TITLES = {
    "B1": f"Image tokens processed at their origin minus chat tokens processed at their origin (5 nodes, {_X}; "
          "the paper's Figure 2 reads image as staying near demand)",
    "B2": "Busiest link's physical utilisation when the token-equivalent dispatch carries the real payloads "
          f"(5 nodes, {_X})",
    "B3": "Largest feasible demand scale s* of the 20-node case (exact, from an LP)",
    "B4": f"Saturated links at {_X} with link bandwidth and non-energy opex at their a-priori values (5 nodes)",
    "B5": "Largest feasible demand scale s* of the 5-node case when each generated token carries its share of "
          "prompt processing (energy_accounting=prefill_and_decode; this book's reconstruction of payloads, "
          "prompt ratios and base demand)",
}
UNITS = {"F1": "Spearman rho", "F2": "% of tokens at the two cheapest nodes",
         "F3": "% (largest fall of a mean price between neighbouring demand scales, beyond round-off)",
         "F4": "links saturated in every optimum", "B1": "percentage points", "B2": "% of capacity",
         "B3": "x base demand", "B4": "links", "B5": "x base demand"}


def source_key() -> str:
    """Hash of the package's code and data: a record computed under another key is stale."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.suffix in (".py", ".yaml", ".csv", ".json") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def record(us5=None, us20=None, *, cache: Path | None = None, face: bool = True) -> list[Result]:
    """The record: every result, its runs, status and ranges, computed now (or read from
    ``cache``, a JSON file this function wrote under the same :func:`source_key`, when the
    packaged scenarios are used).  ``face``: compute the optimal-face ranges (F1, B1)."""
    from ..scenarios.scenario import load_scenario
    from . import claims as cl
    from .calibration import TARGETS

    packaged = us5 is None and us20 is None
    if cache is not None and packaged and Path(cache).is_file():
        try:
            data = json.loads(Path(cache).read_text())
            if data.get("source_key") == source_key() and data.get("face") == face:
                return [_from_dict(r) for r in data["results"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    us5 = us5 or load_scenario("us5")
    us20 = us20 or load_scenario("us20")
    groups = input_groups(us5)
    configs = {CALIBRATED_RUN: (us5, us20)}
    for g, items in groups.items():
        configs[g] = (cl.a_priori_scenario(us5, items), cl.a_priori_scenario(us20, items))
    configs[ALL_RUN] = (cl.a_priori_scenario(us5), cl.a_priori_scenario(us20))
    runs = {label: evaluate(a, b) for label, (a, b) in configs.items()}
    from .consistent import consistent_values

    cons = consistent_values(us5, us20)
    ranges = face_ranges(us5, us20) if face else {}
    out: list[Result] = []
    ids = [*cl.PAPER_CLAIMS, *cl.PAPER_FIGURES, *FINDINGS]
    for rid in ids:
        r_runs = {label: {k: runs[label][rid][k] for k in ("value", "ok", "verdict")} for label in runs}
        status, on = derive_status(rid, r_runs, list(groups), TARGETS)
        cal = runs[CALIBRATED_RUN][rid]
        ok = cal["ok"]
        if rid in cl.PAPER_CLAIMS:
            spec = cl.PAPER_CLAIMS[rid]
            title, unit, paper = spec["text"], spec["unit"], spec["paper"]
            verdict = verdict_word("C", ok, status)
        elif rid in cl.PAPER_FIGURES:
            title, unit = f"Figure {rid[1]}: {cl.PAPER_FIGURES[rid]['check']}", UNITS[rid]
            paper = cl.PAPER_CLAIMS["C1"]["paper"] if rid == "F4" else None
            verdict = f"{verdict_word('F', ok, status)} ({cal['verdict']})"
        else:
            title, unit, paper = TITLES[rid], UNITS[rid], None
            verdict = finding_word(cal["verdict"], status)
        apr = runs[ALL_RUN][rid]
        res = Result(rid, title, _num(cal["value"]), unit, status, PAGES[rid],
                     "; ".join(LABELS.get(g, g) for g in on), paper=_num(paper), a_priori=_num(apr["value"]),
                     a_priori_verdict=("holds" if apr["ok"] else "fails") if rid[0] in "CF" else
                     ("the same finding" if apr["ok"] == ok else "the opposite finding"),
                     verdict=verdict, runs=r_runs,
                     detail={**{k: v for k, v in cal.get("detail", {}).items()}, "status_on_items": on})
        if rid in cons:
            e = cons[rid]
            res.consistent = _num(e["value"]) if not isinstance(e["value"], str) else e["value"]
            res.consistent_verdict = "holds" if e["passed"] else "fails"
            res.detail["consistent"] = {k: e[k] for k in ("energy_accounting", "cleared", "scale", "s_star",
                                                          "s_star_generated_only", "binding") if k in e}
            if "equivalent_load" in e:
                eq = e["equivalent_load"]
                res.detail["consistent"]["equivalent_load"] = {k: _num(eq[k]) for k in ("scale", "value", "passed")}
        if rid in ranges:
            lo, hi, note, ok_all = ranges[rid]
            res.range, res.range_note = (lo, hi), note
            res.verdict += "; holds over the whole range" if ok_all else "; NOT over the whole range"
        out.append(res)
    if cache is not None and packaged:
        _atomic(Path(cache), json.dumps({"source_key": source_key(), "face": face,
                                         "results": [asdict(r) for r in out]}, default=_json_default))
    return out


def face_ranges(us5, us20) -> dict[str, tuple[float, float, str, bool]]:
    """F1 and B1 over the optimal face: id -> (low, high, note, verdict holds over the range)."""
    from ..clearing.face import local_share_range, utilization_range
    from . import claims as cl

    out = {}
    b1 = local_share_range(us5, demand_scale=cl.CASE_SCALE)
    out["B1"] = (b1["low"], b1["high"], f"exact range over every optimal dispatch (5 nodes, {_X})",
                 (b1["low"] > 0) == (b1["high"] > 0))
    cost = (us20.node_pue * us20.nodes["electricity_usd_per_kwh"]).to_numpy(float)
    f1 = utilization_range(us20, demand_scale=cl.CASE_SCALE,
                           statistic=lambda u: cl.spearman_with_ties(cost, u))
    note = ("every node's utilisation is the same in every optimum" if f1["unique"] else
            f"over the {2 * len(f1['node'])} dispatches that minimise or maximise one node's utilisation "
            "on the optimal face (utilisations within 1e-9 are ties)")
    out["F1"] = (f1["stat_low"], f1["stat_high"], note, f1["stat_high"] <= cl.MERIT_ORDER_RHO)
    return out


def _from_dict(d: dict) -> Result:
    for k in ("range", "interval"):
        if d.get(k) is not None:
            d[k] = tuple(d[k])
    return Result(**d)


# ---------------------------------------------------------------------------- renderings

def monte_carlo(path: Path | None) -> dict[str, tuple[float, float, int, str]]:
    """5 %-95 % intervals of C2 and C3 from the robustness chapter's draws (``robustness_mc.nc``),
    over the draws that clear, if that file exists: claim -> (low, high, draws, note).  Where
    the draws vary the baseline's payload (``choice.baseline_payload``), C2 is given for the
    shipped baseline only (the other baseline measures another uplift) and the note says so."""
    if path is None or not Path(path).is_file():
        return {}
    import xarray as xr

    with xr.open_dataset(path) as mc:
        ok = mc["status"] == "ok"
        n_all = int(mc["status"].size)
        out = {}
        for claim, var in (("C2", "c2_uplift_pct"), ("C3", "c3_rise_pct")):
            if var not in mc:
                continue
            sel, note = ok, ""
            if claim == "C2" and "choice.baseline_payload" in mc:
                from ..scenarios.choices import CHOICES

                shipped = CHOICES["baseline_payload"][0]  # the default, the one the scenarios ship with
                sel = ok & (mc["choice.baseline_payload"].astype(str) == shipped)
                note = f"; baseline payload {shipped!r} only"
            v = mc[var].where(sel, drop=True)
            if v.size:
                lo, hi = float(v.quantile(0.05)), float(v.quantile(0.95))
                # percentages within solver round-off of zero (1e-9 of the range) are zero
                tiny = 1e-9 * max(abs(lo), abs(hi), 1.0)
                lo, hi = (0.0 if abs(x) < tiny else x for x in (lo, hi))
                out[claim] = (lo, hi, int(v.size),
                              f"5-95 % of the {int(v.size)} of {n_all} Monte Carlo draws that clear {_X}{note} "
                              "(robustness chapter)")
        return out


def with_intervals(results: list[Result], mc_file: Path | None) -> list[Result]:
    """The record with the robustness chapter's Monte Carlo intervals attached (where computed)."""
    mc = monte_carlo(mc_file)
    for r in results:
        if r.id in mc:
            lo, hi, _, note = mc[r.id]
            r.interval, r.interval_note = (lo, hi), note
    return results


def collect(*, mc_file: Path | None = None, cache: Path | None = None) -> list[Result]:
    """The record (:func:`record`) with Monte Carlo intervals: what ``results.json`` holds."""
    return with_intervals(record(cache=cache), mc_file)


def claims_json(results: list[Result]) -> list[dict]:
    """``tokenflow claims --json``: the record's rows of C1-C4, with their runs and details."""
    return [{**r.row(), "runs": r.runs, "detail": r.detail} for r in results if r.id.startswith("C")]


def local_shares(result) -> dict[str, float]:
    """Per workload, % of its tokens processed at the node where the demand arises."""
    tr = result.dataset["transfers"]
    out = {}
    for wk in tr["workload"].values:
        t = tr.sel(workload=wk).values
        tot = float(t.sum())
        out[str(wk)] = 100 * float(np.trace(t)) / tot if tot > 0 else math.nan
    return out


def mean_price(result, workload: str) -> float:
    """Demand-weighted mean locational price of ``workload`` ($/M tokens)."""
    ds = result.dataset
    w = ds["demand"].sel(workload=workload)
    return float((ds["prices"].sel(workload=workload) * w).sum() / w.sum()) if "prices" in ds else \
        float((result.prices.sel(workload=workload) * w).sum() / w.sum())


def to_json(results: list[Result], meta: dict | None = None) -> str:
    rows = [{**r.row(), "runs": r.runs, "detail": r.detail} for r in results]
    return json.dumps({**(meta or {}), "results": rows}, indent=1, default=_json_default, allow_nan=False)


def _json_default(x):
    if isinstance(x, np.generic):
        return _num(x)
    return str(x)


def to_csv(results: list[Result]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in results:
        w.writerow({k: ("" if v is None else v) for k, v in r.row().items()})
    return buf.getvalue()


def _atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def build_meta() -> dict:
    """Version and commit of this build (commit from git when available, else "unknown")."""
    import subprocess

    from .._version import __version__

    commit = "unknown"
    try:
        root = Path(__file__).resolve().parents[2]
        cp = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if cp.returncode == 0:
            commit = cp.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD", "--", "tokenflow"],
                                   capture_output=True, timeout=10)
            if dirty.returncode == 1:  # the package differs from the commit: say so
                commit += "-dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"software": "tokenflow", "version": __version__, "commit": commit}


def write(results: list[Result], folder: Path, meta: dict | None = None) -> list[Path]:
    """Write ``results.json`` and ``results.csv`` into ``folder`` (each whole or not at all)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [r.id for r in results]
    if len(set(ids)) != len(ids):
        raise TokenflowError(f"duplicate result identifiers: {sorted({i for i in ids if ids.count(i) > 1})}")
    paths = [folder / "results.json", folder / "results.csv"]
    _atomic(paths[0], to_json(results, meta if meta is not None else build_meta()))
    _atomic(paths[1], to_csv(results))
    return paths


def bibtex(result: Result, meta: dict, key: str | None = None) -> str:
    """A BibTeX entry citing one result of this build (version, commit, result id)."""
    key = key or f"tokenflow{meta.get('version', '').replace('.', '')}{result.id}"
    commit = str(meta.get("commit", "unknown"))
    return (f"@misc{{{key},\n"
            f"  author       = {{{{tokenflow developers}}}},\n"
            f"  title        = {{tokenflow, result {result.id}: {result.title}}},\n"
            f"  howpublished = {{Software and book, version {meta.get('version', '')}, commit {commit[:12]}}},\n"
            f"  note         = {{Result {result.id} = {result.value} {result.unit} ({result.status}"
            f"{' on ' + result.status_on if result.status_on else ''}); results.json of the artifact}},\n"
            f"  year         = {{2026}}\n}}")
