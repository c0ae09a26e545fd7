"""`make live-check`: the "Clear it yourself" page checked in headless Chromium, network off.

Drives ``window.tokenflowLive.solve(settings)`` for SETTINGS (more than 20 per network,
infeasible ones and every value of each live modelling choice included) and compares each
answer with ``tokenflow.solve(..., formulation="arc")`` (tools/export_live.py::reference):
objective and every price to 1e-6 relative, s* to 1e-6 relative, saturated links exactly,
infeasibility and unreachable demand alike; every modelling choice the scorecard reads and
``energy_accounting`` among them.  Then drives the hook with HOSTILE settings (issue 28: not
an object, unknown keys, wrong types, null, tiny scales, unknown choices, ``__proto__``):
each must be refused with tokenflow's own message (a ``ScenarioError`` in the page, the text
of :func:`export_live.check_settings`, which calls tokenflow's checks) or answered as
``tokenflow.solve`` answers.  Records the in-browser time of each hook call
(first call for the setting, s* included; the solver loaded beforehand) and fails when the
median is above 100 ms (us5) or 1 s (us20).  Fails too on any request that is not a local
file (the browser's proxy is a dead port).  Also compares with the default path formulation:
where the page certifies that its arc optimum is path-feasible (every route in use meets
its limit) it must equal ``tokenflow.solve(...)`` (path) too; elsewhere the difference is
reported.

By default the page is a standalone harness made from book/live.md's HTML and
book/_static/live/ (no book build needed); ``--html _build/html/book/live.html`` checks a
built book's page instead.  Writes _build/live/check_live.json.

Saturated links: where the optimal dispatch is not unique, different optimal vertices
saturate different links (tokenflow's own path and arc formulations then differ too); a
difference is accepted only for links whose load range at the optimal cost
(``Market.link_load_range``, exact) includes both "saturated" and "not saturated", and is
counted in the report.

Usage: python tools/check_live.py [--html PAGE] [--export] [--hostile-only]
(--export: re-run export_live first)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import export_live  # noqa: E402

from tokenflow.studies.claims import CASE_SCALE  # noqa: E402

REL = 1e-6
LIMIT_MS = {"us5": 100.0, "us20": 1000.0}


def settings_for(name: str) -> list[dict]:
    """The checked settings of scenario ``name`` (>= 20, infeasible ones and every choice value)."""
    S = []

    def add(**kw):
        S.append({"scenario": name, **kw})

    add()
    for s in (0.5, 5.0, 20.0, 35.0, 45.0):
        add(demand_scale=s)
    add(transfer_aware=False)
    add(transfer_aware=False, demand_scale=30.0, bandwidth_factor=0.05)
    for pd in ("request", "both"):
        for es in ("commercial", "industrial"):
            add(choices={"payload_direction": pd, "electricity_sector": es}, demand_scale=10.0, bandwidth_factor=0.02)
    add(latency_limits_ms={"chat": 30.0}, demand_scale=30.0)
    add(latency_limits_ms={"chat": 40.0, "code_review": 60.0}, demand_scale=15.0, bandwidth_factor=0.1)
    add(latency_limits_ms={"chat": 25.0, "image": 80.0}, demand_scale=5.0, electricity_factor=2.0)
    # congested with binding limits: the arc optimum uses a route beyond its limit, so the page
    # runs the path formulation's column generation (tokenflow's default LP)
    if name == "us5":
        add(latency_limits_ms={"chat": 40.0, "code_review": 95.0, "image": 92.0}, demand_scale=15.0,
            bandwidth_factor=0.046, choices={"payload_direction": "both"})
        add(latency_limits_ms={"chat": 32.0, "code_review": 109.0, "image": 53.0}, demand_scale=22.0,
            bandwidth_factor=0.43)
    else:
        add(latency_limits_ms={"chat": 25.0, "code_review": 100.0, "image": 50.0}, demand_scale=15.0,
            bandwidth_factor=0.5)
        add(latency_limits_ms={"chat": 32.0, "code_review": 100.0, "image": 50.0}, demand_scale=25.0,
            bandwidth_factor=0.5)
    add(bandwidth_factor=0.01, demand_scale=10.0)
    add(bandwidth_factor=3.0, demand_scale=40.0, electricity_factor=0.5)
    add(electricity_factor=3.0, demand_scale=20.0, choices={"electricity_sector": "industrial"})
    add(electricity_factor=0.1, demand_scale=2.0)
    # infeasible: beyond aggregate compute; starved links; every metro on its own (limits 0 ms)
    add(demand_scale=60.0)
    add(demand_scale=30.0, bandwidth_factor=0.003)
    add(demand_scale=10.0, bandwidth_factor=0.001, choices={"payload_direction": "both"})
    local = {"chat": 0.0, "image": 0.0, "code_review": 0.0, "batch_training": 0.0}
    add(latency_limits_ms=local, demand_scale=2.0)
    add(latency_limits_ms=local, demand_scale=40.0)
    add(latency_limits_ms={"chat": 0.0, "image": 0.0}, demand_scale=45.0, transfer_aware=False)
    # every modelling choice the scorecard reads, and energy accounting (the book's main finding:
    # with prefill energy counted, the paper's 35x case no longer clears)
    add(choices={"energy_accounting": "prefill_and_decode"}, demand_scale=CASE_SCALE)
    add(choices={"energy_accounting": "prefill_and_decode"}, demand_scale=10.0, bandwidth_factor=0.05)
    add(choices={"energy_accounting": "prefill_and_decode", "payload_direction": "both"}, demand_scale=12.0,
        bandwidth_factor=0.02, latency_limits_ms={"chat": 40.0})
    add(choices={"capacity_measure": "cbre_colocation"}, demand_scale=CASE_SCALE)
    add(choices={"capacity_measure": "cushman_wakefield"}, demand_scale=20.0, bandwidth_factor=0.05)
    add(choices={"baseline_payload": "mean_payload"}, transfer_aware=False, demand_scale=CASE_SCALE)
    add(choices={"baseline_payload": "mean_payload", "capacity_measure": "cushman_wakefield"},
        transfer_aware=False, demand_scale=10.0, bandwidth_factor=0.05)
    return S


# Hostile settings (issue 28, group 7): each must be refused with tokenflow's message
# (export_live.check_settings, which calls tokenflow's own checks) or answered as
# tokenflow.solve answers.  Not sent as JSON: a settings value None is null.
HOSTILE: list[tuple[str, object]] = [
    ("not an object: a scenario name", "us20"),
    ("not an object: a number", 42),
    ("not an object: a list", [30]),
    ("not an object: true", True),
    ("no settings (null): the defaults", None),
    ("typo in a key", {"demand_scal": 30}),
    ("a __proto__ key", {"__proto__": {"demand_scale": 5}}),
    ("transfer_aware as text", {"transfer_aware": "false"}),
    ("transfer_aware null", {"transfer_aware": None}),
    ("transfer_aware 0", {"transfer_aware": 0}),
    ("latency null", {"latency_limits_ms": {"chat": None}}),
    ("latency empty text", {"latency_limits_ms": {"chat": ""}}),
    ("latency negative", {"latency_limits_ms": {"chat": -5}}),
    ("latency of an unknown workload", {"latency_limits_ms": {"chatt": 30}}),
    ("latency limits as a list", {"latency_limits_ms": [30]}),
    ("latency limits null: no overrides", {"latency_limits_ms": None, "demand_scale": 20}),
    ("demand_scale true", {"demand_scale": True}),
    ("demand_scale as text", {"demand_scale": "35"}),
    ("demand_scale negative", {"demand_scale": -1}),
    ("demand_scale 1e-300 (us5)", {"demand_scale": 1e-300}),
    ("demand_scale 1e-300 (us20, arc)", {"scenario": "us20", "demand_scale": 1e-300, "formulation": "arc"}),
    ("demand_scale 0", {"demand_scale": 0}),
    ("demand_scale partly below resolution", {"demand_scale": 5e-7}),
    ("demand_scale 1e300", {"demand_scale": 1e300}),
    ("choices as text", {"choices": "both"}),
    ("choices null", {"choices": None}),
    ("unknown choice", {"choices": {"foo": "x"}}),
    ("unknown choice value", {"choices": {"payload_direction": "sideways"}}),
    ("choice value not text", {"choices": {"energy_accounting": 1}}),
    ("energy_accounting prefill_and_decode at 35x", {"choices": {"energy_accounting": "prefill_and_decode"},
                                                     "demand_scale": 35}),
    ("energy_accounting prefill_and_decode at 10x, arc", {"choices": {"energy_accounting": "prefill_and_decode"},
                                                          "demand_scale": 10, "formulation": "arc"}),
    ("a __proto__ workload", {"latency_limits_ms": {"__proto__": 5}}),
    ("a constructor choice", {"choices": {"constructor": "request"}}),
    ("scenario __proto__", {"scenario": "__proto__"}),
    ("scenario constructor", {"scenario": "constructor"}),
    ("scenario toString", {"scenario": "toString"}),
    ("scenario a number", {"scenario": 42}),
    ("scenario in capitals", {"scenario": "US5"}),
    ("formulation unknown", {"formulation": "both"}),
    ("formulation null", {"formulation": None}),
    ("bandwidth_factor 0", {"bandwidth_factor": 0}),
    ("electricity_factor as text", {"electricity_factor": "2"}),
    ("a small negative scale (Python's float repr)", {"demand_scale": -0.00005}),
    ("a fractional negative latency", {"latency_limits_ms": {"chat": -2.5, "image": 1e-7 - 1}}),
    ("a scenario name with a quote", {"scenario": "it's"}),
    ("several problems at once", {"bandwidth_factor": -1, "demand_scale": "x", "typo": 1,
                                  "latency_limits_ms": {"chat": None, "image": "1"}}),
]


def expected(settings: object) -> dict:
    """What the page must do with ``settings``: {"refused": tokenflow's message} or the
    package's answer (tools/export_live.py::reference)."""
    from tokenflow.core.errors import ScenarioError

    try:
        export_live.check_settings(settings)
    except ScenarioError as exc:
        return {"refused": str(exc)}
    return safe_reference(settings)


def judge(page: dict, exp: dict) -> list[str]:
    """Problems with the page's handling of one hostile setting (empty = clean)."""
    if "refused" in exp:
        if page.get("ok"):
            return [f"answered where tokenflow refuses ({exp['refused']!r})"]
        if page.get("name") != "ScenarioError":
            return [f"refused with a {page.get('name')} ({page.get('error')!r}), not a ScenarioError"]
        if page.get("error") != exp["refused"]:
            return [f"message {page.get('error')!r}, tokenflow's {exp['refused']!r}"]
        return []
    if not page.get("ok"):
        return [f"refused ({page.get('name')}: {page.get('error')!r}) where tokenflow answers"]
    r = page["r"]
    if isinstance(r.get("max_scale"), str):
        r["max_scale"] = float(r["max_scale"])
    return compare(r, exp)[0]


HOOK_JS = """
const done = arguments[arguments.length - 1];
const settings = arguments[0];
window.tokenflowLive.ready().then(() => {
  const t0 = performance.now();
  return window.tokenflowLive.solve(settings).then(r => {
    const ms = performance.now() - t0;
    done({ok: true, ms: ms, r: JSON.parse(JSON.stringify(r, (k, v) =>
      (typeof v === 'number' && !isFinite(v)) ? String(v) : v))});
  });
}).catch(e => done({ok: false, name: String(e && e.name), error: String(e && e.message || e)}));
"""

# the settings travel as JSON text and are parsed in the page (so that a "__proto__" key is
# an own key, as JSON.parse makes it, and null stays null)
HOSTILE_JS = HOOK_JS.replace("const settings = arguments[0];", "const settings = JSON.parse(arguments[0]);")


# the page's state, read in the browser: status line, map labels and markers (screen boxes),
# widths of the page's block and of the decomposition table, what the result area holds
UI_STATE_JS = """
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const root = document.getElementById('tokenflow-live'), svg = document.getElementById('tfl-map');
const table = document.getElementById('tfl-decomp-table');
return {status: document.getElementById('tfl-status').textContent,
        status_class: document.getElementById('tfl-status').className,
        demand: document.getElementById('tfl-demand').value,
        labels: Array.from(document.querySelectorAll('#tfl-map .tfl-label')).map(e => [e.textContent, box(e)]),
        nodes: Array.from(document.querySelectorAll('#tfl-map .tfl-node')).map(box),
        map_children: svg.childElementCount, map_shown: svg.style.display !== 'none',
        column: root.clientWidth, page_width: root.scrollWidth,
        table_width: table ? table.scrollWidth : null, table_rows: table ? table.rows.length : 0,
        headers: table ? Array.from(table.rows[0].cells).map(c => c.textContent) : []};
"""

# change a control and wait until the page has solved again (the status line changes)
UI_SET_JS = """
const done = arguments[arguments.length - 1], [id, value] = [arguments[0], arguments[1]];
const st = document.getElementById('tfl-status'), before = st.textContent + '|' + st.className;
const e = document.getElementById(id);
e.value = value; e.dispatchEvent(new Event('change'));
const t0 = Date.now();
(function wait() {
  if (st.textContent + '|' + st.className !== before || Date.now() - t0 > 30000) done(true);
  else setTimeout(wait, 20);
})();
"""


def overlaps(boxes: list[list[float]], others: list[list[float]] | None = None) -> int:
    """Pairs of screen boxes [left, top, right, bottom] that overlap (within ``boxes``, or
    between ``boxes`` and ``others``)."""
    def hit(a, b):
        return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5
    if others is None:
        return sum(hit(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    return sum(hit(a, b) for a in boxes for b in others)


def ui_problems(state: dict, name: str) -> list[str]:
    """What is wrong with the page as drawn for network ``name`` (labels, widths, table)."""
    probs = []
    boxes = [b for _, b in state["labels"]]
    if not boxes:
        probs.append(f"{name}: no map labels")
    if overlaps(boxes):
        probs.append(f"{name}: {overlaps(boxes)} pairs of map labels overlap")
    if overlaps(boxes, state["nodes"]):
        probs.append(f"{name}: {overlaps(boxes, state['nodes'])} map labels cover a metro's marker")
    if state["page_width"] > state["column"]:
        probs.append(f"{name}: the page is {state['page_width']} px wide in a {state['column']} px column")
    if state["table_width"] is None or state["table_width"] > state["column"]:
        probs.append(f"{name}: decomposition table {state['table_width']} px in a {state['column']} px column")
    if any("_" in h for h in state["headers"]) or not all(
            "$/B tokens" in h for h in state["headers"][1:6]):
        probs.append(f"{name}: decomposition headers {state['headers']} (words, with units)")
    return probs


def check_ui(driver) -> tuple[list[str], dict]:
    """The page as a reader meets it: opens at the paper's case (CASE_SCALE) with a result;
    map labels that overlap neither each other nor the markers and a decomposition table
    that fits the column, for each network; the energy-accounting control clears as
    tokenflow does; an invalid input removes the old map and table and shows tokenflow's
    message where the result was."""
    probs, out = [], {}
    st = driver.execute_script(UI_STATE_JS)
    out["opens_at"] = st["demand"]
    if float(st["demand"] or "nan") != CASE_SCALE:
        probs.append(f"the page opens at demand scale {st['demand']!r}, not the paper's case {CASE_SCALE:g}")
    if not st["status"].startswith("Total cost"):
        probs.append(f"page status line at opening: {st['status']!r}")
    for name in export_live.SCENARIOS:
        driver.execute_async_script(UI_SET_JS, "tfl-scenario", name)
        st = driver.execute_script(UI_STATE_JS)
        probs += ui_problems(st, name)
        out[name] = {"labels": len(st["labels"]), "label_overlaps": overlaps([b for _, b in st["labels"]]),
                     "column_px": st["column"], "page_px": st["page_width"], "table_px": st["table_width"]}
    driver.execute_async_script(UI_SET_JS, "tfl-scenario", "us5")
    driver.execute_async_script(UI_SET_JS, "tfl-energy_accounting", "prefill_and_decode")
    st = driver.execute_script(UI_STATE_JS)
    ref = safe_reference({"scenario": "us5", "demand_scale": CASE_SCALE,
                          "choices": {"energy_accounting": "prefill_and_decode"}})
    m = re.search(r"s\* = ([0-9.,]+)", st["status"])
    shown = float(m.group(1).replace(",", "")) if m else float("nan")
    out["energy_accounting"] = {"status": st["status"], "tokenflow_s_star": ref.get("max_scale")}
    if not (ref.get("infeasible") == ("tfl-infeasible" in st["status_class"])
            and abs(shown - ref["max_scale"]) <= 1e-3 * ref["max_scale"]):
        probs.append(f"energy accounting prefill_and_decode at {CASE_SCALE:g}x: page {st['status']!r}, tokenflow "
                     f"infeasible={ref.get('infeasible')} s*={ref.get('max_scale')}")
    driver.execute_async_script(UI_SET_JS, "tfl-energy_accounting", "generated_only")
    driver.execute_async_script(UI_SET_JS, "tfl-demand", "")
    st = driver.execute_script(UI_STATE_JS)
    msg = expected({"demand_scale": None}).get("refused", "?")
    out["invalid_input"] = {"status": st["status"], "map_children": st["map_children"], "table_rows": st["table_rows"]}
    if msg not in st["status"] or "tfl-error" not in st["status_class"]:
        probs.append(f"invalid input: status {st['status']!r}, expected tokenflow's {msg!r}")
    if st["map_children"] or st["map_shown"] or st["table_rows"]:
        probs.append("invalid input: the previous map or table is still shown")
    driver.execute_async_script(UI_SET_JS, "tfl-demand", str(CASE_SCALE))
    return probs, out


def harness(out: Path) -> Path:
    """A standalone copy of the page: book/live.md's raw HTML + book/_static/live/."""
    md = (ROOT / "book" / "live.md").read_text()
    blocks = re.findall(r"```\{raw\} html\n(.*?)```", md, flags=re.S)
    if not blocks:
        raise SystemExit("book/live.md has no raw html block")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "book" / "_static" / "live", out / "_static" / "live")
    page = out / "book" / "live.html"
    page.parent.mkdir(parents=True)
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>Clear it yourself (harness)"
                    "</title></head><body><main style='max-width:676px'>" + "\n".join(blocks) +  # the book's column
                    "</main></body></html>\n")
    return page


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def compare(page_r: dict, ref: dict) -> tuple[list[str], dict]:
    """Problems (empty = equal) and the differences measured."""
    probs, d = [], {}
    if ref.get("unreachable"):
        if not page_r.get("infeasible") or not page_r.get("unreachable"):
            probs.append("tokenflow reports unreachable demand, the page does not")
        return probs, d
    if bool(ref.get("infeasible")) != bool(page_r.get("infeasible")):
        probs.append(f"infeasible: page {page_r.get('infeasible')}, tokenflow {ref.get('infeasible')}")
        return probs, d
    d["max_scale"] = rel_diff(float(page_r["max_scale"]), ref["max_scale"])
    if d["max_scale"] > REL:
        probs.append(f"s*: page {page_r['max_scale']}, tokenflow {ref['max_scale']}")
    if ref.get("infeasible"):
        return probs, d
    d["objective"] = rel_diff(page_r["objective"], ref["objective"])
    if d["objective"] > REL:
        probs.append(f"objective: page {page_r['objective']!r}, tokenflow {ref['objective']!r}")
    d["prices"] = max(rel_diff(page_r["prices"][n][w], p) for n, row in ref["prices"].items() for w, p in row.items())
    if d["prices"] > REL:
        probs.append(f"prices differ by {d['prices']:.3g} (relative)")
    if sorted(page_r["saturated_links"]) != ref["saturated_links"]:
        probs.append(f"saturated links: page {page_r['saturated_links']}, tokenflow {ref['saturated_links']}")
    return probs, d


def alternative_optimum(st: dict, form: str, page: dict, ref: dict) -> bool:
    """True when the page and tokenflow name different saturated links only because the
    optimal dispatch is not unique: every link in one set but not the other can be both
    saturated and not saturated at the optimal cost (Market.link_load_range)."""
    import tokenflow as tf

    diff = sorted(set(page["saturated_links"]) ^ set(ref["saturated_links"]))
    s, kw = export_live.scenario_of(st)
    m = tf.Market(s, formulation=form, transfer_aware=kw["transfer_aware"], latency_limits_ms=kw["latency_limits_ms"])
    rng = m.link_load_range(diff, demand_scale=kw["demand_scale"])
    # exact, or (path formulation with binding limits) over the routes column generation found:
    # an inner approximation of the true range, so "not unique" there is not unique for sure
    return all(float(rng["max_utilization"].sel(link=lk)) >= 1 - 1e-6 > float(rng["min_utilization"].sel(link=lk))
               for lk in diff)


def safe_reference(st: dict, formulation: str = "arc") -> dict:
    from tokenflow.core.errors import ScenarioError

    try:
        return export_live.reference(st, formulation=formulation)
    except ScenarioError as exc:
        if "unreachable demand" in str(exc):
            return {"unreachable": True, "message": str(exc)}
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, help="a built live.html (default: a standalone harness)")
    ap.add_argument("--export", action="store_true", help="re-export live_data.js first")
    ap.add_argument("--hostile-only", action="store_true", help="only the hostile settings (quick)")
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "live" / "check_live.json")
    a = ap.parse_args(argv)
    if a.export:
        export_live.write(export_live.DEFAULT_OUT)
    page = a.html.resolve() if a.html else harness(ROOT / "_build" / "live" / "harness")
    from check_book import chromium, network_requests

    driver = chromium(log_network=True)
    driver.set_script_timeout(120)
    problems, rows, hostile, ui = [], [], [], {}
    load_ms = None
    try:
        driver.get(page.as_uri())
        # time from navigation start until the solver is ready (wasm decoded and compiled)
        load_ms = driver.execute_async_script(
            "const done = arguments[arguments.length - 1], t0 = Date.now();"
            "(function wait() { if (window.tokenflowLive) {"
            "  window.tokenflowLive.ready().then(() => done(performance.now()), e => done(null));"
            "} else if (Date.now() - t0 > 60000) { done(null); } else { setTimeout(wait, 20); } })();")
        for name in () if a.hostile_only else export_live.SCENARIOS:
            for st in settings_for(name):
                row = {"settings": st}
                probs = []
                for form in ("path", "arc"):  # path: tokenflow.solve's default; timed
                    res = driver.execute_async_script(HOOK_JS, {**st, "formulation": form})
                    ref = safe_reference(st, form)
                    if not res.get("ok"):
                        probs.append(f"{form}: hook failed: {res.get('error')}")
                        continue
                    r = res["r"]
                    if isinstance(r.get("max_scale"), str):
                        r["max_scale"] = float(r["max_scale"])
                    p, d = compare(r, ref)
                    if p and p[-1].startswith("saturated links") and alternative_optimum(st, form, r, ref):
                        row.setdefault("alternative_optima", []).append(form)
                        p = p[:-1]
                    probs += [f"{form}: {x}" for x in p]
                    row[form] = {"ms": res["ms"], "diff": d, "infeasible": bool(r.get("infeasible")),
                                 "how": r.get("how"), "max_scale_how": r.get("max_scale_how")}
                row["ms"] = row.get("path", {}).get("ms")
                row["infeasible"] = row.get("path", {}).get("infeasible", False)
                row["problems"] = probs
                problems += [f"{name} {json.dumps(st)}: {p}" for p in probs]
                rows.append(row)
        for label, st in HOSTILE:
            res = driver.execute_async_script(HOSTILE_JS, json.dumps(st))
            exp = expected(st)
            probs = judge(res, exp)
            hostile.append({"case": label, "settings": st, "expected": "refused" if "refused" in exp else "answered",
                            "page": "answered" if res.get("ok") else f"refused ({res.get('name')})",
                            "message": res.get("error"), "problems": probs})
            problems += [f"hostile {label} {json.dumps(st)}: {p}" for p in probs]
        ui_problems, ui = check_ui(driver)
        problems += ui_problems
        local = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")
        bad = [u for u in network_requests(driver) if not u.startswith(local)]
        if bad:
            problems.append(f"requests that left the page: {bad[:5]}")
    finally:
        driver.quit()
    summary = {}
    for name in export_live.SCENARIOS:
        mine = [r for r in rows if r["settings"]["scenario"] == name]
        ms = [r["ms"] for r in mine if r["ms"] is not None]
        med = statistics.median(ms) if ms else float("nan")
        summary[name] = {"settings": len(mine), "infeasible": sum(r["infeasible"] for r in mine),
                         "median_ms": med, "max_ms": max(ms) if ms else None}
        for form in ("path", "arc"):
            diffs = [r.get(form, {}).get("diff", {}) for r in mine]
            summary[name][form] = {
                "max_rel_objective": max((d.get("objective", 0.0) for d in diffs), default=0.0),
                "max_rel_price": max((d.get("prices", 0.0) for d in diffs), default=0.0),
                "max_rel_max_scale": max((d.get("max_scale", 0.0) for d in diffs), default=0.0),
                "column_generation": sum("column" in str(r.get(form, {}).get("how")) for r in mine),
                "column_generation_s_star": sum("column" in str(r.get(form, {}).get("max_scale_how")) for r in mine),
                "alternative_optima": sum(form in r.get("alternative_optima", []) for r in mine)}
        if mine and not med <= LIMIT_MS[name]:
            problems.append(f"{name}: median in-browser solve {med:.1f} ms > {LIMIT_MS[name]:g} ms")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=a.out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"page": str(page), "solver_ready_ms": load_ms, "summary": summary, "problems": problems,
                   "rows": rows, "hostile": hostile, "ui": ui}, f, indent=1)
    os.replace(tmp, a.out)
    for name, s in summary.items():
        if not s["settings"]:
            continue
        print(f"{name}: {s['settings']} settings ({s['infeasible']} infeasible), median {s['median_ms']:.1f} ms "
              f"(max {s['max_ms']:.1f}) per path-formulation solve")
        for form in ("path", "arc"):
            f = s[form]
            print(f"  {form}: max rel diff objective {f['max_rel_objective']:.2g}, prices {f['max_rel_price']:.2g}, "
                  f"s* {f['max_rel_max_scale']:.2g}; column generation in {f['column_generation']} (s*: "
                  f"{f['column_generation_s_star']}); "
                  f"saturated sets differing only between alternative optimal dispatches: {f['alternative_optima']}")
    n_ref = sum(h["expected"] == "refused" for h in hostile)
    print(f"hostile settings: {len(hostile)} ({n_ref} refused by tokenflow, {len(hostile) - n_ref} answered); "
          f"handled as tokenflow does: {sum(not h['problems'] for h in hostile)}")
    if ui:
        print(f"page opens at s = {ui.get('opens_at')}; " + "; ".join(
            f"{n}: {u['labels']} map labels, {u['label_overlaps']} overlapping, table {u['table_px']} px in a "
            f"{u['column_px']} px column" for n, u in ui.items() if isinstance(u, dict) and "labels" in u))
    print(f"solver ready {load_ms:.0f} ms after navigation" if load_ms is not None else "solver did not load")
    for p in problems:
        print("PROBLEM:", p)
    print("live check:", "FAILED" if problems else "ok", f"({a.out})")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
