"""The house table style (tokenflow.publish.tables) and figure style (tokenflow.publish.style)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tokenflow.core.errors import TokenflowError
from tokenflow.publish import tables


def cells(html: str) -> list[str]:
    """Text of every <td>/<th> (and block <dd>) of rendered HTML."""
    return [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(r"<(?:td|th|dd)[^>]*>(.*?)</(?:td|th|dd)>",
                                                                    html, flags=re.S)]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"links": [4.0, 5.0, np.nan], "price": [0.0123456, 123.456, np.inf],
                         "calibrated": [True, False, True], "latency_ms": [1.5, -np.inf, 0.0],
                         "note": ["a", None, "c"]}, index=["C1", "C2", "C3"])


def test_no_raw_values(frame):
    html = tables.render(frame, caption="Claims", units={"price": "$/M tokens"})
    text = cells(html)
    for bad in ("nan", "NaN", "inf", "True", "False", "None"):
        assert bad not in text, bad
    assert "yes" in text and "no" in text and "unbounded" in text and "–" in text


def test_integers_units_caption(frame):
    html = tables.render(frame, caption="Claims of the paper", units={"price": "$/M tokens"})
    text = cells(html)
    assert "4" in text and "5" in text and "4.0" not in html and "4.000" not in html
    assert "price ($/M tokens)" in text
    assert "latency (ms)" in text  # snake-case unit suffix as a unit
    assert "<caption>Claims of the paper</caption>" in html


def test_significant_figures(frame):
    assert tables.significant(0.0123456, 3) == "0.0123"
    assert tables.significant(123456.7, 3) == "123,457"  # no digits are dropped from the integer part
    assert tables.significant(-0.0, 3) == "0"
    assert tables.significant(2.5, 4) == "2.5"  # no trailing zeros
    assert tables.significant(-1234.5678, 4) == "−1,235"
    assert tables.significant(1.23456e-7, 3) == "1.23e-07"
    text = cells(tables.render(frame, sig={"price": 2}))
    assert "0.012" in text and "123" in text
    with pytest.raises(TokenflowError):
        tables.significant(1.0, 0)


def test_bad_units_column(frame):
    with pytest.raises(TokenflowError, match="not in the table"):
        tables.table(frame, units={"nope": "s"})


def test_wrapper_scrolls(frame):
    html = tables.render(frame)
    assert html.startswith('<div class="tf-table-wrap"') and "overflow-x:auto" in html


def test_restyled_styler_keeps_formats(frame):
    html = tables.render(frame.style.format(precision=3))
    text = cells(html)
    assert "123.456" in text  # the chapter's own format for ordinary numbers
    for bad in ("nan", "inf", "True", "False"):
        assert bad not in text
    assert "4" in text and "4.000" not in text


def test_wide_text_table_becomes_blocks():
    long = "a long reference to a data source with a URL https://example.org/" + "x" * 60
    df = pd.DataFrame({"value": [1.5, 2.0], "unit": ["MW", "kW"], "kind": ["sourced", "assumption"],
                       "reference": [long, long], "a_priori": [np.nan, 3.0]},
                      index=["parameters.link_bandwidth_gbps", "parameters.other_opex_usd_per_kwh"])
    assert tables.too_wide(df)
    html = tables.render(df)
    assert html.count('class="tf-block"') == 2
    text = cells(html)
    assert "nan" not in text and "–" in text


def test_install_registers_formatter():
    IPython = pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    assert tables.install(ip)
    data, _ = ip.display_formatter.format(pd.DataFrame({"ok": [True]}))
    assert "tf-table-wrap" in data["text/html"] and ">yes<" in data["text/html"]
    assert IPython


def test_figure_fit_reading_size():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tokenflow.publish import style

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].set_xlabel("x", fontsize=5)
    axes[1].tick_params(labelsize=4)
    style.fit(fig)
    assert fig.get_size_inches()[0] == pytest.approx(style.COLUMN_WIDTH_IN)
    assert style.smallest_font(fig) >= style.MIN_FONT_PT
    plt.close(fig)


def test_figure_fit_survives_colour_bars(tmp_path):
    """A wide two-panel figure with a colour bar per panel (the referees' step-time figure)
    is brought to the column without the layout engine failing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from tokenflow.publish import plotting as tp

    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6), gridspec_kw={"wspace": 0.25})
    for ax in axes:
        sc = ax.scatter(np.arange(5), np.arange(5), c=np.arange(5))
        ax.set_xscale("log")
        plt.colorbar(sc, ax=ax, label="context")
    paths = tp.save(fig, tmp_path, "fig")
    assert all(p.stat().st_size > 0 for p in paths)
    plt.close(fig)


def test_panel_letters_survive_reflow():
    """Panels are named by letter in their titles (font size kept), so a caption that says
    (a), (b), (c) still matches after fit() re-lays a one-row figure in rows of two."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tokenflow.publish import plotting as tp
    from tokenflow.publish import style

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].set_title("prices", fontsize=9)
    axes[1].set_title("costs")
    assert tp.panel_letters(axes) == ["a", "b", "c"]
    style.fit(fig)
    assert axes[0].get_title() == "(a) prices" and axes[0].title.get_fontsize() >= style.MIN_FONT_PT
    assert axes[1].get_title() == "(b) costs"
    assert axes[2].get_title(loc="left") == "(c)"
    rows = sorted({round(a.get_position().y0, 3) for a in axes})
    assert len(rows) == 2  # re-laid in rows of two: "left/right" would no longer be true
    plt.close(fig)


def test_blocks_show_a_dash_for_empty_text_and_clear_floats():
    """An empty text value reads "–" (not a blank that lets the next block float beside it)."""
    import pandas as pd

    from tokenflow.publish.tables import blocks

    out = blocks(pd.DataFrame({"name": ["a", "b"], "note": ["", "x"]}), title="name")
    assert '<dd style="margin:0 0 0.15em 10em">–</dd>' in out
    assert out.count("clear:both") == 2


def test_solver_noise_prints_as_zero_in_tables_and_restyled_stylers():
    df = pd.DataFrame({"marginal_value_usd_per_h": [3.1e-10, -5.1e-11, 12.5], "tiny": [1.5e-11, 0.0, 1.0]},
                      index=["a", "b", "c"])
    text = cells(tables.render(df))
    assert "3.1e-10" not in " ".join(text) and "−5.1e-11" not in " ".join(text)
    assert text.count("0") >= 4 and "12.5" in text
    styled = cells(tables.render(df.style.format("{:.3g}")))
    assert "3.1e-10" not in styled and "-5.1e-11" not in styled and "12.5" in styled
    # a genuinely small value in a column of small values is not noise
    small = cells(tables.render(pd.DataFrame({"cost ($/GB)": [0.002, 0.0016, 0.0024]})))
    assert {"0.002", "0.0016", "0.0024"} <= set(small)


def test_a_chapter_format_that_rounds_values_away_gets_house_precision():
    df = pd.DataFrame({"transfer ($/GB)": [0.002, 0.5], "swing": [0.0016, 0.0024], "big": [1234.5678, 2.0]})
    text = cells(tables.render(df.style.format("{:.2f}", subset=["transfer ($/GB)"])
                                .format("{:.3f}", subset=["swing"]).format("{:,.1f}", subset=["big"])))
    assert "0.002" in text and "0.00" not in text and "0.50" in text  # kept where it loses nothing
    assert "0.0016" in text and "0.0024" in text  # distinct, not both "0.002"
    assert "1,234.6" in text  # ordinary rounding is the chapter's choice
    pct = cells(tables.render(pd.DataFrame({"share": [0.1234]}).style.format("{:.1%}")))
    assert "12.3%" in pct  # a percent format is not a lost value


def test_headers_are_words_with_units_also_in_stylers():
    assert tables.header("transfer_cost_usd_per_gb") == "transfer cost ($/GB)"
    assert tables.header("cost_usd_per_gbps_yr") == "cost ($/Gbps-yr)"
    assert tables.header("objective_usd_per_h") == "objective ($/h)"
    df = pd.DataFrame({"objective_usd_per_h": [1.0], "cost_saving": [2.0]})
    text = cells(tables.render(df.style.format("{:.1f}")))
    assert "objective ($/h)" in text and "cost saving" in text and "cost_saving" not in text


def test_numbers_do_not_wrap_and_long_text_does():
    df = pd.DataFrame({"price ($/M tokens)": [1.5], "note": ["x" * 50]})
    html = tables.render(df)
    assert "white-space: nowrap" in html and "overflow-wrap: anywhere" in html and "max-width: 100%" in html


def test_default_row_numbers_are_not_shown():
    df = pd.DataFrame({"node": ["a", "b", "c"], "price ($/M tokens)": [1.0, 2.0, 3.0]})
    for html in (tables.render(df), tables.render(df.style.format(precision=2))):
        assert ">0</th>" not in html and ">1</th>" not in html
    named = tables.render(df.set_index("node"))  # a named index heads its own column, in the header row
    assert ">a</td>" in named and ">node</th>" in named and named.count("<tr>") == 4


def test_link_html_is_not_counted_as_long_text():
    link = '<a href="https://www.example.org/a/very/long/path/to/a/source/document.html">4.897</a>'
    html = tables.render(pd.DataFrame({"node": ["a"], "value": [link], "unit": ["us/km"]}))
    assert "min-width" not in html and 'class="tf-blocks"' not in html
