"""Public API contract, determinism, export, netCDF, synthetic networks, provenance, CLI."""

from __future__ import annotations

import subprocess
import sys

import highspy
import numpy as np
import pytest
import xarray as xr

import tokenflow as tf
from tokenflow.cli import main


def test_result_contract(us5_35):
    r = us5_35
    assert isinstance(r.objective, float) and r.objective > 0
    assert r.prices.dims == ("node", "workload") and r.prices.attrs["unit"] == "$/M tokens"
    assert r.processing.dims == ("node", "workload")
    assert r.link_utilization.dims == ("link",)
    assert float(r.link_utilization.max()) <= 1 + 1e-9 and float(r.link_utilization.min()) >= 0
    assert all(isinstance(x, str) for x in r.saturated_links())
    assert isinstance(r.dataset, xr.Dataset)
    for name in ("transfers", "link_flow", "link_traffic", "compute_rent", "congestion_rent", "cost"):
        assert name in r.dataset and "unit" in r.dataset[name].attrs


def test_same_solve_twice_is_identical(us5):
    a = tf.solve(us5, demand_scale=35).dataset
    b = tf.solve(us5, demand_scale=35).dataset
    drop = ("build_seconds", "solve_seconds")
    a.attrs = {k: v for k, v in a.attrs.items() if k not in drop}
    b.attrs = {k: v for k, v in b.attrs.items() if k not in drop}
    xr.testing.assert_identical(a, b)


def test_netcdf_round_trip(us5_35, tmp_path):
    path = us5_35.to_netcdf(tmp_path / "r.nc")
    back = tf.MarketResult.from_netcdf(path)
    assert back.objective == us5_35.objective
    xr.testing.assert_equal(back.prices, us5_35.prices)
    assert back.saturated_links() == us5_35.saturated_links()


def test_export_lp_solves_to_same_objective(us5, tmp_path):
    path = tf.export_lp(us5, tmp_path / "us5.mps", demand_scale=35)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(path))
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    assert h.getInfo().objective_function_value == pytest.approx(tf.solve(us5, demand_scale=35).objective,
                                                                 rel=1e-9)


def test_synthetic_network_deterministic_and_solvable():
    a, b = tf.synthetic_network(30, seed=3), tf.synthetic_network(30, seed=3)
    assert a.nodes.equals(b.nodes) and a.links.equals(b.links)
    assert not a.nodes.equals(tf.synthetic_network(30, seed=4).nodes)
    r = tf.solve(a, demand_scale=10)
    assert r.prices.sizes == {"node": 30, "workload": 4}
    assert np.isfinite(r.prices).all()


def test_packaged_scenarios_are_fully_sourced():
    for name in tf.available_scenarios():
        prov = tf.load_scenario(name).provenance_table()
        assert len(prov) >= 9 + 4 * 4 + 5 * len(tf.load_scenario(name).nodes)
        assert set(prov["kind"]) <= {"source", "assumption", "choice"}, prov[prov["kind"] == "unsourced"]
        assert (prov["reference"].str.len() > 0).all()
        assert not prov["reference"].str.contains("shared/").any()


def test_cli_solve_prints_summary(capsys):
    assert main(["solve", "us5", "--demand-scale", "35", "--latency", "chat=15"]) == 0
    out = capsys.readouterr().out
    assert "locational prices" in out and "saturated links" in out and "s* =" in out


@pytest.mark.parametrize("argv, code, needle, fresh", [
    (["solve", "us5", "--demand-scale", "999"], 3, "infeasible at demand scale 999", False),
    # one case through a fresh interpreter (`python -m tokenflow.cli`: import-time output counts too)
    (["solve", "nowhere"], 2, "unknown scenario", True),
    (["solve", "us5", "--latency", "chat"], 2, "WORKLOAD=MS", False),
])
def test_cli_errors_are_one_clear_line(argv, code, needle, fresh, capsys):
    if fresh:
        proc = subprocess.run([sys.executable, "-m", "tokenflow.cli", *argv], capture_output=True, text=True)
        got, err = proc.returncode, proc.stderr
    else:
        try:
            got = main(argv)
        except SystemExit as e:  # argparse
            got = e.code
        err = capsys.readouterr().err
    assert got == code
    assert needle in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_out_writes_netcdf(tmp_path, capsys):
    out = tmp_path / "res.nc"
    assert main(["solve", "us5", "--out", str(out)]) == 0
    assert tf.MarketResult.from_netcdf(out).objective > 0
