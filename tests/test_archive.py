"""`make archive` bundle: complete, checksummed, and a tampered or partial bundle is caught."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest

import tokenflow
from tokenflow.errors import TokenflowError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_archive  # noqa: E402


@pytest.fixture
def built_tree(tmp_path):
    """A repository tree with a (tiny) built book, PDF and executed notebook."""
    v = tokenflow.__version__
    for name in ["pyproject.toml", "environment.yml", *make_archive.TOP_FILES]:
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "tokenflow" / "data", tmp_path / "tokenflow" / "data")
    html = tmp_path / "_build" / "html"
    (html / "_static" / "mathjax").mkdir(parents=True)
    (html / "index.html").write_text("<html></html>")
    (html / "_static" / "mathjax" / "tex-chtml.js").write_text("/* mathjax */")
    (tmp_path / "_build" / "pdf").mkdir()
    (tmp_path / "_build" / "pdf" / f"tokenflow-{v}.pdf").write_bytes(b"%PDF-1.4\n")
    gen = tmp_path / "book" / "generated"
    (gen / "results").mkdir(parents=True)
    (gen / "us5_market.ipynb").write_text("{}")
    (gen / "results" / "us5_market_35x.nc").write_bytes(b"CDF\x01")
    return tmp_path


def test_bundle_is_complete_and_verifies(built_tree):
    out = make_archive.build(built_tree)
    assert out.name == f"tokenflow-{tokenflow.__version__}-artifact.zip"
    assert make_archive.check(out) == []
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        freeze = z.read(f"{out.stem}/environment/pip-freeze.txt").decode()
    assert any(n.endswith("scenarios/us20.yaml") for n in names)
    assert "highspy==" in freeze


def test_tampered_or_partial_bundle_is_reported(built_tree, tmp_path_factory):
    out = make_archive.build(built_tree)
    bad = tmp_path_factory.mktemp("bad") / out.name
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".nc"):
                continue  # drop the results
            if info.filename.endswith("scenarios/us5.yaml"):
                data += b"# edited\n"
            dst.writestr(info, data)
    problems = make_archive.check(bad)
    assert "missing result files (netCDF)" in problems
    assert any(p.startswith("checksum mismatch: scenarios/us5.yaml") for p in problems)
    assert any(p.startswith("listed but absent: results/") for p in problems)


def test_missing_pdf_is_a_clear_error(built_tree):
    shutil.rmtree(built_tree / "_build" / "pdf")
    with pytest.raises(TokenflowError, match="PDF"):
        make_archive.build(built_tree)
