"""The live page's settings rules (tools/export_live.py::check_settings, which live.js's
``validate`` repeats message for message) and the pure-Python parts of `make live-check`
(tools/check_live.py: the hostile settings and how a page answer is judged).  The browser
side is `make live-check`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_live  # noqa: E402
import export_live  # noqa: E402

import tokenflow as tf  # noqa: E402
from tokenflow.core.errors import ScenarioError  # noqa: E402
from tokenflow.scenarios.scenario import CHOICES  # noqa: E402


def refusal(settings: object) -> str | None:
    try:
        export_live.check_settings(settings)
    except ScenarioError as exc:
        return str(exc)
    return None


# settings of the page -> the same mistake made in a tokenflow.solve call
SAME_AS_SOLVE = [
    ({"transfer_aware": "false"}, {"transfer_aware": "false"}),
    ({"transfer_aware": None}, {"transfer_aware": None}),
    ({"latency_limits_ms": {"chat": None}}, {"latency_limits_ms": {"chat": None}}),
    ({"latency_limits_ms": {"chat": ""}}, {"latency_limits_ms": {"chat": ""}}),
    ({"latency_limits_ms": {"chatt": 30}}, {"latency_limits_ms": {"chatt": 30}}),
    ({"latency_limits_ms": [30]}, {"latency_limits_ms": [30]}),
    ({"demand_scale": True}, {"demand_scale": True}),
    ({"demand_scale": -1}, {"demand_scale": -1}),
    ({"formulation": "both"}, {"formulation": "both"}),
]


@pytest.mark.parametrize("page, call", SAME_AS_SOLVE, ids=lambda x: repr(x))
def test_messages_are_tokenflows(page: dict, call: dict) -> None:
    s = tf.load_scenario("us5")
    with pytest.raises(ScenarioError) as exc:
        tf.solve(s, **call)
    assert refusal(page) == str(exc.value)


@pytest.mark.parametrize("choices", ["both", {"foo": "x"}, {"payload_direction": "sideways"}])
def test_choice_messages_are_tokenflows(choices: object) -> None:
    with pytest.raises(ScenarioError) as exc:
        from tokenflow.scenarios.scenario import check_choices

        check_choices(choices)
    assert refusal({"choices": choices}) == str(exc.value)


@pytest.mark.parametrize("settings", ["us20", 42, [30], True, {"demand_scal": 30}, {"demand_scale": True},
                                      {"choices": "both"}, {"choices": {"foo": "x"}},
                                      {"scenario": "__proto__"}, {"scenario": "constructor"},
                                      {"transfer_aware": "false"}, {"latency_limits_ms": {"chat": None}}],
                         ids=repr)
def test_issue_cases_are_refused(settings: object) -> None:
    """Issue 28 group 7: each of these was answered (or threw a TypeError) by the page."""
    assert refusal(settings)


def test_good_settings_pass_with_defaults() -> None:
    st = export_live.check_settings({"scenario": "us20", "demand_scale": 1e-300,
                                     "choices": {"energy_accounting": "prefill_and_decode"}})
    assert st["demand_scale"] == 1e-300 and st["transfer_aware"] is True and st["formulation"] == "path"
    assert st["choices"]["energy_accounting"] == "prefill_and_decode"
    assert set(st["choices"]) == set(CHOICES)
    assert export_live.check_settings(None)["scenario"] == "us5"


def test_every_problem_is_listed() -> None:
    msg = refusal({"typo": 1, "demand_scale": "x", "bandwidth_factor": 0})
    assert msg.startswith("3 problems:") and "'typo'" in msg and "demand_scale" in msg and "bandwidth_factor" in msg


def test_hostile_cases_are_refused_cleanly_or_answered() -> None:
    """Every hostile case of the browser check either passes check_settings or raises a
    ScenarioError (never another exception), and both kinds are present."""
    kinds = set()
    for _, st in check_live.HOSTILE:
        kinds.add(refusal(st) is None)
    assert kinds == {True, False}
    labels = [label for label, _ in check_live.HOSTILE]
    assert len(set(labels)) == len(labels)


def test_judge_flags_what_is_not_tokenflows() -> None:
    refused = {"refused": "transfer_aware: expected True or False, got 'false'"}
    assert check_live.judge({"ok": False, "name": "ScenarioError", "error": refused["refused"]}, refused) == []
    assert check_live.judge({"ok": True, "r": {}}, refused)
    assert check_live.judge({"ok": False, "name": "TypeError", "error": refused["refused"]}, refused)
    assert check_live.judge({"ok": False, "name": "ScenarioError", "error": "transfer_aware: bad"}, refused)
    answered = {"infeasible": True, "max_scale": 15.4}
    assert check_live.judge({"ok": False, "name": "ScenarioError", "error": "x"}, answered)
    assert check_live.judge({"ok": True, "r": {"infeasible": True, "max_scale": 15.4}}, answered) == []
    assert check_live.judge({"ok": True, "r": {"infeasible": True, "max_scale": 51.7}}, answered)


def test_export_has_every_choice() -> None:
    """Every modelling choice (the scorecard's and energy_accounting) is a control of the page,
    and energy accounting changes what the page solves."""
    sc = export_live.export_scenario("us5")
    assert set(sc["defaults"]["choices"]) == set(CHOICES)
    base = {**sc["defaults"]["choices"]}
    a = export_live.variant(sc, export_live.variant_key(True, base))
    b = export_live.variant(sc, export_live.variant_key(True, {**base, "energy_accounting": "prefill_and_decode"}))
    assert a["intensity"] != b["intensity"]


def _state(**kw) -> dict:
    st = {"labels": [["Chicago", [0, 0, 50, 20]], ["New York", [60, 0, 110, 20]]],
          "nodes": [[200, 200, 212, 212]], "column": 676, "page_width": 676, "table_width": 600,
          "headers": ["Workload", "Price$/B tokens", "Processing$/B tokens", "Compute rent$/B tokens",
                      "Transfer$/B tokens", "Congestion rent$/B tokens", "Route"]}
    return {**st, **kw}


def test_ui_check_sees_overlaps_and_overflow() -> None:
    """The page check's reading of the drawn page: clean as drawn, and each fault reported."""
    assert check_live.ui_problems(_state(), "us5") == []
    clash = [["Chicago", [0, 0, 50, 20]], ["N. Virginia", [40, 10, 100, 30]]]
    assert "overlap" in " ".join(check_live.ui_problems(_state(labels=clash), "us5"))
    on_marker = [["Chicago", [195, 195, 240, 215]]]
    assert "marker" in " ".join(check_live.ui_problems(_state(labels=on_marker), "us5"))
    assert "column" in " ".join(check_live.ui_problems(_state(table_width=900), "us5"))
    assert "column" in " ".join(check_live.ui_problems(_state(page_width=700), "us5"))
    raw = _state(headers=["workload", "price", "compute_rent"])
    assert "headers" in " ".join(check_live.ui_problems(raw, "us5"))
