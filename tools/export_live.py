"""Export what the "Clear it yourself" page needs to re-clear the market in the browser.

The page (book/live.md, book/_static/live/live.js) solves the package's LP with HiGHS
compiled to WebAssembly: the *arc* formulation (:mod:`tokenflow.lp.arc`), and the default
*path* formulation from the same numbers (the arc optimum when its flows decompose into
routes within their latency limits, else column generation over routes; live.js).  This
tool writes, for each
scenario (us5, us20) and each combination of ``transfer_aware`` x every modelling choice
(:data:`tokenflow.scenarios.choices.CHOICES`: payload direction, electricity sector, baseline payload,
capacity measure, energy accounting), the numbers of :func:`tokenflow.lp.inputs.build_inputs`
the LP is made of (each distinct array once, in a pool the variants point into), split by
the page's controls:

* processing cost ($/M tokens) = ``energy[n, k] * electricity_factor + other[n, k]``
  (``energy`` = PUE x electricity price x kWh per M tokens, the part an electricity-price
  multiplier scales);
* link capacity (GB/h) = ``arc_capacity_gbh * bandwidth_factor``;
* balance right-hand side (M tokens/h) = ``demand_scale * base_demand``;
* latency limits: the shortest one-way latency between every pair of nodes (``dist``, the
  same Dijkstra as :class:`tokenflow.lp.arc.ArcStructure`), from which the page rebuilds the
  commodities and their allowed arcs and nodes exactly as ``ArcStructure`` does.

:func:`arc_lp` rebuilds the LP from the export in Python, line for line what live.js
does; ``tests/test_live_export.py`` solves it with highspy and compares with
``tokenflow.solve(..., formulation="arc")``.

Usage: ``python tools/export_live.py [OUT.js]`` (default book/_static/live/live_data.js).
The file appears whole or not at all.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tokenflow import load_scenario  # noqa: E402
from tokenflow.clearing.rules import DEMAND_RESOLUTION  # noqa: E402
from tokenflow.core.errors import ScenarioError  # noqa: E402
from tokenflow.lp.arc import ArcStructure  # noqa: E402
from tokenflow.lp.inputs import build_inputs, check_bool, check_formulation, check_number, per_workload  # noqa: E402
from tokenflow.lp.model import LPArrays  # noqa: E402
from tokenflow.lp.routes import LAT_TOL  # noqa: E402
from tokenflow.publish.plotting import short_name  # noqa: E402
from tokenflow.publish.style import WORKLOAD_COLORS, WORKLOAD_LABELS  # noqa: E402
from tokenflow.scenarios.choices import CHOICE_DOCS, CHOICES, check_choices  # noqa: E402
from tokenflow.studies.claims import CASE_SCALE  # noqa: E402

SCENARIOS = ("us5", "us20")
LIVE_CHOICES = tuple(CHOICES)  # every modelling choice (the scorecard's and energy_accounting)
DEFAULT_OUT = ROOT / "book" / "_static" / "live" / "live_data.js"
# the arrays of build_inputs that differ between variants (pooled) and those that must not
VARIANT_FIELDS = ("fwd_gb", "rev_gb", "intensity", "energy_cost", "other_cost", "capacity_kw", "base_demand")
# the keys of the page's settings (window.tokenflowLive.solve), in the order they are checked
SETTING_KEYS = ("scenario", "formulation", "transfer_aware", "latency_limits_ms", "choices", "demand_scale",
                "bandwidth_factor", "electricity_factor")


def variant_key(transfer_aware: bool, choices: dict[str, str]) -> str:
    """Key of one variant: ``ta=1|payload_direction=request|electricity_sector=commercial|...``
    (every choice of :data:`LIVE_CHOICES`, in that order)."""
    return "|".join([f"ta={int(bool(transfer_aware))}"] + [f"{c}={choices[c]}" for c in LIVE_CHOICES])


def variant(sc: dict, key: str) -> dict:
    """The arrays of variant ``key`` of an exported scenario (resolved from its pool)."""
    return {f: sc["pool"][f][i] for f, i in sc["variants"][key].items()}


def _list(a: np.ndarray) -> list:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(a, dtype=float).reshape(-1)]


def export_scenario(name: str) -> dict:
    """Everything the page needs for scenario ``name`` (plain JSON types)."""
    s = load_scenario(name)
    base = build_inputs(s)
    st = ArcStructure(base)
    links = s.links
    out = {
        "name": name,
        "nodes": list(base.node_ids),
        "node_names": [str(v) for v in s.nodes["name"]] if "name" in s.nodes else list(base.node_ids),
        "short_names": [short_name(n) for n in base.node_ids],  # the figures' labels
        "lon": _list(s.nodes["lon"]), "lat": _list(s.nodes["lat"]),
        "workloads": list(base.workload_ids),
        "latency_ms": _list(base.latency_ms),
        "links": [f"{a}--{b}" for a, b in zip(links["a"], links["b"])],
        "arc_ids": list(base.link_ids),
        "au": [int(v) for v in base.au], "av": [int(v) for v in base.av],
        "arc_latency_ms": _list(base.arc_latency_ms),
        "arc_cost": _list(base.arc_cost),
        "arc_capacity_gbh": _list(base.arc_capacity_gbh),
        "dist": [_list(row) for row in st.dist],  # None = unreachable
        "lat_tol": LAT_TOL,
        "defaults": {"demand_scale": 1.0, "transfer_aware": True, "bandwidth_factor": 1.0,
                     "electricity_factor": 1.0,
                     "latency_limits_ms": {k: float(v) for k, v in zip(base.workload_ids, base.latency_ms)},
                     "choices": {c: s.choices[c] for c in LIVE_CHOICES}},
        "pool": {f: [] for f in VARIANT_FIELDS},
        "variants": {},
    }
    seen: dict[str, dict[str, int]] = {f: {} for f in VARIANT_FIELDS}
    for ta in (True, False):
        for values in itertools.product(*(CHOICES[c] for c in LIVE_CHOICES)):
            ch = dict(zip(LIVE_CHOICES, values))
            inp = build_inputs(s.with_choices(**ch), transfer_aware=ta)
            for f in ("arc_capacity_gbh", "arc_cost", "latency_ms"):  # exported once: must not vary
                if not np.array_equal(getattr(inp, f), getattr(base, f)):
                    raise SystemExit(f"{name}: {f} depends on the choices {ch}; export it per variant")
            arrays = {
                "fwd_gb": _list(inp.fwd_gb), "rev_gb": _list(inp.rev_gb), "intensity": _list(inp.intensity),
                "energy_cost": _list(inp.energy_cost),  # N*K row-major, scales with electricity_factor
                "other_cost": _list(inp.proc_cost - inp.energy_cost),  # N*K, does not
                "capacity_kw": _list(inp.capacity_kw), "base_demand": _list(inp.base_demand),
            }
            ref = {}
            for f, arr in arrays.items():
                k = json.dumps(arr)
                if k not in seen[f]:
                    seen[f][k] = len(out["pool"][f])
                    out["pool"][f].append(arr)
                ref[f] = seen[f][k]
            out["variants"][variant_key(ta, ch)] = ref
    return out


def export_all() -> dict:
    return {"format": 2, "formulation": "arc", "case_scale": CASE_SCALE, "demand_resolution": DEMAND_RESOLUTION,
            "choices": {c: list(CHOICES[c]) for c in LIVE_CHOICES}, "setting_keys": list(SETTING_KEYS),
            "choice_docs": {c: {v: CHOICE_DOCS[c][v] for v in CHOICES[c]} for c in LIVE_CHOICES},
            "workload_labels": dict(WORKLOAD_LABELS), "workload_colors": dict(WORKLOAD_COLORS),
            "scenarios": {n: export_scenario(n) for n in SCENARIOS}}


def write(path: Path) -> Path:
    data = export_all()
    text = ("// generated by tools/export_live.py from the tokenflow package; do not edit\n"
            "window.TOKENFLOW_LIVE_DATA = " + json.dumps(data, separators=(",", ":")) + ";\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".live_data.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def load(path: Path = DEFAULT_OUT) -> dict:
    """Read an exported file back (the JSON after ``window.TOKENFLOW_LIVE_DATA =``)."""
    text = Path(path).read_text()
    return json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))


# ---------------------------------------------------------------------- the LP, as live.js builds it

def settings_of(sc: dict, settings: dict) -> dict:
    """``settings`` with the scenario's defaults filled in (names of tokenflow.solve)."""
    d = sc["defaults"]
    lat = dict(d["latency_limits_ms"])
    lat.update(settings.get("latency_limits_ms") or {})
    ch = dict(d["choices"])
    ch.update(settings.get("choices") or {})
    return {"demand_scale": float(settings.get("demand_scale", d["demand_scale"])),
            "transfer_aware": bool(settings.get("transfer_aware", d["transfer_aware"])),
            "bandwidth_factor": float(settings.get("bandwidth_factor", d["bandwidth_factor"])),
            "electricity_factor": float(settings.get("electricity_factor", d["electricity_factor"])),
            "latency_limits_ms": lat, "choices": ch}


def structure(sc: dict, lat_ms: np.ndarray, has_cap: np.ndarray) -> dict:
    """Commodities and their allowed arcs/nodes: ArcStructure's rules on the exported ``dist``."""
    N, K = len(sc["nodes"]), len(sc["workloads"])
    dist = np.array([[np.inf if v is None else v for v in row] for row in sc["dist"]])
    au, lat = np.array(sc["au"]), np.array(sc["arc_latency_ms"])
    A, tol = len(au), sc["lat_tol"]
    reach = dist[:, has_cap]
    fin = reach[np.isfinite(reach)]
    com = []
    for k in range(K):
        if np.all(2 * fin <= lat_ms[k] + tol):
            com.append((k, -1))
        else:
            com += [(k, o) for o in range(N)]
    f_c, f_a, y_c, y_n, r_c, r_n = [], [], [], [], [], []
    for ci, (k, o) in enumerate(com):
        if o < 0:
            arcs, nodes = np.arange(A), np.arange(N)
        else:
            d = dist[o]
            arcs = np.nonzero(2 * (d[au] + lat) <= lat_ms[k] + tol)[0]
            nodes = np.nonzero(2 * d <= lat_ms[k] + tol)[0]
        pn = nodes[has_cap[nodes]]
        f_c += [ci] * len(arcs)
        f_a += list(arcs)
        y_c += [ci] * len(pn)
        y_n += list(pn)
        r_c += [ci] * len(nodes)
        r_n += list(nodes)
    row_of = np.full((len(com), N), -1, dtype=np.int64)
    row_of[r_c, r_n] = np.arange(len(r_c))
    cidx = {c: i for i, c in enumerate(com)}
    origin_row = np.array([[row_of[cidx.get((k, -1), cidx.get((k, n)))][n] for k in range(K)] for n in range(N)])
    return {"com": com, "f_c": np.array(f_c, dtype=np.int64), "f_a": np.array(f_a, dtype=np.int64),
            "y_c": np.array(y_c, dtype=np.int64), "y_n": np.array(y_n, dtype=np.int64),
            "nb": len(r_c), "row_of": row_of, "origin_row": origin_row}


def arc_lp(sc: dict, settings: dict, max_scale: bool = False) -> tuple[LPArrays, dict]:
    """The arc LP of ``settings`` from the export (no unserved columns: the page has no
    value of lost load).  Columns: [scale column if max_scale], arc flows, processing.
    Rows: balance, compute, bandwidth.  Returns (arrays, structure)."""
    st_ = settings_of(sc, settings)
    v = variant(sc, variant_key(st_["transfer_aware"], st_["choices"]))
    N, K = len(sc["nodes"]), len(sc["workloads"])
    L = len(sc["au"])
    cap = np.array(v["capacity_kw"])
    lat_ms = np.array([st_["latency_limits_ms"][w] for w in sc["workloads"]])
    s = structure(sc, lat_ms, cap > 0)
    k_f = np.array([s["com"][c][0] for c in s["f_c"]], dtype=np.int64)
    k_y = np.array([s["com"][c][0] for c in s["y_c"]], dtype=np.int64)
    au, av = np.array(sc["au"]), np.array(sc["av"])
    fwd, rev, g = np.array(v["fwd_gb"]), np.array(v["rev_gb"]), np.array(v["intensity"])
    nb, nf, ny = s["nb"], len(s["f_c"]), len(s["y_c"])
    B = nb + N
    rhs = np.zeros(nb)
    base = np.array(v["base_demand"]).reshape(N, K)
    rhs[s["origin_row"].reshape(-1)] = base.reshape(-1)
    cols_rows, cols_vals = [], []
    if max_scale:
        dmax = float(base.max()) or 1.0
        nz = np.nonzero(rhs)[0]
        cols_rows.append(list(nz)), cols_vals.append(list(-rhs[nz] / dmax))
    has_rev = bool(np.any(rev != 0))
    for i in range(nf):
        a, c, k = s["f_a"][i], s["f_c"][i], k_f[i]
        ent = {s["row_of"][c, au[a]]: 1.0, s["row_of"][c, av[a]]: -1.0, B + a: fwd[k]}
        if has_rev:
            ent[B + (a ^ 1)] = rev[k]
        keys = sorted(ent)
        cols_rows.append(keys), cols_vals.append([ent[r] for r in keys])
    for i in range(ny):
        cols_rows.append([s["row_of"][s["y_c"][i], s["y_n"][i]], nb + s["y_n"][i]])
        cols_vals.append([1.0, g[k_y[i]]])
    arc_cost = np.array(sc["arc_cost"])
    if max_scale:
        cost = np.r_[-1.0 / dmax, np.zeros(nf + ny)]
        bal = np.zeros(nb)
    else:
        fcost = fwd[k_f] * arc_cost[s["f_a"]] + rev[k_f] * arc_cost[s["f_a"] ^ 1]
        proc = (np.array(v["energy_cost"]) * st_["electricity_factor"] + np.array(v["other_cost"])).reshape(N, K)
        cost = np.r_[fcost, proc[s["y_n"], k_y]]
        bal = st_["demand_scale"] * rhs
    n_cols = len(cost)
    indptr = np.r_[0, np.cumsum([len(r) for r in cols_rows])].astype(np.int64)
    wts = np.r_[fwd, rev]
    wmax = float(wts.max()) if wts.max() > 0 else 1.0
    row_scale = np.r_[np.ones(nb), np.full(N, 1.0 / float(g.max())), np.full(L, 1.0 / wmax)]
    arr = LPArrays(cost=cost, col_lb=np.zeros(n_cols), col_ub=np.full(n_cols, np.inf),
                   row_lb=np.r_[bal, np.full(N + L, -np.inf)],
                   row_ub=np.r_[bal, cap, np.array(sc["arc_capacity_gbh"]) * st_["bandwidth_factor"]],
                   indptr=indptr, indices=np.concatenate([np.asarray(r, dtype=np.int32) for r in cols_rows]),
                   data=np.concatenate([np.asarray(x, dtype=float) for x in cols_vals]), row_scale=row_scale)
    s.update(k_f=k_f, k_y=k_y, fwd=fwd, rev=rev)
    return arr, s


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Write the live page's LP data (a JavaScript file).")
    ap.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    out = ap.parse_args(argv).out
    p = write(out)
    print(f"wrote {p} ({p.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


# ---------------------------------------------------------------------- the package's answer

def check_settings(settings: object) -> dict:
    """The page's ``settings`` checked with tokenflow's own rules and messages
    (:func:`tokenflow.lp.inputs.check_bool`, ``check_number``, ``per_workload``,
    ``check_formulation``, :func:`tokenflow.scenarios.choices.check_choices`); live.js's ``validate``
    is the same, message for message.  Returns the settings with the scenario's defaults
    filled in, or raises :class:`ScenarioError` listing every problem.  ``None`` is no
    settings; a key that is missing or ``undefined`` takes its default, ``null`` does not
    (except ``latency_limits_ms``, which tokenflow.solve takes as "no overrides")."""
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise ScenarioError(f"settings: expected a mapping of setting name to value (keys: "
                            f"{', '.join(SETTING_KEYS)}), got {settings!r:.60}")
    problems = [f"settings: unknown key {k!r} (keys: {', '.join(SETTING_KEYS)})"
                for k in settings if k not in SETTING_KEYS]
    name = settings.get("scenario", "us5")
    if not isinstance(name, str) or name not in SCENARIOS:
        problems.append(f"scenario: unknown scenario {name!r:.60}: the page has {', '.join(SCENARIOS)}")
        raise ScenarioError(problems)  # the other checks need the scenario's workloads
    s = load_scenario(name)
    out: dict = {"scenario": name}

    def run(key, check, default):
        try:
            out[key] = check(settings[key]) if key in settings else default
        except ScenarioError as exc:
            problems.extend(exc.problems)

    run("formulation", check_formulation, "path")
    run("transfer_aware", lambda v: check_bool(v, "transfer_aware"), True)
    run("latency_limits_ms", lambda v: per_workload(s, v, "latency_limits_ms", "ms", allow_zero=True), {})
    run("choices", lambda v: {**{c: s.choices[c] for c in LIVE_CHOICES}, **check_choices(v)},
        {c: s.choices[c] for c in LIVE_CHOICES})
    run("demand_scale", lambda v: check_number(v, "demand_scale", "(multiplier)"), 1.0)
    for key in ("bandwidth_factor", "electricity_factor"):
        run(key, lambda v, key=key: check_number(v, key, "(multiplier)", allow_zero=False), 1.0)
    if problems:
        raise ScenarioError(problems)
    return out


def scenario_of(settings: dict):
    """(Scenario, keyword arguments of tokenflow.solve) for the page's ``settings``: the
    scenario with the choices, electricity prices x electricity_factor and link bandwidths x
    bandwidth_factor (missing keys: the scenario's defaults; bad settings: ScenarioError)."""
    settings = check_settings(settings)
    s = load_scenario(settings["scenario"]).with_choices(**settings["choices"])
    ef, bf = settings["electricity_factor"], settings["bandwidth_factor"]
    if ef != 1.0:
        s = s.replace(nodes={n: {"electricity_usd_per_kwh": float(e) * ef}
                             for n, e in zip(s.node_ids, s.nodes["electricity_usd_per_kwh"])})
    if bf != 1.0:
        bw = build_inputs(s).arc_capacity_gbh[0::2] / 450.0
        s = s.replace(links={lk: {"bandwidth_gbps": float(b) * bf} for lk, b in zip(s.links.index, bw)})
    return s, {"transfer_aware": settings["transfer_aware"], "latency_limits_ms": settings["latency_limits_ms"] or None,
               "demand_scale": settings["demand_scale"]}


def reference(settings: dict, formulation: str | None = None) -> dict:
    """What ``tokenflow.solve`` gives for ``settings`` (the hook's format): the scenario with
    the choices, electricity prices x electricity_factor and link bandwidths x
    bandwidth_factor, solved with the latency limits and demand scale.  ``max_scale``
    from ``tokenflow.demand_scale_limit``.  ``formulation``: that of ``settings`` (default
    path) unless given.  Bad settings raise :class:`ScenarioError` (:func:`check_settings`)."""
    import tokenflow as tf
    from tokenflow.core.errors import InfeasibleMarketError

    s, kw = scenario_of(settings)
    scale = kw.pop("demand_scale")
    kw["formulation"] = formulation or check_settings(settings)["formulation"]
    lim = tf.demand_scale_limit(s, **kw)
    try:
        r = tf.solve(s, demand_scale=scale, **kw)
    except InfeasibleMarketError as exc:
        return {"infeasible": True, "max_scale": float(exc.max_scale)}
    p = r.prices.to_pandas()
    return {"objective": float(r.objective),
            "prices": {n: {w: float(p.loc[n, w]) for w in p.columns} for n in p.index},
            "saturated_links": sorted(r.saturated_links()), "max_scale": float(lim.max_scale),
            "binding": lim.binding}
