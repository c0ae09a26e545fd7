"""Values of lost load come from a sourced CSV, derived by a stated rule."""

from __future__ import annotations

from importlib import resources

import pandas as pd
import pytest

from tokenflow.core.errors import ScenarioError
from tokenflow.scenarios.scenario import IMAGE_TOKENS_PER_IMAGE
from tokenflow.scenarios.voll import value_of_lost_load, voll_table


def test_every_workload_has_a_sourced_voll(us5):
    v = value_of_lost_load(us5.workload_ids)
    assert set(v) == set(us5.workload_ids) and all(x > 0 for x in v.values())
    assert voll_table()["source"].str.startswith("http").all()


def test_voll_derivation_by_hand():
    t = voll_table()
    img = t.loc["image"]
    assert img["tokens_per_unit"] == IMAGE_TOKENS_PER_IMAGE
    assert value_of_lost_load(["image"])["image"] == pytest.approx(img["list_price_usd"] * 1e6 / IMAGE_TOKENS_PER_IMAGE)
    v = value_of_lost_load(["chat", "batch_training"], with_prompt=False)
    assert v["batch_training"] == pytest.approx(t.loc["batch_training", "factor"] * v["chat"])


def test_voll_counts_the_prompt_a_generated_token_carries():
    """VoLL per generated token = output price + prompt tokens per generated token (trace) x
    input price, by hand from the trace summary and the list-price table."""
    from tokenflow.scenarios.traces import trace_stats

    with resources.as_file(resources.files("tokenflow") / "data" / "api_list_prices.csv") as f:
        api = pd.read_csv(f).set_index("model")
    mini = api.loc["OpenAI GPT-4o mini"]
    v = value_of_lost_load(["chat", "code_review", "batch_training", "image"])
    out = value_of_lost_load(["chat", "code_review", "batch_training", "image"], with_prompt=False)
    for w, trace in (("chat", "conv"), ("code_review", "code")):
        st = trace_stats(trace)
        want = mini["output_usd_per_mtok"] + st.prompt_mean / st.generated_mean * mini["input_usd_per_mtok"]
        assert v[w] == pytest.approx(want, rel=1e-12)
        assert v[w] > out[w]
    assert v["code_review"] > 10 * out["code_review"]  # prompt-heavy: the input price dominates
    assert v["batch_training"] == out["batch_training"] and v["image"] == out["image"]  # no prompt trace
    with pytest.raises(ScenarioError, match="with_prompt"):
        value_of_lost_load(["chat"], with_prompt="yes")


def test_consistent_unit_does_not_shed_code_review(us5):
    """Review finding 2: with the output price alone, prefill_and_decode sheds all code review
    at 10x (its processing cost exceeds the VoLL); with the prompt counted it is served."""
    import tokenflow as tf

    c = us5.with_choices(energy_accounting="prefill_and_decode")
    r = tf.solve(c, demand_scale=10, value_of_lost_load=value_of_lost_load(c.workload_ids))
    share = (r.dataset.unserved.sum("node") / r.dataset.demand.sum("node")).to_pandas()
    assert share["code_review"] < 1e-9
    assert float(r.prices.sel(workload="code_review").max()) <= value_of_lost_load(["code_review"])["code_review"]


def test_token_prices_match_the_api_list_prices_csv():
    """A per-token list price used for a value of lost load is the same row as in the list-price table."""
    with resources.as_file(resources.files("tokenflow") / "data" / "api_list_prices.csv") as f:
        api = pd.read_csv(f).set_index("model")
    t = voll_table()
    for w, row in t[t["tokens_per_unit"] == 1_000_000].iterrows():
        model = row["per"].split("(")[1].rstrip(")")
        assert model in api.index, (w, model)
        assert row["list_price_usd"] == api.loc[model, "output_usd_per_mtok"]
        assert row["source"] == api.loc[model, "source"]
        assert row["input_price_usd_per_mtok"] in (api.loc[model, "input_usd_per_mtok"], 0.0)


def test_unknown_workload_is_refused():
    with pytest.raises(ScenarioError, match="no sourced list price"):
        value_of_lost_load(["nowhere"])


def test_model_page_names_the_list_price_sources():
    """The model chapter's citation of the list prices names every source host of the CSV."""
    from pathlib import Path
    from urllib.parse import urlparse

    with resources.as_file(resources.files("tokenflow") / "data" / "api_list_prices.csv") as f:
        api = pd.read_csv(f)
    page = (Path(__file__).resolve().parents[1] / "book" / "model.md").read_text()
    for host in {urlparse(u).netloc.removeprefix("www.") for u in api["source"]}:
        assert host in page, host
