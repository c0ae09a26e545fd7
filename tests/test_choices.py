"""Modelling choices (issue 7): names, validation, data, and what each does to the LP."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.clearing.market import reverse_arcs
from tokenflow.scenarios.network import arc_table
from tokenflow.scenarios.scenario import CHOICES, link_weights_gb


def with_demand(doc: dict, **demand: float) -> dict:
    for node, d in demand.items():
        doc["nodes"][node]["demand_mtok_per_h"] = {"w": d}
    return doc

REQ, RESP = 10.0, 90.0  # B/token of the split workload in the hand cases below


def split_doc(doc: dict) -> dict:
    w = doc["workloads"]["w"]
    del w["payload_bytes_per_token"]
    w["request_bytes_per_token"], w["response_bytes_per_token"] = REQ, RESP
    return doc


# --------------------------------------------------------------------------- API and validation

def test_every_listed_choice_value_is_accepted_and_recorded(us5):
    """A scenario without a choices section gets the first listed value of every choice; every
    listed value is accepted by with_choices, is in force afterwards and is recorded in the
    provenance table."""
    assert tf.CHOICES is CHOICES
    assert us5.choices == {k: v[0] for k, v in CHOICES.items()}
    for name, values in CHOICES.items():
        assert len(values) >= 2
        for v in values:
            s = us5.with_choices(**{name: v})
            assert s.choices[name] == v
            prov = s.provenance_table().set_index("item")
            assert prov.loc[f"choices.{name}", "value"] == v
            assert prov.loc[f"choices.{name}", "reference"].startswith("default" if v == values[0] else "alternative")


@pytest.mark.parametrize("kwargs, needle", [
    ({"payload_direction": "backwards"}, "allowed values: request, both"),
    ({"electricity_sector": "residential"}, "allowed values: commercial, industrial"),
    ({"colour": "red"}, "choices are payload_direction, electricity_sector"),
])
def test_bad_choice_lists_the_allowed_ones(us5, kwargs, needle):
    with pytest.raises(tf.ScenarioError, match=needle):
        us5.with_choices(**kwargs)


def test_with_choices_copies_and_records(us5):
    s = us5.with_choices(electricity_sector="industrial")
    assert s.choices["electricity_sector"] == "industrial" and us5.choices["electricity_sector"] == "commercial"
    prov = s.provenance_table().set_index("item")
    assert prov.loc["choices.electricity_sector", "value"] == "industrial"
    assert prov.loc["choices.electricity_sector", "kind"] == "choice"
    assert (prov["kind"] == "choice").sum() == len(CHOICES)  # recorded once, not appended again


def test_yaml_choices_section(tiny_doc, load_doc):
    tiny_doc["choices"] = {"payload_direction": "both"}
    assert load_doc(tiny_doc).choices["payload_direction"] == "both"
    tiny_doc["choices"] = {"payload_direction": "sideways"}
    with pytest.raises(tf.ScenarioError, match="allowed values: request, both"):
        load_doc(tiny_doc)


def test_payload_must_be_request_plus_response(tiny_doc, load_doc):
    tiny_doc["workloads"]["w"].update(request_bytes_per_token=10.0, response_bytes_per_token=20.0)
    with pytest.raises(tf.ScenarioError, match="is not request \\+ response"):
        load_doc(tiny_doc)


def test_payload_total_change_keeps_the_split(us5):
    chat = us5.workloads.loc["chat"]
    s = us5.replace(workloads={"chat": {"payload_bytes_per_token": 2 * chat["payload_bytes_per_token"]}})
    new = s.workloads.loc["chat"]
    assert new["request_bytes_per_token"] == pytest.approx(2 * chat["request_bytes_per_token"])
    assert new["response_bytes_per_token"] == pytest.approx(2 * chat["response_bytes_per_token"])
    s = us5.replace(workloads={"chat": {"response_bytes_per_token": 0.0}})
    assert s.workloads.loc["chat", "payload_bytes_per_token"] == pytest.approx(chat["request_bytes_per_token"])


# --------------------------------------------------------------------------- data

def test_packaged_payloads_split_and_sum(us5):
    wl = us5.workloads
    assert np.allclose(wl["payload_bytes_per_token"], wl["request_bytes_per_token"] + wl["response_bytes_per_token"])
    # chat and code review: prompt in, streamed frames out; image: small prompt in, image out
    assert (wl.loc[["chat", "code_review", "image"], "response_bytes_per_token"] > 0).all()
    assert wl.loc["image", "response_bytes_per_token"] > 1000 * wl.loc["image", "request_bytes_per_token"]
    assert wl.loc["batch_training", "response_bytes_per_token"] == 0
    prov = us5.provenance_table().set_index("item")
    assert "azure" in prov.loc["workloads.chat.request_bytes_per_token", "reference"].lower()
    assert "Splitwise" in prov.loc["workloads.code_review.request_bytes_per_token", "reference"]


@pytest.mark.parametrize("name", ["us5", "us20"])
def test_industrial_prices_in_the_dataset(name):
    s = tf.load_scenario(name)
    ind = s.with_choices(electricity_sector="industrial")
    assert not np.allclose(ind.nodes["electricity_usd_per_kwh"], s.nodes["electricity_usd_per_kwh"])
    assert (ind.nodes["electricity_usd_per_kwh"] <= s.nodes["electricity_usd_per_kwh"]).all()
    prov = s.provenance_table()
    rows = prov[prov["item"].str.endswith("electricity_usd_per_kwh_industrial")]
    assert len(rows) == len(s.node_ids)
    assert rows["reference"].str.contains("eia.gov").all()
    assert rows["reference"].str.contains("industrial").all()


def test_capacity_measures_resolve_in_the_scenario(us5):
    for measure in CHOICES["capacity_measure"]:
        s = us5.with_choices(capacity_measure=measure)
        assert (s.nodes["capacity_mw"] == s.nodes[f"capacity_mw_{measure}"]).all()
    cw = us5.with_choices(capacity_measure="cushman_wakefield")
    assert cw.nodes["capacity_mw"].sum() > us5.nodes["capacity_mw"].sum()


def test_replacing_a_resolved_node_field_follows_the_choice(us5):
    ind = us5.with_choices(electricity_sector="industrial").replace(nodes={"dallas": {"electricity_usd_per_kwh": 0.05}})
    assert ind.nodes.loc["dallas", "electricity_usd_per_kwh"] == 0.05
    assert ind.with_choices(electricity_sector="commercial").nodes.loc["dallas", "electricity_usd_per_kwh"] \
        == us5.nodes.loc["dallas", "electricity_usd_per_kwh"]


def test_scenario_without_alternatives_says_what_is_missing(tiny_doc, load_doc):
    with pytest.raises(tf.ScenarioError, match="electricity_usd_per_kwh_industrial, missing for A, B"):
        load_doc(tiny_doc).with_choices(electricity_sector="industrial")


# --------------------------------------------------------------------------- link weights

def test_link_weights_per_choice(us5):
    wl = us5.workloads
    req, resp = wl["request_bytes_per_token"].to_numpy() / 1e3, wl["response_bytes_per_token"].to_numpy() / 1e3
    f, r = link_weights_gb(us5, True)
    assert np.allclose(f, req + resp) and not r.any()
    f, r = link_weights_gb(us5.with_choices(payload_direction="both"), True)
    assert np.allclose(f, req) and np.allclose(r, resp)
    f, r = link_weights_gb(us5, False)
    assert np.allclose(f, us5.params["reference_payload_bytes_per_token"] / 1e3) and not r.any()
    f, _ = link_weights_gb(us5.with_choices(baseline_payload="mean_payload"), False)
    w = us5.demand.sum("node").to_numpy()
    assert np.allclose(f, (w * (req + resp)).sum() / w.sum())


# --------------------------------------------------------------------------- the LP

@pytest.mark.parametrize("formulation", ["path", "arc"])
def test_both_directions_hand_case(tiny_doc, load_doc, formulation):
    """All demand at B, compute only at A: request bytes go B->A, response bytes A->B."""
    tiny_doc["nodes"]["B"]["capacity_mw"] = 0.0
    s = load_doc(split_doc(with_demand(tiny_doc, B=1000.0))).with_choices(payload_direction="both")
    r = tf.solve(s, formulation=formulation)
    ds = r.dataset
    gbps = {a: float(ds["link_traffic"].sel(link=a).sum()) for a in ("B->A", "A->B")}
    assert gbps["B->A"] == pytest.approx(1000.0 * REQ / 1e3 / 450.0, rel=1e-9)
    assert gbps["A->B"] == pytest.approx(1000.0 * RESP / 1e3 / 450.0, rel=1e-9)
    # the transfer charge covers both directions, and the price carries it
    assert float(ds["cost"].sel(component="transfer")) == pytest.approx(1000.0 * 0.01 * (REQ + RESP) / 1e3)
    assert float(r.prices.sel(node="B", workload="w")) == pytest.approx(0.10 + 0.01 * (REQ + RESP) / 1e3)
    assert r.choices["payload_direction"] == "both"
    assert json.loads(ds.attrs["choices"]) == s.choices


@pytest.mark.parametrize("formulation", ["path", "arc"])
def test_response_direction_can_bind(tiny_doc, load_doc, formulation):
    """With 'both', only the response direction limits the flow: s* follows RESP, not REQ + RESP."""
    tiny_doc["nodes"]["B"]["capacity_mw"] = 0.0
    tiny_doc["nodes"]["A"]["capacity_mw"] = 1e6
    tiny_doc["links"][0]["bandwidth_gbps"] = 1.0
    doc = split_doc(with_demand(tiny_doc, B=1000.0))
    s = load_doc(doc)
    one_way = tf.demand_scale_limit(s, formulation=formulation)
    both = tf.demand_scale_limit(s.with_choices(payload_direction="both"), formulation=formulation)
    assert one_way.max_scale == pytest.approx(450.0 / (1000.0 * (REQ + RESP) / 1e3), rel=1e-7)
    assert both.max_scale == pytest.approx(450.0 / (1000.0 * RESP / 1e3), rel=1e-7)
    assert both.binding_links == ["A->B"]


@pytest.mark.slow
def test_us5_both_reverse_arcs_carry_response_of_remote_tokens(us5):
    """us5 at 35x with 'both': every arc carries the request bytes of its own flow plus exactly the
    response bytes of the flow on its reverse arc, in both formulations, which agree on cost."""
    s = us5.with_choices(payload_direction="both")
    results = {f: tf.solve(s, demand_scale=35.0, formulation=f) for f in ("path", "arc")}
    assert results["path"].objective == pytest.approx(results["arc"].objective, rel=1e-7)
    resp = s.workloads["response_bytes_per_token"].to_numpy() / 1e3
    req = s.workloads["request_bytes_per_token"].to_numpy() / 1e3
    for r in results.values():
        ds = r.dataset
        flow = ds["link_flow"].transpose("link", "workload").to_numpy()  # token-hops per arc
        traffic = ds["link_traffic"].transpose("link", "workload").to_numpy() * 450.0  # GB/h
        # physical bytes = request on the arc + response of the flow on its reverse arc
        rev = reverse_arcs(arc_table(s))
        assert np.allclose(traffic, flow * req + flow[rev] * resp, rtol=1e-9, atol=1e-9)
        # every token-hop carries its request one way and its response the other way
        assert traffic.sum() == pytest.approx(((req + resp) * flow.sum(axis=0)).sum(), rel=1e-9)
        # utilisation as the model counts it is the same physical load here
        assert np.allclose(ds["link_utilization"], traffic.sum(axis=1) / 450.0 / ds["link_capacity"])


@pytest.mark.slow
def test_defaults_reproduce_request_mode(us5):
    """Default choices give the same market as the explicit 'request' / commercial / text_token /
    as_published choices, and 'both' with zero response bytes is the 'request' market."""
    r0 = tf.solve(us5, demand_scale=35.0)
    r1 = tf.solve(us5.with_choices(**{k: v[0] for k, v in CHOICES.items()}), demand_scale=35.0)
    assert r0.objective == r1.objective
    no_resp = us5.replace(workloads={w: {"response_bytes_per_token": 0.0} for w in us5.workload_ids})
    a = tf.solve(no_resp, demand_scale=35.0)
    b = tf.solve(no_resp.with_choices(payload_direction="both"), demand_scale=35.0)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)
    assert np.allclose(a.prices, b.prices, rtol=1e-7)


# --------------------------------------------------------------------------- sweeps

def test_sweep_accepts_choices(us5):
    from tokenflow.studies.sweep import apply_inputs, sweep

    s, _ = apply_inputs(us5, {"choice.electricity_sector": "industrial", "scale.electricity": 2.0})
    assert s.choices["electricity_sector"] == "industrial"
    assert np.allclose(s.nodes["electricity_usd_per_kwh"], 2 * us5.nodes["electricity_usd_per_kwh_industrial"])
    with pytest.raises(tf.ScenarioError, match="allowed values: request, both"):
        apply_inputs(us5, {"choice.payload_direction": "up"})
    with pytest.raises(tf.ScenarioError, match="choice.<payload_direction"):
        sweep(us5, grid={"choice.nonsense": ["a"]}, n_workers=0, progress=False)
    ds = sweep(us5, grid={"choice.electricity_sector": list(CHOICES["electricity_sector"])},
               fixed={"demand_scale": 10.0}, n_workers=0, progress=False)
    assert list(ds["choice.electricity_sector"].values) == ["commercial", "industrial"]
    obj = ds["objective"].values
    assert obj[1] < obj[0]  # industrial power is cheaper in every us5 state


# --------------------------------------------------------------------------- alternative optima

def test_link_load_range_finds_alternative_optima(tiny_doc, load_doc):
    """Demand at A, identical compute at B and C equally far away: any split is optimal."""
    from tokenflow.clearing.alt_optima import link_load_range, saturated_count_range

    tiny_doc["nodes"]["A"]["capacity_mw"] = 0.0
    tiny_doc["nodes"]["C"] = {"lat": 30.0, "lon": -100.0, "population": 0, "electricity_usd_per_kwh": 0.20,
                              "capacity_mw": 10.0}
    tiny_doc["links"].append({"a": "A", "b": "C"})
    s = load_doc(with_demand(tiny_doc, A=1000.0))
    rng = link_load_range(s)
    full = 1000.0 * 0.1 / (100.0 * 450.0)  # all 1000 M tokens/h of 100-B tokens on one 100 Gbps arc
    for arc in ("A->B", "A->C"):
        assert float(rng["min"].sel(link=arc)) == pytest.approx(0.0, abs=1e-9)
        assert float(rng["max"].sel(link=arc)) == pytest.approx(full, rel=1e-6)
    assert not rng.attrs["unique"]
    assert saturated_count_range(rng) == (0, 0)


def test_link_load_range_unique_case(tiny_doc, load_doc):
    from tokenflow.clearing.alt_optima import link_load_range

    tiny_doc["links"][0]["bandwidth_gbps"] = 1.0
    s = load_doc(with_demand(tiny_doc, B=6000.0))
    rng = link_load_range(s)
    assert rng.attrs["unique"]
    assert float(rng["min"].sel(link="B->A")) == pytest.approx(1.0, rel=1e-6)


def test_both_directions_keep_decomposition_and_settlement(us5):
    """Reverse-arc transfer and congestion terms are in the price decomposition and the books."""
    r = tf.solve(us5.with_choices(payload_direction="both"), demand_scale=45.0)
    assert r.saturated_links()  # congestion present, so the rent terms are exercised
    assert float(np.nanmax(np.abs(r.price_decomposition()["residual"]))) < 1e-9
    st = r.settlement()
    assert abs(float(st["imbalance"])) < 1e-6 * float(st["total_payments"])
