"""Sweeps: labelled results, failures recorded not raised, Dask local cluster, CLI."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import yaml

import tokenflow as tf
from tokenflow.cli import main
from tokenflow.studies.sweep import apply_inputs


def test_grid_sweep_is_labelled_and_matches_single_solves(us5):
    ds = tf.sweep(us5, grid={"demand_scale": [10, 35], "latency.chat": [15, 100]}, n_workers=0, progress=False)
    assert ds["objective"].dims == ("demand_scale", "latency.chat")
    assert set(ds["price"].dims) == {"node", "workload", "demand_scale", "latency.chat"}
    assert (ds["status"] == "ok").all()
    one = tf.solve(us5, demand_scale=35, latency_limits_ms={"chat": 15})
    assert float(ds["objective"].sel({"demand_scale": 35, "latency.chat": 15})) == pytest.approx(one.objective)


def test_infeasible_and_bad_points_are_recorded(us5):
    ds = tf.sweep(us5, points=[{"demand_scale": 10}, {"demand_scale": 500}, {"param.ai_share": -1}],
                  n_workers=0, progress=False)
    assert list(ds["status"].values) == ["ok", "infeasible", "error"]
    assert "s* =" in str(ds["message"].values[1])
    assert "ai_share" in str(ds["message"].values[2])
    assert np.isnan(float(ds["objective"][1])) and np.isfinite(float(ds["objective"][0]))


def test_samples_are_reproducible(us5):
    kw = dict(ranges={"scale.electricity": (0.8, 1.2), "param.route_factor": (1.3, 2.4)}, n_samples=4, seed=7,
              n_workers=0, progress=False)
    a, b = tf.sweep(us5, **kw), tf.sweep(us5, **kw)
    np.testing.assert_array_equal(a["scale.electricity"].values, b["scale.electricity"].values)
    np.testing.assert_array_equal(a["objective"].values, b["objective"].values)
    assert a["objective"].dims == ("sample",)


def test_inputs_are_applied(us5):
    s, kw = apply_inputs(us5, {"scale.electricity": 2.0, "workload.image.payload_bytes_per_token": 500,
                               "scale.payload": 3.0, "latency.chat": 20, "transfer_aware": 0})
    np.testing.assert_allclose(s.nodes["electricity_usd_per_kwh"], 2 * us5.nodes["electricity_usd_per_kwh"])
    assert s.workloads.loc["image", "payload_bytes_per_token"] == 500  # specific value wins over scale
    chat_payload = us5.workloads.loc["chat", "payload_bytes_per_token"]
    assert s.workloads.loc["chat", "payload_bytes_per_token"] == 3 * chat_payload
    assert kw == {"latency_limits_ms": {"chat": 20.0}, "transfer_aware": False}


@pytest.mark.parametrize("spec, needle", [({"grid": {"nonsense": [1]}}, "unknown input"),
                                          ({"grid": {"demand_scale": [1]}, "points": [{}]}, "exactly one"),
                                          ({"ranges": {"demand_scale": (1, 2)}}, "n_samples")])
def test_bad_sweep_specs(us5, spec, needle):
    with pytest.raises(tf.ScenarioError, match=needle):
        tf.sweep(us5, n_workers=0, progress=False, **spec)


def test_local_pool_gives_same_result(us5):
    grid = {"demand_scale": [5, 20, 35, 50, 500]}  # (500: infeasible, its arrays NaN)
    serial = tf.sweep(us5, grid=grid, n_workers=0, progress=False)
    parallel = tf.sweep(us5, grid=grid, n_workers=2, chunk_size=2, progress=False)
    np.testing.assert_allclose(parallel["objective"].values, serial["objective"].values, rtol=1e-9)  # warm starts
    # labelled outputs come back from the workers in blocks, one per chunk and output
    for k in ("price", "mean_price", "node_utilization", "cost", "unserved"):
        assert parallel[k].dims == serial[k].dims and parallel[k].shape == serial[k].shape
        np.testing.assert_allclose(parallel[k].values, serial[k].values, rtol=1e-9, equal_nan=True)
        for c in serial[k].coords:
            assert list(parallel[k][c].values) == list(serial[k][c].values)
    assert np.isnan(parallel["price"].sel(demand_scale=500)).all()
    # the local pool is kept for the next sweep of the process, and stopped on request
    from tokenflow.studies.sweep_pool import _POOLS, close_local_pools, local_pool

    pool = local_pool(2)
    again = tf.sweep(us5, grid=grid, n_workers=2, progress=False)
    assert local_pool(2) is pool
    np.testing.assert_allclose(again["objective"].values, serial["objective"].values, rtol=1e-9)
    close_local_pools()
    assert not _POOLS
    with pytest.raises(RuntimeError):  # stopped
        pool.submit(abs, 1)


SCRIPT = """
import sys
import tokenflow as tf
print("main ran", flush=True)  # once: pool workers must not re-run an unguarded script

def doubled(s, point):
    return {"x": 2 * point["demand_scale"], "nodes": float(len(s.node_ids))}

ds = tf.sweep("us5", points=[{"demand_scale": 3.0}, {"demand_scale": 4.0}], evaluate=doubled, n_workers=2,
              progress=False)
print(ds["status"].values.tolist(), ds["x"].values.tolist(), ds["nodes"].values.tolist())
"""


def test_local_pool_runs_a_script_function_without_main_guard(tmp_path):
    """A function defined in an unguarded script (or a notebook) travels by value; the workers
    do not re-run the script."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines.count("main ran") == 1
    assert lines[-1] == "['ok', 'ok'] [6.0, 8.0] [5.0, 5.0]"


def test_claims_evaluator(us5):
    ds = tf.sweep(us5, points=[{}], evaluate="claims", n_workers=0, progress=False)
    assert float(ds["c1_saturated"][0]) == 4
    assert str(ds["c3_node"].values[0]) == "silicon_valley"
    assert float(ds["c4_ratio"][0]) == pytest.approx(1.0)


def test_cli_sweep(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"scenario": "us5", "grid": {"demand_scale": [10, 100]},
                                    "fixed": {"latency.chat": 50}}))
    out = tmp_path / "sweep.nc"
    assert main(["sweep", str(spec), "--workers", "0", "--out", str(out)]) == 0
    import xarray as xr

    ds = xr.open_dataset(out)
    assert list(ds["status"].values) == ["ok", "infeasible"]
    assert "ok" in capsys.readouterr().out


def test_cli_sweep_bad_spec(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("scenario: us5\ngrdi: {}\n")
    assert main(["sweep", str(spec), "--workers", "0"]) == 2
    assert "unknown keys" in capsys.readouterr().err


def test_existing_cluster_by_client_and_by_address(us5):
    from distributed import Client, LocalCluster

    grid = {"demand_scale": [10, 30]}
    serial = tf.sweep(us5, grid=grid, n_workers=0, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            by_client = tf.sweep(us5, grid=grid, client=client, progress=False)
            by_address = tf.sweep(us5, grid=grid, scheduler=cluster.scheduler_address, progress=False)
            assert client.status == "running"  # a cluster we were given is left running
    # sweeps re-solve live markets from the previous basis: equal to fresh solves to 1e-9 (the engine's
    # documented agreement), not bit for bit, when the points reach a worker in another order
    np.testing.assert_allclose(by_client["objective"].values, serial["objective"].values, rtol=1e-9)
    np.testing.assert_allclose(by_address["objective"].values, serial["objective"].values, rtol=1e-9)


def test_assembly_stacks_same_labels_and_aligns_different_ones():
    """Points whose arrays share labels are stacked as numbers; arrays with other labels,
    another dtype or a missing point go through xarray's outer join, as before."""
    import xarray as xr

    from tokenflow.studies.sweep_results import _assemble

    def arr(vals, nodes):
        return xr.DataArray(np.array(vals, dtype=float), coords={"node": nodes}, dims="node")

    same = [{"status": "ok", "x": arr([1, 2], ["a", "b"])}, {"status": "ok", "x": arr([3, 4], ["a", "b"])},
            {"status": "error", "message": "boom"}]
    ds = _assemble([{"demand_scale": 1.0}, {"demand_scale": 2.0}, {"demand_scale": 3.0}], "points", same, None)
    np.testing.assert_array_equal(ds["x"].values, [[1, 2], [3, 4], [np.nan, np.nan]])
    assert ds["x"].dims == ("point", "node") and list(ds["node"].values) == ["a", "b"]
    other = [{"status": "ok", "x": arr([1, 2], ["a", "b"])}, {"status": "ok", "x": arr([5], ["c"])}]
    ds = _assemble([{"demand_scale": 1.0}, {"demand_scale": 2.0}], "points", other, None)
    assert list(ds["node"].values) == ["a", "b", "c"]
    np.testing.assert_array_equal(ds["x"].sel(node="c").values, [np.nan, 5])
    # packed by a worker (one block per chunk), then assembled: the same numbers and labels
    from tokenflow.studies.sweep_results import _pack

    chunks = [_pack([dict(r) for r in same[:2]]), _pack([dict(r) for r in same[2:]]), _pack([dict(r) for r in other])]
    ds = _assemble([{"demand_scale": float(i)} for i in range(5)], "points", [r for c in chunks for r in c], None)
    assert list(ds["node"].values) == ["a", "b", "c"]
    np.testing.assert_array_equal(ds["x"].sel(node="a").values, [1, 3, np.nan, 1, np.nan])
    np.testing.assert_array_equal(ds["x"].sel(node="c").values, [np.nan, np.nan, np.nan, np.nan, 5])
    labels = [{"status": "ok", "x": xr.DataArray(np.array(["p", "q"]), coords={"node": ["a", "b"]}, dims="node")}]
    assert _assemble([{"demand_scale": 1.0}], "points", labels, None)["x"].dtype.kind == "U"  # not made numbers


def test_market_sweep_equals_single_solves(us5):
    """The sweep's labelled outputs (filled from templates) equal a plain solve's."""
    ds = tf.sweep(us5, grid={"demand_scale": [10.0, 30.0]}, n_workers=0, progress=False)
    for x in (10.0, 30.0):
        r = tf.solve(us5, demand_scale=x)
        np.testing.assert_allclose(ds["price"].sel(demand_scale=x).transpose("node", "workload").values,
                                   r.dataset["price"].transpose("node", "workload").values, rtol=1e-9)
        assert list(ds["node"].values) == list(r.dataset["node"].values)


def _kill_at_zero(s, point):
    import os
    import signal
    import time

    if point["demand_scale"] == 0.0:
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.3)
    return {"x": point["demand_scale"]}


def _inner_sweep(s, point):
    ds = tf.sweep(s, grid={"demand_scale": [point["demand_scale"]]}, n_workers=2, progress=False)
    return {"obj": float(ds["objective"].values[0])}


def test_pool_failures_stay_with_their_point(us5):
    """A point that kills its worker fails alone (the others are retried on fresh pools), a
    sweep inside a worker runs there (a pool kept inside a worker would outlive it), and a pool
    that lost a worker between sweeps is replaced."""
    import os
    import signal

    from tokenflow.studies.sweep import close_local_pools, local_pool

    ds = tf.sweep(us5, points=[{"demand_scale": float(i)} for i in range(5)], evaluate=_kill_at_zero, n_workers=2,
                  chunk_size=1, progress=False)
    assert list(ds["status"].values) == ["error"] + ["ok"] * 4
    assert "worker failed" in str(ds["message"].values[0]) and ds.attrs["complete"] == 0
    ds = tf.sweep(us5, points=[{"demand_scale": 5.0}], evaluate=_inner_sweep, n_workers=2, progress=False)
    assert list(ds["status"].values) == ["ok"]
    assert float(ds["obj"][0]) == pytest.approx(tf.solve(us5, demand_scale=5.0).objective, rel=1e-9)
    pool = local_pool(2)
    os.kill(next(iter(pool._processes)), signal.SIGKILL)  # an idle worker dies
    import time

    time.sleep(0.5)
    ds = tf.sweep(us5, grid={"demand_scale": [5, 10]}, n_workers=2, progress=False)
    assert list(ds["status"].values) == ["ok", "ok"]
    close_local_pools()


# ------------------------------------------------- issue 28: the number of local workers is capped


def test_more_workers_than_the_machine_allows_are_refused_before_any_starts(us5, tmp_path, capsys, monkeypatch):
    """``n_workers`` above 4 per usable core is a ScenarioError naming the cap; nothing is forked."""
    sw = importlib.import_module("tokenflow.studies.sweep")  # (tokenflow.sweep is also the function)
    pool = importlib.import_module("tokenflow.studies.sweep_pool")  # the cap and the pool live there

    monkeypatch.setattr(pool, "usable_cores", lambda: 2)
    assert pool.max_workers() == 8

    def no_pool(*a, **k):
        raise AssertionError("a pool was started")

    monkeypatch.setattr(sw, "_dispatch_pool", no_pool)  # (sweep._dispatch looks it up in sweep)
    for n in (9, 100_000, 10**30, np.int64(64)):
        with pytest.raises(tf.ScenarioError, match=r"n_workers = \d+ is more than this machine allows: at most 8 "
                                                   r"local worker processes \(4 per core, 2 core"):
            tf.sweep(us5, grid={"demand_scale": [5]}, n_workers=n, progress=False)
        with pytest.raises(tf.ScenarioError, match="at most 8"):
            pool.local_pool(n)
    assert not pool._POOLS
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"scenario": "us5", "grid": {"demand_scale": [5]}}))
    out = tmp_path / "s.nc"
    assert main(["sweep", str(spec), "--workers", "100000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--workers = 100000 is more than this machine allows: at most 8" in err and "Traceback" not in err
    assert not out.exists()


def test_the_cap_leaves_one_worker_per_core_and_the_default_alone(us5, monkeypatch):
    sw = importlib.import_module("tokenflow.studies.sweep")  # (tokenflow.sweep is also the function)
    pool = importlib.import_module("tokenflow.studies.sweep_pool")  # the cap lives there

    assert pool.usable_cores() >= 1 and pool.max_workers() == 4 * pool.usable_cores()
    assert pool.check_workers(pool.max_workers()) == pool.max_workers() and pool.check_workers(0) == 0
    seen = []
    monkeypatch.setattr(sw, "_dispatch_pool", lambda ev, s, pts, extra, n, *a: seen.append(n) or [{}] * len(pts))
    tf.sweep(us5, grid={"demand_scale": [5]}, progress=False)
    assert seen == [pool.usable_cores()]  # the default: one worker per usable core
