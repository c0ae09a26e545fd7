"""The house figure style: :func:`tokenflow.publish.style.fit` brings figures to the text column."""

from __future__ import annotations

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tokenflow.publish import style  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_a_wide_one_row_figure_is_reflowed_to_the_column_with_readable_text():
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.tick_params(labelsize=5)
        ax.set_title("t", fontsize=6)
    style.fit(fig)
    assert fig.get_size_inches()[0] == pytest.approx(style.COLUMN_WIDTH_IN)
    rows = {round(ax.get_position().y0, 3) for ax in axes}
    assert len(rows) == 2  # two rows of two
    assert style.smallest_font(fig) >= style.MIN_FONT_PT
    assert fig._tf_layout == "constrained"
    # the layout is kept as constrained layout placed it: laying it out again moves nothing
    kept = [ax.get_position().bounds for ax in axes]
    fig.set_layout_engine("constrained")
    fig.draw_without_rendering()
    np.testing.assert_allclose([ax.get_position().bounds for ax in axes], kept, atol=2e-3)
    fig.set_layout_engine("none")
    size = tuple(fig.get_size_inches())
    style.fit(fig)  # fitted once: a second call changes nothing
    assert tuple(fig.get_size_inches()) == size


def test_a_figure_constrained_layout_cannot_place_is_widened_or_left_without_layout():
    fig, axes = plt.subplots(1, 2, figsize=(14, 3))
    for ax in axes:
        ax.set_ylabel("a very long label that takes the whole height and more " * 3, fontsize=12)
        ax.set_xlabel("x " * 60, fontsize=12)
    style.fit(fig)
    eng = fig.get_layout_engine()
    assert eng is None or type(eng).__name__ == "PlaceHolderLayoutEngine"  # later draws keep the layout
    if fig._tf_layout == "constrained":
        fig.set_layout_engine("constrained")
        assert not style._collapses(fig)  # it kept the layout only at a size where it places the panels


def test_a_column_width_figure_keeps_its_size():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [1, 0])
    style.fit(fig)
    assert tuple(fig.get_size_inches()) == pytest.approx((6, 3))
