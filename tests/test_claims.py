"""The paper's claims C1-C4, evaluated from fresh solves (the scorecard's source)."""

from __future__ import annotations

import pytest

from tokenflow.scenarios.scenario import load_scenario
from tokenflow.studies.claims import PAPER_CLAIMS, scorecard


@pytest.fixture(scope="module")
def card():
    return {r.claim: r for r in scorecard()}


@pytest.mark.parametrize("claim", ["C1", "C2", "C3", "C4"])
def test_claim_within_tolerance(card, claim):
    r = card[claim]
    assert r.passed, r


def test_c1_names_four_distinct_links(card):
    links = card["C1"].detail["links"]
    assert len(set(links)) == PAPER_CLAIMS["C1"]["paper"]
    assert all(u >= 0.999 for u in card["C1"].detail["utilization"].values())


def test_c3_one_price_rises(card):
    d = card["C3"].detail
    assert d["after"] > d["before"] > 0
    assert d["largest_other_rise_pct"] < card["C3"].reproduced


def test_c4_merit_order(card):
    d = card["C4"].detail
    assert d["feasible_below"] and d["error_above"]
    assert d["merit_order_spearman"] < -0.5


@pytest.fixture(scope="module")
def figures():
    from tokenflow.studies.claims import figure_verdicts

    return {v.figure: v for v in figure_verdicts()}


def test_figure_verdicts_follow_their_numbers(figures):
    """F1-F4: each verdict is the stated comparison of the computed values."""
    from tokenflow.studies.claims import CHEAP_SHARE, MERIT_ORDER_RHO

    assert set(figures) == {"F1", "F2", "F3", "F4"}
    f1, f2, f3, f4 = (figures[k].detail for k in ("F1", "F2", "F3", "F4"))
    assert figures["F1"].agrees == (f1["merit_order_spearman"] <= MERIT_ORDER_RHO)
    assert 0 <= f2["image_local"] <= 1 and 0 <= f2["chat_local"] <= 1 and 0 < f2["cheap_share"] <= 1
    assert figures["F2"].agrees == (f2["cheap_share"] > CHEAP_SHARE and f2["image_local"] > f2["chat_local"])
    assert figures["F3"].agrees == (f3["largest_relative_step_down"] <= 1e-9)
    assert figures["F4"].agrees == (f4["saturated_every"] == f4["saturated_some"] == PAPER_CLAIMS["C1"]["paper"])
    for v in figures.values():
        assert v.row()["verdict"] in ("agrees", "differs") and v.caption and v.check


def test_figure2_shares_by_hand(us5):
    """Shares recomputed from the processing and transfer arrays directly."""
    import numpy as np

    import tokenflow as tf
    from tokenflow.studies.claims import figure2_shares

    r = tf.solve(us5, demand_scale=35)
    sh = figure2_shares(r, us5)
    proc = r.processing
    tr = r.dataset["transfers"]
    img_local = sum(float(tr.sel(origin=n, node=n, workload="image")) for n in us5.node_ids)
    assert sh["image_local"] == pytest.approx(img_local / float(proc.sel(workload="image").sum()))
    cheap = us5.nodes["electricity_usd_per_kwh"].nsmallest(2).index
    assert sh["cheap_share"] == pytest.approx(float(proc.sel(node=list(cheap)).sum() / proc.sum()))
    assert np.isclose(float(tr.sel(workload="image").sum()), float(proc.sel(workload="image").sum()), rtol=1e-6)


@pytest.mark.slow
def test_calibrated_inputs_are_what_calibration_computes(us5):
    """The two CALIBRATED values in the scenario file are the calibration's output, not typed targets."""
    from tokenflow.studies import calibration

    c = calibration.calibrate(us5)
    assert us5.params["link_bandwidth_gbps"] == pytest.approx(c.link_bandwidth_gbps, rel=1e-3)
    assert us5.params["other_opex_usd_per_kwh"] == pytest.approx(c.other_opex_usd_per_kwh, rel=1e-3)
    assert c.c2_uplift_pct == pytest.approx(PAPER_CLAIMS["C2"]["paper"], abs=1e-4)
    assert c.c3_rise_pct == pytest.approx(PAPER_CLAIMS["C3"]["paper"], abs=1e-3)


def test_us20_uses_the_calibrated_bandwidth(us5):
    assert load_scenario("us20").params["link_bandwidth_gbps"] == us5.params["link_bandwidth_gbps"]


def test_readme_summary_matches_the_record(card, figures):
    """README's 'What is reproduced' paragraph states verdicts and statuses; they must be what
    the record of this build computes."""
    from pathlib import Path

    from tokenflow.studies import citable

    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    by = {r.id: r for r in citable.record(face=False)}
    assert "At the calibrated point all four claims hold" in text
    assert all(r.passed for r in card.values())
    assert "with every input a priori none holds" in text
    assert not any(by[c].runs["all a priori"]["ok"] for c in ("C1", "C2", "C3", "C4"))
    assert "C2 and C3 are *matched by calibration*" in text
    assert [c for c in ("C1", "C2", "C3", "C4") if by[c].verdict == "matched by calibration"] == ["C2", "C3"]
    assert "C1 and C4 *hold at a calibrated input*" in text
    assert [c for c in ("C1", "C2", "C3", "C4") if by[c].verdict == "holds at a calibrated input"] == ["C1", "C4"]
    assert "(C1 fails with the bandwidth or the base demand a priori, C4 with the bandwidth)" in text
    assert by["C1"].status_on == "link bandwidth; base demand" and by["C4"].status_on == "link bandwidth"
    assert "Figure 2 differs" in text
    assert [f for f, v in figures.items() if not v.agrees] == ["F2"]
    assert "with the base demand a priori the case clears" in text
    assert by["B5"].runs[citable.DEMAND_GROUP]["ok"] and not by["B5"].runs["calibrated"]["ok"]
