"""The link map: the backbone's links on the map, saturated links marked."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import tokenflow as tf  # noqa: E402
from tokenflow.core.errors import TokenflowError  # noqa: E402
from tokenflow.publish import plotting as tp  # noqa: E402
from tokenflow.publish import style  # noqa: E402
from tokenflow.studies.claims import saturated  # noqa: E402


def test_link_map_marks_the_saturated_links(tmp_path):
    s = tf.load_scenario("us5")
    r = tf.solve(s, demand_scale=35.0)
    fig, sat = tp.link_map_figure(r)
    assert sorted(sat) == sorted(saturated(r))  # the same links claim C1 counts
    assert fig.get_size_inches()[0] <= style.COLUMN_WIDTH_IN + 1e-9
    paths = tp.save(fig, tmp_path, "link_map")
    assert all(p.stat().st_size > 10_000 for p in paths)
    assert style.smallest_font(fig) >= style.MIN_FONT_PT
    labels = {t.get_text() for t in style.texts(fig)}
    for lk in sat:  # each saturated link is keyed by name in the legend
        assert any(tp.link_label(lk) in t for t in labels)
    plt.close(fig)


def test_topology_note():
    assert "backbone" in tp.topology_note("us5")
    with pytest.raises(TokenflowError):
        tp.topology_note("no_such_scenario")


def test_link_map_needs_links():
    class NoLinks:
        dataset = tf.solve(tf.load_scenario("us5"), demand_scale=1.0).dataset.drop_vars("congestion_rent")

    fig = plt.figure()
    ax, tr = tp.map_axes(fig, 111)
    with pytest.raises(TokenflowError, match="link_utilization and congestion_rent"):
        tp.link_map(ax, tr, NoLinks())
    plt.close(fig)
