"""The pure-Python rules of ``tools/check_book.py`` (`make check`) on small synthetic inputs:
solver noise, numeric headers without units, figure text size from a figure's own PNG
metadata, screens per page and the allow-list."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_book as cb  # noqa: E402

from tokenflow.publish import style  # noqa: E402


@pytest.mark.parametrize("text, value", [("1,234.5", 1234.5), ("−3.1e-10", -3.1e-10), ("12 %", 12.0),
                                         ("0.002", 0.002), ("7", 7.0), ("chat", None), ("", None),
                                         ("C1", None), ("1.2.3", None), ("–", None)])
def test_cells_are_read_as_numbers_only_when_they_are_numbers(text, value):
    assert cb.parse_number(text) == (pytest.approx(value) if value is not None else None)


def test_round_off_is_noise_and_small_true_values_and_zero_are_not():
    assert cb.is_noise("3.1e-10") and cb.is_noise("−5.1e-11") and cb.is_noise("1.5e-11")
    assert not cb.is_noise("0") and not cb.is_noise("0.002") and not cb.is_noise("0.0016")
    assert not cb.is_noise("node a")


@pytest.mark.parametrize("header, ok", [("price ($/M tokens)", True), ("C1 (links)", True), ("share (%)", True),
                                        ("saturated links", True), ("rank", True), ("marginal_value", False),
                                        ("chat", False), ("objective", False), ("", False),
                                        ("MW added", True), ("Gbps added", True), ("J per prompt token", True),
                                        ("step", False)])
def test_a_header_names_its_unit(header, ok):
    assert cb.has_unit(header) is ok


def test_numeric_columns_need_units_text_columns_do_not():
    headers = ["node", "marginal value", "price ($/M tokens)", ""]
    columns = [["a", "b"], ["3.1e-10", "2"], ["0.002", "–"], ["0", "1"]]
    noise, unitless = cb.column_problems(headers, columns)
    assert noise == ["3.1e-10"]
    assert unitless == ["marginal value", "(no header: 0, 1)"]


def test_figure_text_as_shown_from_the_figures_own_metadata(tmp_path):
    fig, ax = plt.subplots(figsize=(7.0, 3.0))
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("x", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(["small"], fontsize=7)
    meta = style.figure_metadata(fig, 100)
    path = tmp_path / "f.png"
    fig.savefig(path, dpi=100, metadata=meta)
    plt.close(fig)
    read = cb.png_text(path)
    assert json.loads(read[style.FIGURE_META_KEY])["min_font_pt"] == pytest.approx(7)
    # drawn 7 in wide (700 px at 100 dpi), shown 6 in wide (576 CSS px): the 7 pt legend reads 6 pt
    why = cb.figure_font_problem(read, 700, 576)
    assert why is not None and "6.0 pt" in why
    assert cb.figure_font_problem(read, 700, 672) is not None  # at its own size: 7 pt, still too small
    # shown 800 CSS px (8.3 in) wide it reads 8.3 pt: fine
    assert cb.figure_font_problem(read, 700, 800) is None
    assert cb.figure_font_problem({}, 700, 672).startswith("figure without text-size metadata")


def test_the_inline_backend_writes_the_metadata(tmp_path):
    from IPython.core import pylabtools

    fig, ax = plt.subplots(figsize=(14, 3))  # wider than the column: fit() narrows it
    ax.plot([0, 1], [0, 1])
    ax.tick_params(labelsize=5)
    png = style._fitting(pylabtools.print_figure, fmt="png")(fig, "png")
    plt.close(fig)
    (tmp_path / "g.png").write_bytes(png)
    m = json.loads(cb.png_text(tmp_path / "g.png")[style.FIGURE_META_KEY])
    assert m["min_font_pt"] >= style.MIN_FONT_PT and m["dpi"] == style.DISPLAY_DPI


def test_png_text_of_a_file_that_is_not_a_png_is_empty(tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(b"GIF89a")
    assert cb.png_text(p) == {} and cb.png_text(tmp_path / "missing.png") == {}


def test_screens_and_the_allow_list():
    assert cb.screens(10_000, 1000) == 10
    problems = [("a.html", "noise", "3 cells"), ("a.html", "unit", "x"), ("b.html", "base", "broken image")]
    allow = {"a.html": {"noise": "owner fixes it"}, "c.html": {"font": "gone"}}
    failed, allowed, unused = cb.apply_allow(problems, allow)
    assert failed == ["a.html: [unit] x", "b.html: broken image"]
    assert allowed == ["a.html: [noise] 3 cells (allowed: owner fixes it)"]
    assert unused == ["c.html: font"]


def test_the_allow_list_names_known_rules_with_reasons():
    for page, rules in cb.ALLOW.items():
        assert page.endswith(".html")
        for rule, reason in rules.items():
            assert rule in cb.RULES and reason.strip()


def test_a_pdf_figure_label_needs_its_caption_text():
    page = "Contents\n1 Results ..... 2\n2 Model ..... 3\n3 Data ..... 4\n   1 / 2\f"
    good = page + "Figure 1.1. Mean locational price by workload.\nTable 1.2. Claims\n   2 / 2\f"
    bad = page + "Figure 1.1.\nTable 1.2\n   2 / 2\f"
    assert not any("caption" in p for p in cb.print_problems(good, 2))
    assert any("2 figure or table label(s) without caption text" in p for p in cb.print_problems(bad, 2))
