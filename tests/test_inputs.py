"""Bad inputs give a ScenarioError that names the problem (file and field)."""

from __future__ import annotations

import pytest
from conftest import write

import tokenflow as tf


def err(tmp_path, doc_or_text) -> str:
    path = tmp_path / "bad.yaml"
    if isinstance(doc_or_text, str):
        path.write_text(doc_or_text)
    else:
        write(tmp_path, doc_or_text, "bad.yaml")
    with pytest.raises(tf.ScenarioError) as info:
        tf.load_scenario(path)
    assert "bad.yaml" in str(info.value)
    return str(info.value)


def test_malformed_yaml(tmp_path):
    assert "not valid YAML" in err(tmp_path, "nodes: [unclosed\n  - x: {")


def test_top_level_not_mapping(tmp_path):
    assert "top level" in err(tmp_path, "- just\n- a list\n")


def test_unknown_node_in_link(tiny_doc, tmp_path):
    tiny_doc["links"].append({"a": "A", "b": "Z"})
    msg = err(tmp_path, tiny_doc)
    assert "unknown node 'Z'" in msg and "links[1]" in msg


def test_duplicate_node_id(tiny_doc, tmp_path):
    text = write(tmp_path, tiny_doc, "ok.yaml").read_text()
    text = text.replace("  B:\n", "  A:\n", 1)  # two nodes called A
    assert "duplicate key 'A'" in err(tmp_path, text)


def test_duplicate_link(tiny_doc, tmp_path):
    tiny_doc["links"].append({"a": "B", "b": "A"})
    assert "duplicate link A--B" in err(tmp_path, tiny_doc)


def test_negative_capacity(tiny_doc, tmp_path):
    tiny_doc["nodes"]["A"]["capacity_mw"] = -5
    msg = err(tmp_path, tiny_doc)
    assert "nodes.A.capacity_mw" in msg and "non-negative" in msg


def test_nan_capacity(tiny_doc, tmp_path):
    text = write(tmp_path, tiny_doc, "ok.yaml").read_text().replace("capacity_mw: 10.0", "capacity_mw: .nan", 1)
    msg = err(tmp_path, text)
    assert "nodes.A.capacity_mw" in msg and "finite" in msg


def test_zero_bandwidth_link(tiny_doc, tmp_path):
    tiny_doc["links"][0]["bandwidth_gbps"] = 0
    msg = err(tmp_path, tiny_doc)
    assert "zero bandwidth" in msg and "A--B" in msg


def test_workload_without_latency_limit(tiny_doc, tmp_path):
    del tiny_doc["workloads"]["w"]["latency_limit_ms"]
    assert "workloads.w.latency_limit_ms: no latency limit" in err(tmp_path, tiny_doc)


def test_non_numeric_value_and_missing_value(tiny_doc, tmp_path):
    tiny_doc["nodes"]["A"]["electricity_usd_per_kwh"] = "cheap"
    tiny_doc["nodes"]["B"]["electricity_usd_per_kwh"] = {"source": "x"}
    msg = err(tmp_path, tiny_doc)
    assert "nodes.A.electricity_usd_per_kwh: expected a number, got 'cheap'" in msg
    assert "nodes.B.electricity_usd_per_kwh: mapping has no 'value'" in msg


def test_all_problems_reported_at_once(tiny_doc, tmp_path):
    tiny_doc["nodes"]["A"]["capacity_mw"] = -1
    tiny_doc["links"].append({"a": "A", "b": "Q"})
    del tiny_doc["parameters"]["pue"]
    tiny_doc["workloads"]["w"]["typo_field"] = 3
    with pytest.raises(tf.ScenarioError) as info:
        tf.load_scenario(write(tmp_path, tiny_doc))
    assert len(info.value.problems) == 4
    for needle in ("capacity_mw", "unknown node 'Q'", "parameters.pue: missing", "typo_field: unknown field"):
        assert needle in str(info.value)


def test_unreachable_demand(tiny_doc, load_doc):
    # C has demand, no compute, and its only link is far beyond the latency limit
    tiny_doc["nodes"]["C"] = {"lat": 25.0, "lon": -70.0, "population": 0, "electricity_usd_per_kwh": 0.1,
                              "capacity_mw": 0.0, "demand_mtok_per_h": {"w": 10.0}}
    tiny_doc["links"].append({"a": "A", "b": "C"})
    tiny_doc["workloads"]["w"]["latency_limit_ms"] = 5.0
    s = load_doc(tiny_doc)
    with pytest.raises(tf.ScenarioError, match=r"unreachable demand: w at node 'C'.*5 ms"):
        tf.solve(s)


def test_disconnected_demand(tiny_doc, load_doc):
    tiny_doc["nodes"]["D"] = {"lat": 30.0, "lon": -90.0, "population": 0, "electricity_usd_per_kwh": 0.1,
                              "capacity_mw": 0.0, "demand_mtok_per_h": {"w": 10.0}}
    s = load_doc(tiny_doc)
    with pytest.raises(tf.ScenarioError, match="no node with compute capacity is connected"):
        tf.solve(s)


def test_unknown_scenario_name():
    with pytest.raises(tf.ScenarioError, match="unknown scenario 'us7'.*us20, us5"):
        tf.load_scenario("us7")


def test_missing_file(tmp_path):
    with pytest.raises(tf.ScenarioError, match="not found"):
        tf.load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize("kwargs, needle", [
    ({"demand_scale": -1}, "demand_scale"),
    ({"demand_scale": float("nan")}, "demand_scale"),
    ({"latency_limits_ms": {"video": 10}}, "unknown workload 'video'"),
    ({"latency_limits_ms": {"chat": -3}}, "latency_limits_ms.chat"),
])
def test_bad_solve_arguments(us5, kwargs, needle):
    with pytest.raises(tf.ScenarioError, match=needle):
        tf.solve(us5, **kwargs)


def test_replace_validates(us5):
    with pytest.raises(tf.ScenarioError, match="unknown parameter"):
        us5.replace(params={"nope": 1})
    with pytest.raises(tf.ScenarioError, match="capacity_mw"):
        us5.replace(nodes={"dallas": {"capacity_mw": -1}})


def test_errors_are_tokenflow_errors():
    assert issubclass(tf.ScenarioError, tf.TokenflowError)
    assert issubclass(tf.InfeasibleMarketError, tf.TokenflowError)
