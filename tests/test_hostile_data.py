"""Hostile round three (issue 28, groups 1-6): numbers too large for a float, the data files
the package reads (capital costs, serving measurements, bids and bid files), the Market's
corner calls.  Each case failed (traceback, silent wrong answer or hang) before its fix."""

from __future__ import annotations

import importlib
import os
import time

import numpy as np
import pandas as pd
import pytest
import yaml

import tokenflow as tf
from tokenflow.core.errors import ScenarioError
from tokenflow.planning.bids import check_bids, clear_bid_file, clear_bids, load_bid_file
from tokenflow.planning.upgrades import upgrade_sweep, upgrade_values

plan_mod = importlib.import_module("tokenflow.planning.plan")
costs_mod = importlib.import_module("tokenflow.planning.costs")
HUGE = 10**400  # a Python int beyond a float's range


# ---------------------------------------------------------------- group 1: integers too large for a float
@pytest.mark.parametrize("call, name", [
    (lambda s: tf.plan(s, demand_scale=HUGE), "demand_scale"),
    (lambda s: tf.solve(s, demand_scale=HUGE), "demand_scale"),
    (lambda s: tf.solve(s, demand_scale=-HUGE), "demand_scale"),
    (lambda s: tf.solve(s, value_of_lost_load=HUGE), "value_of_lost_load"),
    (lambda s: tf.solve(s, latency_limits_ms={"chat": HUGE}), "latency_limits_ms.chat"),
    (lambda s: tf.Market(s).solve(capacity_mw={"dallas": HUGE}), "capacity_mw.dallas"),
    (lambda s: tf.Market(s).solve(link_bandwidth_gbps=HUGE), "link_bandwidth_gbps"),
    (lambda s: tf.Market(s).solve(electricity_usd_per_kwh={"dallas": HUGE}), "electricity_usd_per_kwh"),
    (lambda s: tf.Market(s).solve(demand={"dallas": {"chat": HUGE}}), "demand.dallas.chat"),
    (lambda s: tf.plan(s, costs={"dc_facility_usd_per_mw": HUGE}), "dc_facility_usd_per_mw"),
    (lambda s: tf.plan(s, costs={"discount_rate": HUGE}), "discount_rate"),
    (lambda s: tf.plan(s, hours=HUGE), "hours"),
    (lambda s: clear_bids(s, [dict(node="dallas", workload="chat", quantity=HUGE, price=1.0)]), "quantity"),
    (lambda s: clear_bids(s, [dict(node="dallas", workload="chat", quantity=1.0, price=HUGE)]), "price"),
    (lambda s: clear_bids(s, offers=[dict(provider="p", node="dallas", capacity_mw=HUGE, price=0.1)]),
     "capacity_mw"),
    (lambda s: clear_bids(s, demand_scale=HUGE), "demand_scale"),
    (lambda s: upgrade_values(tf.Market(s), link_step_gbps=HUGE), "link_step_gbps"),
    (lambda s: upgrade_values(tf.Market(s), node_step_mw=HUGE), "node_step_mw"),
    (lambda s: upgrade_values(tf.Market(s), demand_scale=HUGE), "demand_scale"),
    (lambda s: upgrade_sweep(s, [1.0, HUGE]), "demand_scales"),
    (lambda s: tf.Market(s).linopy_model(HUGE), "demand_scale"),
    (lambda s: tf.Market(s).link_load_range(rel_tol=HUGE), "rel_tol"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_integer_beyond_a_float_is_a_named_error(us5, call, name):
    with pytest.raises(ScenarioError, match=name):
        call(us5)


def test_check_number_of_a_ten_thousand_digit_integer():
    from tokenflow.lp.inputs import check_number

    with pytest.raises(ScenarioError, match=r"x: .*integer of about 10001 digits"):
        check_number(10**10000, "x", "u")  # str() of it would itself raise (int max str digits)
    assert check_number(10**300, "x", "u") == 1e300
    assert check_number(np.array(2.5), "x", "u") == 2.5


# ---------------------------------------------------------------- group 2: the capital-cost file
def _cost_rows() -> pd.DataFrame:
    return pd.read_csv(costs_mod.COST_FILE, dtype=str, keep_default_na=False)


@pytest.fixture
def cost_file(tmp_path, monkeypatch):
    """Write a capital-cost CSV and point the plan at it (the cache cleared before and after)."""
    def use(df: pd.DataFrame | str) -> None:
        path = tmp_path / "capital_costs.csv"
        if isinstance(df, str):
            path.write_text(df)
        else:
            df.to_csv(path, index=False)
        monkeypatch.setattr(costs_mod, "COST_FILE", path)
        costs_mod._cost_table.cache_clear()

    yield use
    costs_mod._cost_table.cache_clear()


def _edit(df, param, col, value):
    df = df.copy()
    df.loc[df["parameter"] == param, col] = value
    return df


@pytest.mark.parametrize("case, match", [
    ("missing row", "missing parameter row.*discount_rate"),
    ("duplicate row", "discount_rate.*more than once"),
    ("conflicting duplicate", "discount_rate.*more than once"),
    ("unknown row", "unknown parameter"),
    ("text value", "dc_facility_usd_per_mw: value: expected a finite number"),
    ("blank value", "it_equipment_usd_per_mw: value: missing"),
    ("missing column", "missing column.*unit"),
    ("empty file", "empty file"),
    ("header only", "no rows"),
    ("unit per kW unknown", "unit .* is not the unit"),
    ("low above value", "low <= value <= high"),
    ("negative cost", "outside"),
    ("life out of range", "dc_facility_life_years.*outside"),
    ("repeated column", "given more than once"),
])
def test_capital_cost_file_refused(us5, cost_file, case, match):
    df = _cost_rows()
    if case == "missing row":
        df = df[df["parameter"] != "discount_rate"]
    elif case == "duplicate row":
        df = pd.concat([df, df[df["parameter"] == "discount_rate"]])
    elif case == "conflicting duplicate":
        df = pd.concat([df, _edit(df, "discount_rate", "value", "0.2")[lambda d: d["parameter"] == "discount_rate"]])
    elif case == "unknown row":
        df = pd.concat([df, _edit(df, "discount_rate", "parameter", "discount_rat")[lambda d: d["parameter"]
                                                                                    == "discount_rat"]])
    elif case == "text value":
        df = _edit(df, "dc_facility_usd_per_mw", "value", "eleven million")
    elif case == "blank value":
        df = _edit(df, "it_equipment_usd_per_mw", "value", "")
    elif case == "missing column":
        df = df.drop(columns="unit")
    elif case == "empty file":
        df = ""
    elif case == "header only":
        df = df.iloc[:0]
    elif case == "unit per kW unknown":
        df = _edit(df, "link_usd_per_gbps_km_year", "unit", "$ per kW per year")
    elif case == "low above value":
        df = _edit(df, "discount_rate", "low", "0.09")
    elif case == "negative cost":
        df = _edit(df, "dc_facility_usd_per_mw", "low", "-1")
    elif case == "life out of range":
        df = _edit(df, "dc_facility_life_years", "high", "1e9")
    elif case == "repeated column":
        df = ",".join(list(df.columns) + ["unit"]) + "\n"
    cost_file(df)
    with pytest.raises(ScenarioError, match=match):
        tf.plan(us5)
    with pytest.raises(ScenarioError, match=match):
        costs_mod.cost_table()


def test_capital_cost_unit_per_kw_is_converted(us5, cost_file):
    """A value 'per kW' is read as per kW (x 1000 to per MW), never used as per MW."""
    base = costs_mod.CapitalCosts.default()
    df = _cost_rows()
    for col in ("value", "low", "high"):
        x = float(df.loc[df["parameter"] == "it_equipment_usd_per_mw", col].iloc[0]) / 1000.0
        df = _edit(df, "it_equipment_usd_per_mw", col, repr(x))
    df = _edit(df, "it_equipment_usd_per_mw", "unit", "$ per kW of IT power")
    cost_file(df)
    got = costs_mod.CapitalCosts.default()
    assert got.it_equipment_usd_per_mw == pytest.approx(base.it_equipment_usd_per_mw, rel=1e-12)
    assert costs_mod.cost_table().loc["it_equipment_usd_per_mw", "unit"] == "$ per MW of IT power"


def test_capital_cost_file_fifo_refused_without_hanging(us5, cost_file, tmp_path, monkeypatch):
    fifo = tmp_path / "costs.fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(costs_mod, "COST_FILE", fifo)
    costs_mod._cost_table.cache_clear()
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="not a regular file"):
        tf.plan(us5)
    assert time.perf_counter() - t0 < 5


# ---------------------------------------------------------------- group 3: bids and bid files
def _bid_doc(n: int = 2) -> dict:
    return {"scenario": "us5", "bids": [{"node": "dallas", "workload": "chat", "quantity": 1.0,
                                         "price": 10.0 - i} for i in range(n)]}


def test_bid_file_repeated_bids_key_refused(tmp_path):
    f = tmp_path / "market.yaml"
    f.write_text("scenario: us5\nbids:\n- {node: dallas, workload: chat, quantity: 1, price: 5}\n"
                 "bids:\n- {node: dallas, workload: chat, quantity: 2, price: 5}\n")
    with pytest.raises(ScenarioError, match="duplicate key 'bids'"):
        load_bid_file(f)


def test_bid_file_deep_nesting_refused(tmp_path):
    f = tmp_path / "market.yaml"
    f.write_text("scenario: us5\nbids: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ScenarioError, match="nest"):
        load_bid_file(f)


def test_bid_file_alias_bomb_refused_fast(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    f = tmp_path / "market.yaml"
    f.write_text("\n".join(lines) + "\nscenario: us5\n")
    assert f.stat().st_size < 1500
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="alias"):
        load_bid_file(f)
    assert time.perf_counter() - t0 < 2


def test_bid_file_too_large_for_yaml_refused_fast_and_csv_accepted(tmp_path, us5):
    """60,000 bids in YAML (took over 20 s): refused within a second or two (the bid file's
    100,000-value bound, on the event stream); the same bids as a CSV next to the file are
    read and checked."""
    n = 60_000
    rows = pd.DataFrame({"node": np.resize(us5.node_ids, n), "workload": "chat", "quantity": 1.0})
    rows["price"] = 1e3 - rows.groupby(["node", "workload"]).cumcount() * 1e-3
    f = tmp_path / "market.yaml"
    f.write_text(yaml.safe_dump({"scenario": "us5", "bids": rows.to_dict("records")}))
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="100,000 values.*CSV"):
        load_bid_file(f)
    assert time.perf_counter() - t0 < 5
    rows.to_csv(tmp_path / "bids.csv", index=False)
    f.write_text(yaml.safe_dump({"scenario": "us5", "bids": "bids.csv"}))
    kw = load_bid_file(f)
    assert len(kw["bids"]) == n and kw["bids"]["step"].max() == n // len(us5.node_ids) - 1


def test_bid_file_fifo_and_directory_refused(tmp_path):
    fifo = tmp_path / "market.yaml"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_bid_file(fifo)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_bid_file(tmp_path)
    with pytest.raises(ScenarioError, match="expected a file path"):
        load_bid_file(42)


def test_bid_file_binary_and_oversized_refused(tmp_path):
    f = tmp_path / "market.yaml"
    f.write_bytes(b"scenario: us5\x00\n")
    with pytest.raises(ScenarioError, match="NUL"):
        load_bid_file(f)
    with open(f, "wb") as fh:
        fh.truncate(9 * 1024 * 1024)
    with pytest.raises(ScenarioError, match="bytes"):
        load_bid_file(f)


def test_bid_file_good_still_clears(tmp_path):
    f = tmp_path / "market.yaml"
    f.write_text(yaml.safe_dump(_bid_doc()))
    r = clear_bid_file(f)
    assert r.dataset["bid_accepted"].sum() > 0


def test_check_bids_100k_rows_fast(us5):
    n = 100_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"node": np.array(us5.node_ids)[rng.integers(0, len(us5.node_ids), n)],
                       "workload": np.array(us5.workload_ids)[rng.integers(0, len(us5.workload_ids), n)],
                       "quantity": rng.uniform(1, 10, n)})
    df["price"] = 1e3 - df.groupby(["node", "workload"]).cumcount() * 1e-3
    rows = df.to_dict("records")
    t0 = time.perf_counter()
    out = check_bids(us5, rows)
    assert time.perf_counter() - t0 < 2.0
    assert (out.groupby(["node", "workload"])["step"].max() + 1).sum() == n
    bad = df.copy()
    bad.loc[::1000, "quantity"] = -1.0  # 100 bad rows: listed up to the bound, the rest counted
    with pytest.raises(ScenarioError, match="more problems") as exc:
        check_bids(us5, bad)
    assert len(exc.value.problems) <= 22


@pytest.mark.parametrize("row, match", [
    (dict(node="dallas", workload="chat", quantity=True, price=1.0), "quantity: expected a finite number"),
    (dict(node="dallas", workload="chat", quantity="5", price=1.0), "quantity: expected a finite number"),
    (dict(node=["dallas"], workload="chat", quantity=1.0, price=1.0), "unknown node"),
    (dict(node="dallas", workload={"x": 1}, quantity=1.0, price=1.0), "unknown workload"),
    (dict(node="dallas", workload="chat", quantity=1.0, price=float("inf")), "price: expected a finite number"),
])
def test_bad_bid_rows_named(us5, row, match):
    with pytest.raises(ScenarioError, match=match):
        clear_bids(us5, [row])


def test_bid_csv_text_cell_named(us5, tmp_path):
    f = tmp_path / "bids.csv"
    f.write_text("node,workload,quantity,price\ndallas,chat,lots,5\n")
    with pytest.raises(ScenarioError, match="quantity: expected a finite number.*'lots'"):
        clear_bids(us5, f)
    f.write_text("node,workload,quantity,price\ndallas,chat,1e999,5\n")
    with pytest.raises(ScenarioError, match="quantity: expected a finite number"):
        clear_bids(us5, f)


# ---------------------------------------------------------------- group 4: serving measurements
def _serving_frame() -> pd.DataFrame:
    from tokenflow.scenarios.serving import SERVING_FILE

    return pd.read_csv(importlib.resources.files("tokenflow") / "data" / SERVING_FILE, dtype=str,
                       keep_default_na=False)


def _power_rows(df: pd.DataFrame, value: str) -> pd.DataFrame:
    row = df[(df["quantity"] == "gpu_power") & (df["model"] == "8b-class")].copy()
    row["value"] = value
    return row


@pytest.mark.parametrize("order", ["first", "last"])
def test_conflicting_gpu_power_rows_refused(tmp_path, order):
    from tokenflow.scenarios.serving import load_serving_data

    df = _serving_frame()
    extra = _power_rows(df, "350")
    df = pd.concat([extra, df] if order == "first" else [df, extra], ignore_index=True)
    f = tmp_path / "serving.csv"
    df.to_csv(f, index=False)
    with pytest.raises(ScenarioError, match="more than once|gpu_power rows"):
        load_serving_data(f)


def test_repeated_measurement_refused_even_with_another_source(tmp_path):
    from tokenflow.scenarios.serving import load_serving_data

    df = _serving_frame()
    row = df[df["quantity"] == "ttft"].iloc[[0]].copy()
    row["source_url"] = "https://example.org/other"
    f = tmp_path / "serving.csv"
    pd.concat([df, row], ignore_index=True).to_csv(f, index=False)
    with pytest.raises(ScenarioError, match="measurement .* more than once"):
        load_serving_data(f)


def test_serving_fifo_and_directory_refused_without_hanging(tmp_path):
    from tokenflow.scenarios.serving import load_serving_data

    fifo = tmp_path / "serving.csv"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_serving_data(fifo)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_serving_data(tmp_path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ScenarioError, match="empty"):
        load_serving_data(tmp_path / "empty.csv")


@pytest.mark.parametrize("change, match", [
    (lambda d: d.assign(value=np.where(d["quantity"] == "gpu_power", -700.0, d["value"])), "value: must be a positive"),
    (lambda d: d.assign(value=np.where(d["quantity"] == "ttft", np.nan, d["value"])), "value: missing"),
    (lambda d: d.assign(gpus=np.where(d["model"] == "70b-class", 2.5, d["gpus"])), "gpus: must be a whole number"),
    (lambda d: d.assign(unit=np.where(d["quantity"] == "gpu_power", "kW", d["unit"])), "not a unit of gpu_power"),
    (lambda d: pd.concat([d, d[d["quantity"] == "gpu_power"].assign(value=1.0)]), "gpu_power rows"),
])
def test_serving_models_of_a_frame_not_from_the_loader_checked(change, match):
    from tokenflow.scenarios.serving import load_serving_data, serving_models

    good = load_serving_data()
    assert serving_models(good)  # the loader's own frame passes
    with pytest.raises(ScenarioError, match=match):
        serving_models(change(good.copy()))


# ---------------------------------------------------------------- group 5: Market corner calls
@pytest.mark.parametrize("formulation", ["path", "arc"])
@pytest.mark.parametrize("call, match", [
    (lambda m: m.linopy_model(-5.0), "demand_scale"),
    (lambda m: m.linopy_model(float("nan")), "demand_scale"),
    (lambda m: m.linopy_model("10"), "demand_scale"),
    (lambda m: m.linopy_model(1e300), "beyond what the LP solver"),
    (lambda m: m.link_load_range(rel_tol="x"), "rel_tol"),
    (lambda m: m.link_load_range(rel_tol=-1.0), "rel_tol"),
    (lambda m: m.link_load_range(rel_tol=float("nan")), "rel_tol"),
    (lambda m: m.link_load_range("dallas->chicago"), "links"),
    (lambda m: m.link_load_range([3]), "links"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_market_corner_calls_are_named_errors(us5, formulation, call, match):
    m = tf.Market(us5, formulation=formulation)
    m.solve(demand_scale=20.0)
    before = (m.settings, m.inp)
    with pytest.raises(ScenarioError, match=match):
        call(m)
    assert m.settings == before[0] and m.inp is before[1]


# ---------------------------------------------------------------- group 6: calls leave the market as found
@pytest.mark.parametrize("formulation", ["path", "arc"])
def test_link_load_range_refused_keeps_no_change(us5, formulation):
    m = tf.Market(us5, formulation=formulation)
    m.solve(demand_scale=20.0)
    inp = m.inp
    with pytest.raises(ScenarioError, match="unknown directed link"):
        m.link_load_range(["nope->x"], link_bandwidth_gbps=10)
    assert m.inp is inp and m.solve().objective == pytest.approx(tf.solve(us5, demand_scale=20.0,
                                                                          formulation=formulation).objective)


def test_upgrade_values_leaves_scenario_wide_changes_reaching_every_link(us5):
    """After upgrade_values a scenario-wide bandwidth change reaches every link: s* as a fresh
    market's (before the fix every link's bandwidth was written explicitly, and s* kept its old value)."""
    m = tf.Market(us5)
    links_before = m.scenario.links.copy()
    upgrade_values(m)
    pd.testing.assert_frame_equal(m.scenario.links, links_before)
    wide = m.scenario.replace(params={"link_bandwidth_gbps": 20.0})
    got = m.scale_limit(scenario=wide).max_scale
    want = tf.Market(us5.replace(params={"link_bandwidth_gbps": 20.0})).scale_limit().max_scale
    assert got == pytest.approx(want, rel=1e-9)
    assert want < 0.9 * tf.Market(us5).scale_limit().max_scale  # the change matters


def test_upgrade_values_refused_or_infeasible_leaves_market_as_found(us5):
    m = tf.Market(us5)
    m.solve(demand_scale=20.0)
    found = (m.settings, m.inp)
    with pytest.raises(tf.InfeasibleMarketError):
        upgrade_values(m, demand_scale=1e3)
    with pytest.raises(ScenarioError):
        upgrade_values(m, node_step_mw=-1.0)
    assert m.settings == found[0] and m.inp is found[1]


def test_what_if_undoes_changes(us5):
    m = tf.Market(us5)
    z = m.solve(demand_scale=20.0).objective
    links = m.scenario.links.copy()
    with m.what_if():
        assert m.solve(link_bandwidth_gbps=50.0).objective != pytest.approx(z)
    assert m.solve().objective == pytest.approx(z, rel=1e-12)
    pd.testing.assert_frame_equal(m.scenario.links, links)


def test_public_map_links_fifo_refused_without_hanging(us5, tmp_path):
    from tokenflow.scenarios.topology import public_map_links

    fifo = tmp_path / "links.csv"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="not a regular file"):
        public_map_links(us5, str(fifo))
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("make, match", [
    (lambda: costs_mod.CapitalCosts.default().scaled(HUGE), "factor"),
    (lambda: costs_mod.CapitalCosts.default().scaled("2"), "factor"),
    (lambda: costs_mod.CapitalCosts.default().scaled(-1.0), "factor"),
    (lambda: costs_mod.CapitalCosts.default(column=np.array([1.0, 2.0])), "column"),
    (lambda: costs_mod.CapitalCosts(**{**costs_mod.CapitalCosts.default().__dict__, "discount_rate": HUGE}),
     "discount_rate"),
    (lambda: costs_mod.CapitalCosts(**{**costs_mod.CapitalCosts.default().__dict__, "dc_facility_usd_per_mw": -1.0}),
     "dc_facility_usd_per_mw"),
    (lambda: __import__("dataclasses").replace(costs_mod.CapitalCosts.default(), it_equipment_life_years=0.0),
     "it_equipment_life_years"),
])
def test_capital_costs_every_way_of_making_one_is_checked(make, match):
    with pytest.raises(ScenarioError, match=match):
        make()


@pytest.mark.parametrize("call, match", [
    (lambda s: tf.synthetic_network(HUGE), "n_nodes"),
    (lambda s: tf.synthetic_network(10**7), "n_nodes"),  # an 800 TB distance matrix, refused before it is made
    (lambda s: importlib.import_module("tokenflow.scenarios.synthetic").star_network(HUGE), "n must be"),
    (lambda s: importlib.import_module("tokenflow.latency.latency_clearing").latency_consistent_clearing(s, HUGE),
     "demand_scale"),
])
def test_sizes_beyond_a_float_or_memory_refused(us5, call, match):
    with pytest.raises(tf.TokenflowError, match=match):
        call(us5)


@pytest.mark.parametrize("content, match", [
    ("node,workload,quantity,price\ndallas,chat,1,2,9,9\n", "record 2 has 6 fields"),  # pandas took 2 as an index
    ("node,workload,quantity,price\ndallas,chat\n", "record 2 has 2 fields"),
    ('node,workload,quantity,price\n"dallas,chat,1,2\n', "record 2 has 1 fields"),  # an unbalanced quote
    ("node;workload;quantity;price\ndallas;chat;1;2\n", "missing columns"),
])
def test_bid_csv_shapes_refused(us5, tmp_path, content, match):
    f = tmp_path / "bids.csv"
    f.write_text(content)
    with pytest.raises(ScenarioError, match=match):
        clear_bids(us5, f)


@pytest.mark.parametrize("call", [
    lambda s: importlib.import_module("tokenflow.core.validate").number(10**5000, "x"),
    lambda s: importlib.import_module("tokenflow.core.validate").integer(10**5000, "x", hi=5),
    lambda s: check_bids(s, [dict(node="dallas", workload="chat", quantity=10**5000, price=1.0)]),
    lambda s: s.replace(params={"pue": 10**5000}),
    lambda s: tf.solve(s, demand_scale=10**5000),
])
def test_integer_too_long_to_print_still_a_named_error(us5, call):
    """str() of an int over 4300 digits raises ValueError: the message describes its size."""
    with pytest.raises(ScenarioError, match="integer of about 5001 digits"):
        call(us5)


def test_trace_csv_fifo_refused_without_hanging(tmp_path):
    from tokenflow.scenarios.traces import summarize_trace

    fifo = tmp_path / "trace.csv"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    with pytest.raises(tf.TokenflowError, match="not a regular file"):
        summarize_trace(fifo)
    assert time.perf_counter() - t0 < 5
