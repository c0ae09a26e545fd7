"""Every cause stated in the book stands next to its counterfactual (issue 26): a static check.

A sentence that attributes an effect ("because", "comes from", "due to", "is driven by",
"not X but Y", "the reason") must have, in the same paragraph, a glued value whose key starts
with ``cf_``: the effect with the named cause removed, computed by the same notebook (or, on a
hand-written page, glued from a notebook).  The few phrases that state no empirical cause
(a proof step, where a file comes from) are listed in :data:`NOT_A_CAUSE` with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))
CAUSAL = re.compile(r"\bbecause\b|\bcomes? from\b|\bdue to\b|\b(?:is|are) driven by\b|\bthe reason\b"
                    r"|\bnot\b[^.;:()]{1,80}?\bbut\b", re.I)
COUNTERFACTUAL = re.compile(r"\{glue(?::text|:md)?\}`(?:[^`]*::)?cf_[A-Za-z0-9_]+")
# (page, words of the sentence) -> why it states no empirical cause
NOT_A_CAUSE: dict[tuple[str, str], str] = {
    ("model.md", "Because pricing searches only admissible routes"): "a step of a proof (column generation)",
    ("model.md", "values come from sourced list prices"): "where an input's values are taken from",
    ("model.md", "Because the LP's compute use of a token is its energy"): "a definition of the model's units",
    ("artifact.md", "all packages come from PyPI"): "where the software is installed from",
    ("rerun.md", "Everything in this book comes from one command"): "how the book is built",
}


def paragraphs(path: Path) -> list[str]:
    if path.suffix == ".md":
        text = path.read_text()
    else:
        text = "\n\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                           if c["cell_type"] == "markdown")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks state no causes
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def causal_sentences(path: Path) -> list[tuple[str, str]]:
    """(phrase, paragraph) for every causal phrase in a paragraph without a counterfactual."""
    out = []
    for para in paragraphs(path):
        flat = " ".join(para.split())
        for m in CAUSAL.finditer(flat):
            if COUNTERFACTUAL.search(flat):
                continue
            if any(page == path.name and words in flat for (page, words) in NOT_A_CAUSE):
                continue
            out.append((m.group(0), flat[max(0, m.start() - 80): m.end() + 80]))
    return out


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_cause_has_a_counterfactual(path):
    bad = causal_sentences(path)
    assert not bad, "causal sentence(s) without a glued cf_ counterfactual in the paragraph:\n" + \
        "\n".join(f"  '{w}': ...{ctx}..." for w, ctx in bad)


def test_the_check_finds_a_cause_and_accepts_its_counterfactual(tmp_path):
    page = tmp_path / "x.md"
    page.write_text("The cost rises because the link is full.\n\nIt rises by 3 %, not because of energy but "
                    "because of the link: without it {glue:text}`cf_no_link:.1f` %.\n")
    bad = causal_sentences(page)
    assert len(bad) == 1 and "link is full" in bad[0][1]


def test_not_a_cause_entries_still_exist():
    """Each exempted sentence is still in its page (the list cannot go stale)."""
    for (page, words) in NOT_A_CAUSE:
        path = next(p for p in PAGES if p.name == page)
        assert any(words in " ".join(p.split()) for p in paragraphs(path)), (page, words)
