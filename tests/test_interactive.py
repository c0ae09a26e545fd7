"""The interactive price map is self-contained and carries every node's price decomposition."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import tokenflow as tf
from tokenflow.clearing.results import COMPONENTS
from tokenflow.publish.interactive import node_data, price_map_html, save_price_map


@pytest.fixture(scope="module")
def us20():
    return tf.solve(tf.load_scenario("us20"), demand_scale=35.0)


def test_every_node_with_decomposition_that_adds_up(us20):
    nodes = node_data(us20)
    assert [n["node"] for n in nodes] == [str(v) for v in us20.dataset["node"].values]
    for n in nodes:
        for wk, p in n["prices"].items():
            assert p["price"] == pytest.approx(float(us20.prices.sel(node=n["node"], workload=wk)), abs=1e-6)
            assert sum(p[c] for c in COMPONENTS) == pytest.approx(p["price"], abs=1e-5)


def test_html_is_self_contained(us20, tmp_path):
    page = price_map_html(us20, title="us20")
    # no external script, stylesheet, font or image: no src/href attribute, no url() at all
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert "url(" not in page and "@import" not in page
    assert page.count("<script>") == 1
    m = re.search(r"D = (\{.*?\});\n", page)
    data = json.loads(m.group(1))
    assert len(data["nodes"]) == us20.dataset.sizes["node"]
    # one hoverable group per node, and a drawn basemap (51 US states + DC)
    assert page.count('class="tf-node"') == us20.dataset.sizes["node"]
    assert page.count('class="tf-state"') >= 49
    path = save_price_map(us20, tmp_path / "map.html")
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert np.isfinite([n["lon"] for n in data["nodes"]]).all()
