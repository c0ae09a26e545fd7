"""No case parameter is typed into the book's prose (issue: typed parameters): a static check.

The notebooks are rerun with other papermill parameters (``demand_scale=40``, other chat
limits, other planner scales), so a demand scale ``35x``, a factor ``2×`` or a latency ``15 ms``
written into the markdown would then be false.  Such numbers are glued from the value the
notebook uses (``{glue:text}`case_scale:g```).  This test scans every notebook's markdown prose
(code blocks, inline code, glue roles and math removed) and fails on a typed ``<number>x``,
``<number>×`` or ``<number> ms`` unless the sentence is listed in :data:`ALLOWED` with the reason
it is not a parameter (a quote of the paper or the referees, a base level that is a definition).
An entry that no longer occurs fails too, so the list cannot go stale.  Fast: no execution.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TYPED = re.compile(r"(?<![\w.\-/`{])\d+(?:[.,]\d+)?\s*(?:×|x\b|ms\b)")
# (notebook, words around the typed number) -> why it is not a parameter of the notebook
ALLOWED: dict[tuple[str, str], str] = {
    ("data_provenance.ipynb", "AI compute at 1x and"): "1x is base demand, the unit of the demand scale (a definition)",
    ("us5_demand_growth.ipynb", "% above its 1x level"): "1x is base demand, the unit of the demand scale",
    ("us5_demand_growth.ipynb", "as a change from the 1x price"): "1x is base demand, the unit of the demand scale",
}


def prose(path: Path) -> str:
    """A notebook's markdown with code blocks, glue roles, inline code and math replaced by one letter."""
    out = []
    for c in json.loads(path.read_text())["cells"]:
        if c["cell_type"] != "markdown":
            continue
        s = "".join(c["source"])
        s = re.sub(r"```.*?```", "", s, flags=re.S)
        s = s.replace("\\$", "USD")  # an escaped dollar is a currency, not the start of math
        s = re.sub(r"\{glue[^}]*\}`[^`]*`", "G", s)
        s = re.sub(r"`[^`]*`", "C", s)
        s = re.sub(r"\$[^$]*\$", "M", s)
        out.append(" ".join(s.split()))
    return "\n".join(out)


def typed_numbers(path: Path) -> list[str]:
    """The context of every typed number that no :data:`ALLOWED` entry of this page covers."""
    text = prose(path)
    allowed = [(m.start(), m.end()) for (page, w) in ALLOWED if page == path.name
               for m in re.finditer(re.escape(w), text)]
    bad = []
    for m in TYPED.finditer(text):
        if any(a <= m.start() and m.end() <= b for a, b in allowed):
            continue
        bad.append(text[max(0, m.start() - 60): m.end() + 30])
    return bad


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_typed_parameter_in_prose(path):
    bad = typed_numbers(path)
    assert not bad, (f"{path.name}: typed numbers in the prose; glue the value the notebook uses "
                     "({glue:text}`key:g`) or list the sentence in ALLOWED with its reason:\n"
                     + "\n".join(f"  ...{b}..." for b in bad))


def test_allowed_entries_still_occur_and_have_reasons():
    """Each exempted sentence is still in its page and still holds a typed number (no stale entry)."""
    pages = {p.name: p for p in NOTEBOOKS}
    for (page, words), why in ALLOWED.items():
        assert why.strip(), (page, words, "no reason given")
        assert page in pages, (page, "no such notebook")
        assert words in prose(pages[page]), (page, words, "no longer occurs: remove it from ALLOWED")
        assert TYPED.search(words), (page, words, "holds no typed number: remove it from ALLOWED")


def test_the_check_finds_typed_numbers(tmp_path):
    """A typed scale, factor and latency are found; glued ones, code, math and headings' words are not."""
    nb = {"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": [
        "At 35x the price rises 2.5× when the limit falls to 15 ms.\n\n",
        "At {glue:text}`case_scale:g`x with `limit=15 ms` and $y = 2x$ nothing is typed."]}]}
    p = tmp_path / "fake.ipynb"
    p.write_text(json.dumps(nb))
    found = typed_numbers(p)
    assert len(found) == 3 and "35x" in found[0] and "2.5×" in found[1] and "15 ms" in found[2]
    with pytest.raises(AssertionError, match="typed numbers"):
        test_no_typed_parameter_in_prose(p)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_headings_hold_no_glue(path):
    """A heading (the page title, a section) names the case in words: a glue role there would not
    render in the table of contents or the page's navigation."""
    heads = [line for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"
             for line in "".join(c["source"]).splitlines() if re.match(r"#{1,6} ", line)]
    bad = [h for h in heads if "{glue" in h or TYPED.search(h)]
    assert not bad, f"{path.name}: headings with a glue role or a typed number: {bad}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_text_glues_are_quoted_as_md(path):
    """A key glued as Markdown (``glue_text``) is quoted with ``{glue:md}``: ``{glue:text}`` would
    print the object's repr ("<IPython.core.display.Markdown object>") instead of the value."""
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    md = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    as_md = set(re.findall(r"\bglue_text\(\s*\"([A-Za-z0-9_]+)\"", code))
    bad = sorted(as_md & set(re.findall(r"\{glue:text\}`([A-Za-z0-9_]+)", md)))
    assert not bad, f"{path.name}: keys glued with glue_text but quoted with {{glue:text}}: {bad}"
