"""Identifiability (issue 14, items 4-5): k-nearest-neighbour backbones, recalibration per
choice set, per-case claim evaluation, and bad input."""

from __future__ import annotations

import copy
import importlib.util
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import BASE, write

import tokenflow as tf
from tokenflow.scenarios.network import haversine_km, link_table
from tokenflow.scenarios.topology import (
    is_connected,
    knn_backbone,
    knn_links,
    public_map_backbone,
    public_map_links,
    with_links,
)
from tokenflow.studies.identifiability import (
    PUBLIC_MAP_LABEL,
    backbones,
    choice_sets,
    claims_at,
    evaluate_recalibration,
    recalibrate_choices,
)


def four_nodes(tmp_path, lats: dict[str, float]) -> tf.Scenario:
    """Four nodes on the meridian 100 W (distance = latitude difference x 111.19 km)."""
    doc = copy.deepcopy(BASE)
    node = doc["nodes"]["A"]
    doc["nodes"] = {n: {**node, "lat": lat} for n, lat in lats.items()}
    doc["links"] = [{"a": "A", "b": "B"}]
    return tf.load_scenario(write(tmp_path, doc))


@pytest.fixture(scope="module")
def us20() -> tf.Scenario:
    return tf.load_scenario("us20")


LINE = {"A": 30.0, "B": 31.0, "C": 33.0, "D": 36.5}  # gaps 1, 2, 3.5 degrees


@pytest.mark.parametrize("k, expected", [
    (1, [("A", "B"), ("B", "C"), ("C", "D")]),            # A->B, B->A, C->B, D->C
    (2, [("A", "B"), ("A", "C"), ("B", "C"), ("B", "D"), ("C", "D")]),  # + A->C, C->A, D->B
    (3, [("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")]),  # complete
])
def test_knn_links_by_hand(tmp_path, k, expected):
    s = four_nodes(tmp_path, LINE)
    links = knn_links(s, k)
    assert links == expected
    assert len(set(links)) == len(links)  # no duplicates
    t = with_links(s, links)
    assert is_connected(t)
    deg = {n: sum(n in pair for pair in links) for n in s.node_ids}
    assert min(deg.values()) >= k


def test_knn_joins_components_with_the_shortest_bridge(tmp_path):
    """Two far-apart pairs: k = 1 gives A-B and C-D; the shortest bridge B-C joins them."""
    s = four_nodes(tmp_path, {"A": 30.0, "B": 30.5, "C": 40.0, "D": 40.5})
    assert knn_links(s, 1) == [("A", "B"), ("B", "C"), ("C", "D")]
    assert is_connected(knn_backbone(s, 1))


def test_knn_reproduces_the_packaged_us20_backbone(us20):
    """us20's backbone was built by tools/build_scenarios.py with k = 3: same rule, same links."""
    packaged = sorted(tuple(sorted(p)) for p in zip(us20.links["a"], us20.links["b"]))
    assert knn_links(us20, 3) == packaged


def test_new_links_get_length_latency_and_parameters_like_packaged_ones():
    s = tf.load_scenario("us5")
    t = knn_backbone(s, 4)  # complete graph: adds dallas--new_york etc.
    assert len(t.links) == 10 and is_connected(t)
    lt = link_table(t)
    na, nb = t.nodes.loc["dallas"], t.nodes.loc["new_york"]
    d = haversine_km(na["lat"], na["lon"], nb["lat"], nb["lon"])
    row = lt.loc["dallas--new_york"]
    assert row["latency_ms"] == pytest.approx(d * s.params["route_factor"] * s.params["fiber_delay_us_per_km"] / 1000)
    assert row["bandwidth_gbps"] == s.params["link_bandwidth_gbps"]
    assert row["transfer_cost_usd_per_gb"] == s.params["transfer_cost_usd_per_gb"]
    # links the packaged backbone already has keep their rows
    np.testing.assert_allclose(lt.loc[s.links.index, "latency_ms"], link_table(s)["latency_ms"])


@pytest.mark.parametrize("k", [0, 4, 2.5, True, "2", -1])
def test_bad_k_raises(tmp_path, k):
    s = four_nodes(tmp_path, LINE)
    with pytest.raises(tf.ScenarioError, match="k \\(nearest neighbours per metro\\)"):
        knn_links(s, k)


def test_bad_k_in_backbones_raises(us20):
    with pytest.raises(tf.ScenarioError, match="from 1 to 4 for 5 nodes"):
        backbones(tf.load_scenario("us5"), us20, ks=(2, 5))


def test_bad_links_raise(tmp_path):
    s = four_nodes(tmp_path, LINE)
    with pytest.raises(tf.ScenarioError, match="duplicate link A--B"):
        with_links(s, [("A", "B"), ("B", "A"), ("C", "D")])
    with pytest.raises(tf.ScenarioError, match="unknown node"):
        with_links(s, [("A", "Z")])


@pytest.mark.parametrize("choices, needle", [
    ({"colour": ["red"]}, "unknown modelling choice 'colour'"),
    ({"payload_direction": ["sideways"]}, "allowed values: request, both"),
    ({"payload_direction": "both"}, "non-empty list"),
    ({"payload_direction": []}, "non-empty list"),
])
def test_unknown_choice_raises(choices, needle):
    with pytest.raises(tf.ScenarioError, match=needle):
        choice_sets(choices)
    with pytest.raises(tf.ScenarioError, match=needle):
        recalibrate_choices(choices=choices)


def test_choice_sets_cover_every_combination():
    sets = choice_sets()
    assert len(sets) == math.prod(len(v) for v in tf.CHOICES.values())
    assert len({tuple(c.items()) for c in sets}) == len(sets)
    assert sets[0] == {k: v[0] for k, v in tf.CHOICES.items()}


def test_evaluator_refuses_other_inputs(us20):
    with pytest.raises(tf.ScenarioError, match="only set choice"):
        evaluate_recalibration(tf.load_scenario("us5"), {"param.pue": 1.2}, s20=us20)


def test_recalibration_at_the_defaults_reproduces_the_data_file(us20):
    """Rerunning both calibrations at the default choices (through the sweep evaluator)
    lands on the calibrated values written in the scenario file, and C1-C4 all hold there."""
    s5 = tf.load_scenario("us5")
    df = recalibrate_choices(s5, us20, choices={k: [v[0]] for k, v in tf.CHOICES.items()})
    assert len(df) == 1
    r = df.iloc[0]
    assert r["status"] == "ok"
    assert bool(r["c2_hit"]) and bool(r["c3_hit"])
    # the file holds the values rounded to 5 and 6 significant figures
    assert r["bandwidth_gbps"] == pytest.approx(s5.params["link_bandwidth_gbps"], rel=5e-5)
    assert r["opex_usd_per_kwh"] == pytest.approx(s5.params["other_opex_usd_per_kwh"], rel=5e-5)
    assert r["recal_c2"] == pytest.approx(tf.studies.claims.PAPER_CLAIMS["C2"]["paper"], abs=1e-4)
    assert r["recal_c3"] == pytest.approx(tf.studies.claims.PAPER_CLAIMS["C3"]["paper"], abs=1e-3)
    assert all(bool(r[f"recal {c} ok"]) for c in ("C1", "C2", "C3", "C4"))


def test_claims_per_case_cbre_colocation(us20):
    """capacity_measure = cbre_colocation: the 35x case clears (C1, C2 and C4 have values);
    only the 15 ms chat case of C3 does not, and only C3 is missing."""
    s5 = tf.load_scenario("us5").with_choices(capacity_measure="cbre_colocation")
    s20 = us20.with_choices(capacity_measure="cbre_colocation")
    out = claims_at(s5, s20)
    assert out["s_star"] > tf.studies.claims.CASE_SCALE
    assert np.isfinite([out["c1"], out["c2"], out["c4"]]).all()
    assert math.isnan(out["c3"])
    assert out["cases"].startswith("C3: the 15 ms chat case does not clear")
    assert "C1" not in out["cases"] and "C4" not in out["cases"]
    with pytest.raises(tf.InfeasibleMarketError):
        tf.solve(s5, demand_scale=tf.studies.claims.CASE_SCALE, latency_limits_ms={"chat": 15.0})


# ------------------------------------------------------------- public long-haul map variant

def _derive_tool():
    path = Path(__file__).resolve().parents[1] / "tools" / "derive_public_map_links.py"
    spec = importlib.util.spec_from_file_location("derive_public_map_links", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_public_map_variant_is_packaged_union_map_links(us20):
    s5 = tf.load_scenario("us5")
    for s in (s5, us20):
        have = {tuple(sorted(p)) for p in zip(s.links["a"], s.links["b"])}
        found = public_map_links(s)
        assert found and len(set(found)) == len(found)
        t = public_map_backbone(s)
        assert {tuple(sorted(p)) for p in zip(t.links["a"], t.links["b"])} == have | set(found)
        lt = link_table(t)
        for a, b in set(found) - have:  # new links: scenario-wide figures, like knn_backbone's
            assert lt.loc[f"{a}--{b}", "bandwidth_gbps"] == s.params["link_bandwidth_gbps"]
    nets = backbones(s5, us20, ks=(2,), public_map=True)
    assert list(nets) == ["packaged", "k = 2", PUBLIC_MAP_LABEL]
    assert len(nets[PUBLIC_MAP_LABEL][1].links) > len(us20.links)


def test_public_map_csv_is_sourced_and_physically_consistent(us20):
    """Every row cites the Zoo; a map route between two metros matched within 80 km of
    their nodes can be no shorter than their great-circle distance less 2 x 80 km."""
    with resources.as_file(resources.files("tokenflow") / "data" / "public_map_links.csv") as f:
        t = pd.read_csv(f)
    assert set(t["scenario"]) == {"us5", "us20"}
    assert t["source"].str.contains("topology-zoo.org").all()
    for _, r in t.iterrows():
        n = tf.load_scenario(r["scenario"]).nodes if r["scenario"] == "us5" else us20.nodes
        d = haversine_km(n.loc[r["a"], "lat"], n.loc[r["a"], "lon"], n.loc[r["b"], "lat"], n.loc[r["b"], "lon"])
        assert r["route_km"] >= d - 160.0
        assert len(r["source_links"].split("-")) >= 2


def test_derive_rule_on_a_hand_made_map(tmp_path):
    """Map nodes: a (near A), m (unmatched, between B and C), b (near B), c (near C), d (near
    D).  Edges a-b, b-m, m-c, a-d, d-c.  A-B, B-C (via m), A-D, C-D are links; A-C is not (its
    shortest route a-b-m-c passes metro B)."""
    tool = _derive_tool()
    coords = {"a": (30.0, -100.0), "b": (31.0, -100.0), "m": (32.0, -100.0), "c": (33.0, -100.0), "d": (31.5, -99.0)}
    ids = {k: i for i, k in enumerate(coords)}
    lines = ["graph ["]
    for k, (lat, lon) in coords.items():
        lines += ["  node [", f"    id {ids[k]}", f'    label "{k}"', f"    Longitude {lon}",
                  f"    Latitude {lat}", "  ]"]
    for u, v in [("a", "b"), ("b", "m"), ("m", "c"), ("a", "d"), ("d", "c")]:
        lines += ["  edge [", f"    source {ids[u]}", f"    target {ids[v]}", "  ]"]
    lines.append("]")
    gml = tmp_path / "map.gml"
    gml.write_text("\n".join(lines))
    doc = copy.deepcopy(BASE)
    node = doc["nodes"]["A"]
    doc["nodes"] = {"A": {**node, "lat": 30.2, "lon": -100.0}, "B": {**node, "lat": 31.0, "lon": -100.3},
                    "C": {**node, "lat": 33.0, "lon": -100.0}, "D": {**node, "lat": 31.5, "lon": -99.2}}
    doc["links"] = [{"a": "A", "b": "B"}, {"a": "B", "b": "C"}, {"a": "C", "b": "D"}]
    path = write(tmp_path, doc)
    tool.load_scenario = lambda name: tf.load_scenario(path)
    out = tool.derive(gml, "tiny")
    assert sorted(zip(out["a"], out["b"])) == [("A", "B"), ("A", "D"), ("B", "C"), ("C", "D")]
    assert dict(zip(zip(out["a"], out["b"]), out["source_links"]))[("B", "C")] == "b-m-c"


@pytest.mark.parametrize("edit,match", [
    (lambda r: r.update(a="atlantis"), "row 2: field a: unknown node 'atlantis'"),
    (lambda r: r.update(b=r["a"]), "row 2: fields a, b: link joins node"),
    (lambda r: r.update(source=""), r"row 2: empty field\(s\) \['source'\]"),
    (lambda r: r.update(route_km="-5"), "row 2: field route_km must be a positive number"),
    (lambda r: r.update(a="chicago", b="new_york"), "row 2: fields a, b: duplicate link chicago--new_york"),
])
def test_bad_public_map_rows_raise(tmp_path, edit, match):
    rows = [{"scenario": "us5", "a": "chicago", "b": "new_york", "source_links": "CHCG-NY54", "route_km": "1145.8",
             "source": "http://www.topology-zoo.org/", "accessed": "2026-12-02"},
            {"scenario": "us5", "a": "dallas", "b": "chicago", "source_links": "DLLS-STLS-CHCG", "route_km": "1300.2",
             "source": "http://www.topology-zoo.org/", "accessed": "2026-12-02"}]
    edit(rows[1])
    p = tmp_path / "links.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    with pytest.raises(tf.ScenarioError, match=match) as e:
        public_map_links(tf.load_scenario("us5"), str(p))
    assert "links.csv" in str(e.value)


def test_public_map_file_problems_raise(tmp_path):
    s = tf.load_scenario("us5")
    p = tmp_path / "x.csv"
    pd.DataFrame([{"scenario": "us5", "a": "chicago", "b": "new_york"}]).to_csv(p, index=False)
    with pytest.raises(tf.ScenarioError, match="x.csv: missing columns"):
        public_map_links(s, str(p))
    pd.DataFrame([{"scenario": "us20", "a": "chicago", "b": "new_york", "source_links": "CHCG-NY54",
                   "route_km": 1145.8, "source": "http://www.topology-zoo.org/", "accessed": "2026-12-02"}]
                 ).to_csv(p, index=False)
    with pytest.raises(tf.ScenarioError, match="no rows for scenario 'us5'"):
        public_map_links(s, str(p))
    with pytest.raises(tf.ScenarioError, match="cannot read"):
        public_map_links(s, str(tmp_path / "missing.csv"))
