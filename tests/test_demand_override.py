"""``replace(demand=...)`` fixes only the cells given."""

from __future__ import annotations

import numpy as np
import pytest


def test_demand_override_keeps_other_cells_population_based(us5):
    n, w = us5.node_ids[0], us5.workload_ids[0]
    other_w = us5.workload_ids[1]
    s = us5.replace(demand={n: {w: 1.0}})
    assert float(s.demand.sel(node=n, workload=w)) == 1.0
    rate = us5.workloads.loc[other_w, "demand_mtok_per_h_per_mpeople"]
    # later change of the rate moves every cell but the fixed one
    s2 = s.replace(workloads={other_w: {"demand_mtok_per_h_per_mpeople": 2 * rate}})
    np.testing.assert_allclose(s2.demand.sel(workload=other_w), 2 * us5.demand.sel(workload=other_w))
    assert float(s2.demand.sel(node=n, workload=w)) == 1.0
    # same in one call
    s3 = us5.replace(demand={n: {w: 1.0}}, workloads={other_w: {"demand_mtok_per_h_per_mpeople": 2 * rate}})
    np.testing.assert_allclose(s3.demand, s2.demand)
    # population change moves the other cells of that node
    pop = us5.nodes.loc[n, "population"]
    s4 = s.replace(nodes={n: {"population": 3 * pop}})
    assert float(s4.demand.sel(node=n, workload=other_w)) == pytest.approx(
        3 * float(us5.demand.sel(node=n, workload=other_w)))
    assert float(s4.demand.sel(node=n, workload=w)) == 1.0


def test_second_override_keeps_the_first(us5):
    n0, n1, w = us5.node_ids[0], us5.node_ids[1], us5.workload_ids[0]
    s = us5.replace(demand={n0: {w: 1.0}}).replace(demand={n1: {w: 2.0}})
    assert float(s.demand.sel(node=n0, workload=w)) == 1.0
    assert float(s.demand.sel(node=n1, workload=w)) == 2.0
    assert int(s.demand_override.notna().sum().sum()) == 2
