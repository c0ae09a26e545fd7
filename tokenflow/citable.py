"""Citable results: one record per result of the book with a stable identifier, value and
unit, status (independent / conditional / calibrated, and on what), a-priori value, Monte
Carlo interval where the robustness chapter computed one, and the page that computes it.

Identifiers are stable across builds: ``C1``-``C4`` are the paper's claims (values from
:func:`tokenflow.claims.scorecard`), ``F1``-``F4`` the verdicts on the paper's figures, and
``B1``... the book's own findings beyond the paper.  Every value is computed when
:func:`collect` runs; nothing here is typed in.  :func:`write` writes ``results.json`` and
``results.csv`` (whole or not at all); ``tools/make_archive.py`` puts them at the top of
the artifact archive.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TokenflowError

STATUSES = ("independent", "conditional", "calibrated")
PAGES = {"C1": "transfer_vs_token", "C2": "transfer_vs_token", "C3": "latency", "C4": "us20_scaleup",
         "F1": "us20_scaleup", "F2": "us5_market", "F3": "us5_demand_growth", "F4": "transfer_vs_token",
         "B1": "us5_market", "B2": "transfer_vs_token", "B3": "us20_scaleup", "B4": "scorecard"}
CSV_FIELDS = ("id", "title", "value", "unit", "status", "status_on", "paper", "a_priori", "interval_low",
              "interval_high", "interval_note", "verdict", "page")


@dataclass
class Result:
    """One citable result.  ``value`` in ``unit``; ``status`` one of :data:`STATUSES`;
    ``status_on`` names what a calibrated or conditional result is calibrated or
    conditional on; ``interval`` is a (5 %, 95 %) Monte Carlo interval or None."""

    id: str
    title: str
    value: object
    unit: str
    status: str
    page: str
    status_on: str = ""
    paper: object = None
    a_priori: object = None
    interval: tuple[float, float] | None = None
    interval_note: str = ""
    verdict: str = ""
    detail: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise TokenflowError(f"result {self.id}: status must be one of {STATUSES}, got {self.status!r}")

    def row(self) -> dict:
        lo, hi = self.interval if self.interval else (None, None)
        return {"id": self.id, "title": self.title, "value": self.value, "unit": self.unit, "status": self.status,
                "status_on": self.status_on, "paper": self.paper, "a_priori": self.a_priori,
                "interval_low": lo, "interval_high": hi, "interval_note": self.interval_note,
                "verdict": self.verdict, "page": self.page}


def _num(x):
    """JSON-safe number (NaN/inf -> None), numpy scalars -> Python."""
    if isinstance(x, (np.generic,)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def claim_status(r) -> tuple[str, str]:
    """(status, on what) of a :class:`~tokenflow.claims.ClaimResult`; uses the result's own
    ``status`` where the claims module provides one."""
    own = getattr(r, "status", None)
    on_cal = [p for p in r.pinned_by if "calibrated on" in p]
    if isinstance(own, str) and own in STATUSES:
        return own, "; ".join(getattr(r, "conditional_on", []) or on_cal)
    if r.calibrated:
        return "calibrated", "; ".join(p for p in r.pinned_by if f"calibrated on {r.claim}" in p) or "; ".join(on_cal)
    if r.conditional_on:
        return "conditional", "; ".join(r.conditional_on)
    return "independent", ""


def monte_carlo(path: Path | None) -> dict[str, tuple[float, float, int]]:
    """5 %-95 % intervals of C2 and C3 from the robustness chapter's draws
    (``robustness_mc.nc``), if that file exists: claim -> (low, high, draws that clear)."""
    if path is None or not Path(path).is_file():
        return {}
    import xarray as xr

    with xr.open_dataset(path) as mc:
        ok = mc["status"] == "ok"
        out = {}
        for claim, var in (("C2", "c2_uplift_pct"), ("C3", "c3_rise_pct")):
            if var in mc:
                v = mc[var].where(ok, drop=True)
                if v.size:
                    lo, hi = float(v.quantile(0.05)), float(v.quantile(0.95))
                    # percentages within solver round-off of zero (1e-9 of the range) are zero
                    tiny = 1e-9 * max(abs(lo), abs(hi), 1.0)
                    lo, hi = (0.0 if abs(x) < tiny else x for x in (lo, hi))
                    out[claim] = (lo, hi, int(v.size))
        return out


def collect(*, claims=None, figures=None, mc_file: Path | None = None, scale: float | None = None) -> list[Result]:
    """Every citable result, computed now (claims from fresh solves unless ``claims``, a
    list of :class:`~tokenflow.claims.ClaimResult` with a-priori values, is given; the
    figure verdicts F1-F4 from :func:`tokenflow.claims.figure_verdicts` unless ``figures``,
    its output, is given: the same verdicts as the scorecard)."""
    from . import claims as cl
    from .market import solve
    from .scenario import load_scenario

    scale = cl.CASE_SCALE if scale is None else scale
    cards = claims if claims is not None else cl.scorecard()
    mc = monte_carlo(mc_file)
    out: list[Result] = []
    for r in cards:
        status, on = claim_status(r)
        iv = mc.get(r.claim)
        out.append(Result(
            r.claim, r.text, _num(r.reproduced), r.unit, status, PAGES[r.claim], on, _num(r.paper),
            _num(r.a_priori), (iv[0], iv[1]) if iv else None,
            f"5-95 % of {iv[2]} Monte Carlo draws that clear (robustness chapter)" if iv else "",
            "reproduced" if r.passed else "not reproduced", {"tolerance": r.tolerance}))
    by = {r.claim: r for r in cards}
    us5, us20 = load_scenario("us5"), load_scenario("us20")
    bw_on = "parameters.link_bandwidth_gbps (calibrated on C2)"

    # F1-F4: the verdicts on the paper's figures, exactly as the scorecard evaluates them
    figs = {v.figure: v for v in (figures if figures is not None else cl.figure_verdicts(us5, us20))}
    f_on = {"F1": bw_on, "F2": bw_on, "F3": "parameters.other_opex_usd_per_kwh (calibrated on C3); " + bw_on,
            "F4": bw_on}
    f_value = {
        "F1": (lambda d: _num(float(d["merit_order_spearman"])), "Spearman rho"),
        "F2": (lambda d: _num(100 * float(d["cheap_share"])), "% of tokens at the two cheapest nodes"),
        # a fall within the solver's round-off (the verdict's 1e-9 relative) is no fall
        "F3": (lambda d: _num(100 * float(d["largest_relative_step_down"])
                              if float(d["largest_relative_step_down"]) > 1e-9 else 0.0),
               "% (largest fall of a mean price between neighbouring demand scales, beyond round-off)"),
        "F4": (lambda d: int(d["saturated_every"]), "links saturated in every optimum"),
    }
    for f in ("F1", "F2", "F3", "F4"):
        if f not in figs:
            continue
        v = figs[f]
        value, unit = f_value[f][0](v.detail), f_value[f][1]
        out.append(Result(f, f"Figure {f[1]}: {cl.PAPER_FIGURES[f]['check']}", value, unit, "conditional",
                          PAGES[f], f_on[f], paper=_num(cl.PAPER_CLAIMS["C1"]["paper"]) if f == "F4" else None,
                          verdict=("agrees with" if v.agrees else "differs from")
                          + f" the paper's caption ({v.computed})",
                          detail={**{k: _num(x) if isinstance(x, (float, np.generic)) else x
                                     for k, x in v.detail.items()}, "agrees": bool(v.agrees)}))
    if "F2" in figs:
        d = figs["F2"].detail
        img, chat = 100 * float(d["image_local"]), 100 * float(d["chat_local"])
        out.append(Result("B1", f"Image tokens processed at their origin minus chat tokens processed at their origin "
                          f"(5 nodes, {scale:g}x; the paper's Figure 2 reads image as staying near demand)",
                          _num(img - chat), "percentage points", "conditional", PAGES["B1"], bw_on,
                          verdict="image stays nearer demand than chat" if img > chat
                          else "image does not stay nearer demand than chat",
                          detail={"local_share_pct": {"image": img, "chat": chat}}))

    # B2: the token-equivalent dispatch on the real payloads
    bl = solve(us5, transfer_aware=False, demand_scale=scale)
    phys = 100 * float(bl.dataset["link_utilization_physical"].max())
    out.append(Result("B2", "Busiest link's physical utilisation when the token-equivalent dispatch carries the "
                      f"real payloads (5 nodes, {scale:g}x)", _num(phys), "% of capacity", "conditional",
                      PAGES["B2"], bw_on, verdict="the baseline overloads links" if phys > 100 else
                      "the baseline fits the links"))

    # B3: the largest feasible demand scale of the 20-node case, and B4: C1 a priori
    if "C4" in by and "s_star" in by["C4"].detail:
        out.append(Result("B3", "Largest feasible demand scale s* of the 20-node case (exact, from an LP)",
                          _num(float(by["C4"].detail["s_star"])), "x base demand", "independent", PAGES["B3"],
                          verdict=f"market infeasible above s* ({by['C4'].detail.get('binding', '')})"))
    if "C1" in by and by["C1"].a_priori is not None:
        out.append(Result("B4", "Saturated links at 35x with every calibrated input at its a-priori value",
                          _num(by["C1"].a_priori), "links", "independent", PAGES["B4"],
                          paper=_num(cl.PAPER_CLAIMS["C1"]["paper"]),
                          verdict="C1 holds a priori" if by["C1"].a_priori == cl.PAPER_CLAIMS["C1"]["paper"]
                          else "C1 does not hold a priori"))
    return out


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
    rows = [{**r.row(), "detail": r.detail} for r in results]
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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def build_meta() -> dict:
    """Version and commit of this build (commit from git when available, else "unknown")."""
    import subprocess

    from . import __version__

    commit = "unknown"
    try:
        root = Path(__file__).resolve().parents[1]
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
