"""Scorecard honesty (issues 7 and 26): what pins each claim, the a-priori scenario."""

from __future__ import annotations

import json

import pytest

from tokenflow.cli import main
from tokenflow.studies.claims import PINNED_BY, a_priori_scenario, calibrated_inputs


def test_a_priori_scenario_undoes_the_calibration_and_the_tuning(us5):
    cal = calibrated_inputs(us5)
    assert set(cal) == {"parameters.link_bandwidth_gbps", "parameters.other_opex_usd_per_kwh",
                        *(f"workloads.{w}.demand_mtok_per_h_per_mpeople" for w in us5.workload_ids)}
    ap = a_priori_scenario(us5)
    for item, v in cal.items():
        part = item.split(".")
        now = us5.params[part[1]] if part[0] == "parameters" else us5.workloads.loc[part[1], part[2]]
        then = ap.params[part[1]] if part[0] == "parameters" else ap.workloads.loc[part[1], part[2]]
        assert now == v["calibrated"] and then == v["a_priori"] != v["calibrated"]
    others = {k: v for k, v in us5.params.items() if f"parameters.{k}" not in cal}
    assert all(ap.params[k] == v for k, v in others.items())
    # one item alone: only that one moves
    one = a_priori_scenario(us5, ["parameters.link_bandwidth_gbps"])
    assert one.params["link_bandwidth_gbps"] == cal["parameters.link_bandwidth_gbps"]["a_priori"]
    assert one.params["other_opex_usd_per_kwh"] == us5.params["other_opex_usd_per_kwh"]
    assert (one.workloads["demand_mtok_per_h_per_mpeople"] == us5.workloads["demand_mtok_per_h_per_mpeople"]).all()


def test_pinned_by_names_inputs_that_exist(us5):
    prov = set(us5.provenance_table()["item"])
    for claim, items in PINNED_BY.items():
        for item in items:
            if item.startswith("parameters."):
                assert item in prov, (claim, item)


@pytest.mark.slow
def test_claims_a_priori_json_is_the_all_a_priori_run(capsys):
    main(["claims", "--json"])
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"C1", "C2", "C3", "C4"}
    main(["claims", "--a-priori", "--json"])
    ap = {r["claim"]: r for r in json.loads(capsys.readouterr().out)}
    for c in rows:
        assert ap[c]["reproduced value"] == rows[c]["a_priori"], c
        assert ap[c]["passes"] is (rows[c]["a_priori_verdict"] == "holds"), c


def test_api_list_prices_are_sourced():
    """The list prices the market chapter compares with carry a source URL each."""
    from importlib import resources

    import pandas as pd

    with resources.as_file(resources.files("tokenflow") / "data" / "api_list_prices.csv") as f:
        api = pd.read_csv(f)
    assert len(api) >= 4
    assert api["source"].str.startswith("http").all()
    assert (api["output_usd_per_mtok"] >= api["input_usd_per_mtok"]).all()
    assert not any(s.startswith("api_list_prices") for s in __import__("tokenflow").available_scenarios())
