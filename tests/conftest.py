"""Shared helpers: tiny scenarios written as YAML, so tests go through the real loader."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
from pathlib import Path

import pytest
import yaml

import tokenflow as tf

# One workload, PUE 1, no other opex, ai_share 1: processing cost = g * electricity price.
BASE = {
    "name": "tiny",
    "parameters": {
        "route_factor": 1.0, "fiber_delay_us_per_km": 5.0, "pue": 1.0, "ai_share": 1.0,
        "other_opex_usd_per_kwh": 0.0, "transfer_cost_usd_per_gb": 0.01, "link_bandwidth_gbps": 100.0,
        "reference_payload_bytes_per_token": 4.0, "paths_per_pair": 3,
    },
    "workloads": {
        "w": {"energy_kwh_per_mtok": 1.0, "payload_bytes_per_token": 100.0, "latency_limit_ms": 100.0,
              "demand_mtok_per_h_per_mpeople": 0.0},
    },
    "nodes": {
        # A and B about 555 km apart (5 degrees of latitude)
        "A": {"lat": 35.0, "lon": -100.0, "population": 0, "electricity_usd_per_kwh": 0.10,
              "capacity_mw": 10.0},
        "B": {"lat": 40.0, "lon": -100.0, "population": 0, "electricity_usd_per_kwh": 0.20,
              "capacity_mw": 10.0},
    },
    "links": [{"a": "A", "b": "B"}],
}


def write(tmp_path: Path, doc: dict, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def tiny_doc() -> dict:
    return copy.deepcopy(BASE)


@pytest.fixture
def load_doc(tmp_path):
    def _load(doc: dict) -> tf.Scenario:
        return tf.load_scenario(write(tmp_path, doc))
    return _load


@pytest.fixture(scope="session")
def us5() -> tf.Scenario:
    return tf.load_scenario("us5")


@pytest.fixture(scope="session")
def us5_35(us5) -> tf.MarketResult:
    return tf.solve(us5, demand_scale=35)


# ------------------------------------------------------------ scheduling under pytest-xdist
# `make test` runs `pytest -n auto --dist worksteal` (pyproject addopts): the tests are split
# into one contiguous block per worker, and a worker that runs out takes the second half of
# the queue of the worker with the most left.  So that the workers finish together, the
# notebook run (the longest item by far) starts the first block and the other long tests
# (processes, kernels, CLI subprocesses) start the other blocks; the many short tests fill
# the blocks' tails, where the stealing happens.  Order only: no test depends on it.
LONGEST = "test_notebooks.py"  # all notebooks through papermill
LONG = (
    "test_reproduce.py",  # notebook kernels
    "test_sweep.py::test_local_pool",  # worker processes
    "test_sweep.py::test_pool_failures",  # worker processes
    "test_hostile.py",  # CLI subprocesses, signals, special files
    "test_api.py::test_cli_errors",  # CLI subprocesses
    "test_measure_serving.py",  # subprocesses
)


@pytest.hookimpl(trylast=True)  # after `-m "not slow"` deselected: the scheduler cuts what is left
def pytest_collection_modifyitems(config, items):
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    name = {id(it): it.nodeid.split("::")[0].rsplit("/", 1)[-1] + "::" + it.nodeid.partition("::")[2] for it in items}
    first = [it for it in items if name[id(it)].startswith(LONGEST)]
    long = [it for it in items if it not in first and name[id(it)].startswith(LONG)]
    short = [it for it in items if it not in first and it not in long]
    if workers < 2:
        items[:] = first + long + short
        return
    # blocks as the scheduler cuts them: len(items) // workers each, the last one the rest
    size = len(items) // workers
    blocks: list[list] = [first] + [[] for _ in range(workers - 1)]
    for k, it in enumerate(long):
        blocks[1 + k % (workers - 1)].append(it)
    for b in blocks[:-1]:
        while len(b) < size and short:
            b.append(short.pop(0))
    blocks[-1] += short
    items[:] = [it for b in blocks for it in b]
    assert len(items) == len(name)


@contextlib.contextmanager
def once_per_run(tmp_path_factory, name: str):
    """A folder shared by the xdist workers of this run, filled by the first worker that asks
    (the others wait on a lock and reuse it): ``with once_per_run(f, "x") as (folder, done):
    if not done: <fill folder>``.  Without xdist it is a folder of this session."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, one level above each worker's
    folder = base / f"once-{name}"
    folder.mkdir(exist_ok=True)
    with open(base / f"once-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = (folder / ".done").exists()
            yield folder, done
            (folder / ".done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# two nodes and one workload for the latency-consistent clearing (tests/test_latency_*.py)
@pytest.fixture
def two_nodes(tiny_doc, load_doc):
    # all demand at A (cheap, 0.10 $/kWh); B costs 0.20 $/kWh; 10 MW each, 1 kWh per M tokens
    tiny_doc["workloads"]["w"]["demand_mtok_per_h_per_mpeople"] = 8000.0
    tiny_doc["nodes"]["A"]["population"] = 1_000_000
    return load_doc(tiny_doc)


@pytest.fixture
def profile():
    """A chat-like service profile for workload ``w`` (one GPU per replica)."""
    from tokenflow.latency.profiles import ServiceProfile, default_profiles

    chat = default_profiles(tf.load_scenario("us5"))["chat"]
    return {"w": ServiceProfile("w", 1, chat.max_batch, chat.step_fixed_s, chat.step_slope_s,
                                chat.prefill_s_per_token, 1.0, 500.0, "ttft", trace="conv", peak_trace="conv")}
