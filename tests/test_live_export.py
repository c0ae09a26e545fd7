"""The live page's export (tools/export_live.py): the parametric arc LP it describes, solved
with highspy, is the package's LP - same objective, prices and saturated links as
``tokenflow.solve(..., formulation="arc")`` - and the committed live_data.js is current."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import export_live  # noqa: E402

from tokenflow.lp.solver import LiveLP  # noqa: E402


@pytest.fixture(scope="module")
def data() -> dict:
    return export_live.export_all()


def solve_export(data: dict, st: dict) -> dict:
    """Solve the exported LP as the page does (s* from the max-scale LP)."""
    sc = data["scenarios"][st["scenario"]]
    arr, s = export_live.arc_lp(sc, st)
    lim, _ = export_live.arc_lp(sc, st, max_scale=True)
    lp = LiveLP()
    lp.sync(lim)
    assert lp.run() == "optimal"
    x, _, _ = lp.solution()
    v = export_live.variant(sc, export_live.variant_key(st.get("transfer_aware", True),
                                                        {**sc["defaults"]["choices"], **st.get("choices", {})}))
    max_scale = x[0] / max(v["base_demand"])
    if st.get("demand_scale", 1.0) > max_scale * (1 + 1e-9):
        return {"infeasible": True, "max_scale": max_scale}
    lp = LiveLP()
    lp.sync(arr)
    assert lp.run() == "optimal"
    x, y, obj = lp.solution()
    L = len(sc["au"])
    lam = y[s["origin_row"]]
    load = np.zeros(L)
    nf = len(s["f_c"])
    f = np.maximum(x[:nf], 0.0)
    np.add.at(load, s["f_a"], f * s["fwd"][s["k_f"]])
    np.add.at(load, s["f_a"] ^ 1, f * s["rev"][s["k_f"]])
    util = load / arr.row_ub[-L:]
    return {"objective": obj, "prices": {n: {w: lam[i, k] for k, w in enumerate(sc["workloads"])}
                                         for i, n in enumerate(sc["nodes"])},
            "saturated_links": sorted(np.array(sc["arc_ids"])[util >= 1 - 1e-6].tolist()), "max_scale": max_scale}


SETTINGS = [
    {"scenario": "us5"},
    {"scenario": "us5", "demand_scale": 30.0, "latency_limits_ms": {"chat": 30.0}},
    {"scenario": "us5", "demand_scale": 10.0, "bandwidth_factor": 0.02, "electricity_factor": 2.0,
     "choices": {"payload_direction": "both", "electricity_sector": "industrial"}},
    {"scenario": "us5", "demand_scale": 60.0},
    {"scenario": "us20", "demand_scale": 20.0, "transfer_aware": False, "bandwidth_factor": 0.05},
    {"scenario": "us20", "demand_scale": 15.0, "bandwidth_factor": 0.1,
     "latency_limits_ms": {"chat": 40.0, "code_review": 60.0}},
    {"scenario": "us5", "demand_scale": 10.0, "bandwidth_factor": 0.05,
     "choices": {"energy_accounting": "prefill_and_decode", "capacity_measure": "cushman_wakefield"}},
    {"scenario": "us5", "demand_scale": 35.0, "choices": {"energy_accounting": "prefill_and_decode"}},
    {"scenario": "us20", "demand_scale": 10.0, "transfer_aware": False,
     "choices": {"baseline_payload": "mean_payload", "capacity_measure": "cbre_colocation"}},
]


@pytest.mark.parametrize("st", SETTINGS, ids=lambda s: json.dumps(s, sort_keys=True))
def test_exported_lp_is_the_package_lp(data: dict, st: dict) -> None:
    got, ref = solve_export(data, st), export_live.reference(st, "arc")
    assert got["max_scale"] == pytest.approx(ref["max_scale"], rel=1e-9)
    assert bool(got.get("infeasible")) == bool(ref.get("infeasible"))
    if ref.get("infeasible"):
        return
    assert got["objective"] == pytest.approx(ref["objective"], rel=1e-9)
    for n, row in ref["prices"].items():
        for w, p in row.items():
            assert got["prices"][n][w] == pytest.approx(p, rel=1e-9), (n, w)
    assert got["saturated_links"] == ref["saturated_links"]


def test_settings_exercise_what_matters(data: dict) -> None:
    """The checked settings include a binding link, a binding latency limit (origin-specific
    commodities) and an infeasible market; otherwise the comparison above proves little."""
    sat = solve_export(data, SETTINGS[2])["saturated_links"]
    assert sat
    sc = data["scenarios"]["us5"]
    _, s = export_live.arc_lp(sc, SETTINGS[1])
    assert any(o >= 0 for _, o in s["com"])
    assert solve_export(data, SETTINGS[3]).get("infeasible")


def test_defaults_fill_missing_keys(data: dict) -> None:
    sc = data["scenarios"]["us20"]
    st = export_live.settings_of(sc, {"latency_limits_ms": {"chat": 20.0}})
    assert st["demand_scale"] == 1.0 and st["transfer_aware"] is True
    assert st["latency_limits_ms"]["chat"] == 20.0
    assert st["latency_limits_ms"]["image"] == sc["defaults"]["latency_limits_ms"]["image"]


def test_committed_export_is_current(data: dict) -> None:
    """book/_static/live/live_data.js must be what the package exports today
    (after a change of the model or its data: python tools/export_live.py)."""
    stale = _differences(export_live.load(export_live.DEFAULT_OUT), json.loads(json.dumps(data)))
    assert not stale, (f"book/_static/live/live_data.js is stale ({'; '.join(stale[:5])}): "
                       "run python tools/export_live.py")


def _differences(a, b, path: str = "", rel: float = 1e-12) -> list[str]:
    """Where ``a`` and ``b`` differ: structure and text exactly, numbers to ``rel`` (the last
    bit of a latency may differ between CPUs' maths libraries; a model change moves far more)."""
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        if type(a) is not type(b):
            return [f"{path}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{path}/{k}", rel)]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]", rel)]
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        ok = a == b or abs(a - b) <= rel * max(abs(a), abs(b))
        return [] if ok else [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{path}: {a!r:.60} vs {b!r:.60}"]


def test_export_comparison_sees_a_real_change(data: dict) -> None:
    other = json.loads(json.dumps(data))
    sc = other["scenarios"]["us5"]
    key = next(k for k, v in sc.items() if isinstance(v, list) and v and isinstance(v[0], float))
    sc[key][0] *= 1 + 1e-9
    assert _differences(json.loads(json.dumps(data)), other)


def test_vendored_wasm_is_the_recorded_build() -> None:
    """highs-wasm.js decodes to the highs.wasm whose hash VENDOR.txt records."""
    import base64
    import hashlib
    import re

    live = ROOT / "book" / "_static" / "live"
    text = (live / "highs-wasm.js").read_text()
    wasm = base64.b64decode(re.search(r'HIGHS_WASM_B64="([A-Za-z0-9+/=]+)"', text).group(1))
    assert wasm[:4] == b"\0asm"
    recorded = re.search(r"wasm sha256 ([0-9a-f]{64})", (live / "VENDOR.txt").read_text()).group(1)
    assert hashlib.sha256(wasm).hexdigest() == recorded
    assert "MIT License" in (live / "LICENSE-highs-js.txt").read_text()
