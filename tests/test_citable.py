"""Citable results (tokenflow.studies.citable) and the citation files."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from tokenflow import __version__
from tokenflow.core.errors import TokenflowError
from tokenflow.studies import citable

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results():
    return citable.record()


def test_identifiers_and_pages(results):
    ids = [r.id for r in results]
    assert ids == ["C1", "C2", "C3", "C4", "F1", "F2", "F3", "F4", "B1", "B2", "B3", "B4", "B5"]
    for r in results:
        assert r.page and (ROOT / "notebooks" / f"{r.page}.ipynb").is_file(), r.id
        assert r.status in citable.STATUSES
        if r.status != "independent":
            assert r.status_on, r.id


def test_figure_verdicts_agree_with_the_scorecard(results):
    """F1-F4 are the scorecard's figure verdicts (tokenflow.studies.claims.figure_verdicts), not a
    second computation that could disagree with it."""
    from tokenflow.studies.claims import figure_verdicts

    by = {r.id: r for r in results}
    figs = figure_verdicts()
    assert [v.figure for v in figs] == ["F1", "F2", "F3", "F4"]
    for v in figs:
        r = by[v.figure]
        assert r.runs["calibrated"]["ok"] is bool(v.agrees), v.figure
        assert r.verdict.startswith("differs") is (not v.agrees), v.figure
        if v.figure != "F3":  # F3's text quotes a round-off-sized price fall that differs between solves
            assert v.computed in r.verdict, v.figure
    assert by["F1"].value == pytest.approx(figs[0].detail["merit_order_spearman"])
    assert by["F2"].value == pytest.approx(100 * figs[1].detail["cheap_share"])
    assert by["F4"].value == figs[3].detail["saturated_every"]


def test_write_roundtrip(results, tmp_path):
    meta = {"software": "tokenflow", "version": __version__, "commit": "abc123"}
    j, c = citable.write(results, tmp_path, meta)
    doc = json.loads(j.read_text())
    assert doc["commit"] == "abc123" and doc["version"] == __version__
    assert [r["id"] for r in doc["results"]] == [r.id for r in results]
    rows = list(csv.DictReader(c.open()))
    assert [r["id"] for r in rows] == [r.id for r in results]
    assert all(r["status"] in citable.STATUSES for r in rows)
    assert "nan" not in c.read_text().lower().split(",")


def test_bad_status_and_duplicates(results, tmp_path):
    with pytest.raises(TokenflowError, match="status"):
        citable.Result("X1", "x", 1.0, "x", "tuned", "results")
    with pytest.raises(TokenflowError, match="duplicate"):
        citable.write([results[0], results[0]], tmp_path, {})


def test_bibtex_carries_version_commit_id(results):
    bib = citable.bibtex(results[0], {"version": "9.9.9", "commit": "0123456789abcdef"})
    assert "9.9.9" in bib and "0123456789ab" in bib and results[0].id in bib


def test_citation_files_filled():
    sys.path.insert(0, str(ROOT / "tools"))
    from citation import filled

    files = filled(ROOT, sha="feedface")
    assert 'commit: "feedface"' in files["CITATION.cff"].decode()
    assert f"version: {__version__}" in files["CITATION.cff"].decode()
    zen = json.loads(files[".zenodo.json"])
    assert zen["version"] == __version__ and "feedface" in zen["notes"]
