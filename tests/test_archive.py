"""`make archive` bundle: complete, checksummed, and a tampered or partial bundle is caught."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

import tokenflow
from tokenflow.core.errors import TokenflowError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_archive  # noqa: E402


def tiny_pdf(pages: int) -> bytes:
    """A valid PDF of ``pages`` empty pages (correct xref offsets, so pdfinfo reads it)."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>"]
    objs += ["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"] * pages
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


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
    (tmp_path / "_build" / "pdf" / f"tokenflow-{v}.pdf").write_bytes(tiny_pdf(2))
    gen = tmp_path / "book" / "generated"
    (gen / "results").mkdir(parents=True)
    (gen / "us5_market.ipynb").write_text("{}")
    (gen / "results" / "us5_market_35x.nc").write_bytes(b"CDF\x01")
    stamp_book(tmp_path)
    return tmp_path


def stamp_book(root: Path, pdf: bool = True) -> None:
    """Mark _build/html as the build of the tree as it is now (what build_book writes) and,
    with ``pdf``, the PDF as printed from that build (what build_pdf writes)."""
    from tokenflow.publish.reproduce import BOOK_STAMP, book_key

    key = book_key(root)
    (root / "_build" / "html" / BOOK_STAMP).write_text(key + "\n")
    if pdf:
        out = root / "_build" / "pdf" / f"tokenflow-{tokenflow.__version__}.pdf"
        make_archive.write_pdf_stamp(out, out.read_bytes(), key)


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


# ----------------------------------------------------------------- issue 15: hostile bundles


def _rewrite(src_zip: Path, dst_zip: Path, edit) -> Path:
    """Copy a bundle member by member; ``edit(name, data)`` returns new bytes, None (drop) or a
    list of (name, bytes) to write instead."""
    with zipfile.ZipFile(src_zip) as src, zipfile.ZipFile(dst_zip, "w") as dst:
        for info in src.infolist():
            got = edit(info.filename, src.read(info))
            if got is None:
                continue
            for name, data in (got if isinstance(got, list) else [(info.filename, got)]):
                dst.writestr(name, data)
    return dst_zip


def test_temporary_notebooks_never_enter_the_bundle(built_tree):
    gen = built_tree / "book" / "generated"
    (gen / ".us5_market.running.ipynb").write_text("{}")
    (gen / "results" / "x.nc.tmp").write_bytes(b"half")
    (gen / "results" / ".hidden.nc").write_bytes(b"CDF")
    stamp_book(built_tree)
    out = make_archive.build(built_tree)
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    assert not any("running" in n or n.endswith(".tmp") or "/." in n.split("artifact/", 1)[1] for n in names)
    assert make_archive.check(out) == []


def test_check_finds_a_stray_running_notebook(built_tree, tmp_path_factory):
    out = make_archive.build(built_tree)
    top = out.stem

    def add(name, data):
        if name.endswith("SHA256SUMS"):
            line = f"{hashlib.sha256(b'{}').hexdigest()}  notebooks/.x.running.ipynb\n"
            return [(name, data + line.encode()), (f"{top}/notebooks/.x.running.ipynb", b"{}")]
        return data

    bad = _rewrite(out, tmp_path_factory.mktemp("s") / out.name, add)
    problems = make_archive.check(bad)
    assert "stray file: notebooks/.x.running.ipynb" in problems


@pytest.mark.parametrize("pdf, needle", [(b"", "not a PDF"), (b"%PDF-1.4\n", "truncated"),
                                         (b"<html>not a pdf</html>", "not a PDF")])
def test_check_refuses_a_pdf_that_is_not_one(built_tree, tmp_path_factory, pdf, needle):
    out = make_archive.build(built_tree)
    bad = _rewrite(out, tmp_path_factory.mktemp("p") / out.name,
                   lambda n, d: pdf if n.endswith(".pdf") else d)
    problems = make_archive.check(bad)
    assert any(needle in p for p in problems), problems
    assert any(p.startswith("checksum mismatch: tokenflow-") for p in problems)


def test_check_compares_pdf_pages_with_the_manifest(built_tree, tmp_path_factory):
    out = make_archive.build(built_tree)
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read(f"{out.stem}/MANIFEST.json"))
    assert manifest["pdf_pages"] == 2
    bad = _rewrite(out, tmp_path_factory.mktemp("m") / out.name,
                   lambda n, d: tiny_pdf(1) if n.endswith(".pdf") else d)
    problems = make_archive.check(bad)
    assert any("has 1 pages, MANIFEST.json records 2" in p for p in problems), problems


def test_build_refuses_an_empty_or_fake_pdf(built_tree):
    pdf = next((built_tree / "_build" / "pdf").glob("*.pdf"))
    for data in (b"", b"%PDF-1.4\n"):
        pdf.write_bytes(data)
        with pytest.raises(TokenflowError, match="rebuild it"):
            make_archive.build(built_tree)


@pytest.mark.parametrize("sums", [b"garbage\n", b"\xff\xfe\x00", b"abc  html/index.html\n",
                                  b"0" * 64 + b" onespace\n"])
def test_check_malformed_sha256sums(built_tree, tmp_path_factory, sums):
    out = make_archive.build(built_tree)
    bad = _rewrite(out, tmp_path_factory.mktemp("h") / out.name,
                   lambda n, d: sums if n.endswith("SHA256SUMS") else d)
    problems = make_archive.check(bad)
    assert any(p.startswith("malformed SHA256SUMS") for p in problems), problems


def test_check_of_a_missing_path_a_non_zip_and_a_folder(tmp_path):
    (tmp_path / "x.zip").write_text("not a zip")
    assert make_archive.check(tmp_path / "nope.zip") == [f"no such file: {tmp_path / 'nope.zip'}"]
    assert make_archive.check(tmp_path / "x.zip")[0].startswith("not a zip archive")
    assert make_archive.check(tmp_path)[0].startswith("not a file")
    empty = tmp_path / "e.zip"
    zipfile.ZipFile(empty, "w").close()
    assert make_archive.check(empty) == ["empty zip archive"]


@pytest.mark.parametrize("argv, code, needle", [(["--check"], 2, "needs the path"),
                                                (["--check", "/nonexistent/x.zip"], 1, "no such file"),
                                                (["--bogus"], 2, "unknown arguments")])
def test_make_archive_cli_is_clean(argv, code, needle, capsys):
    assert make_archive.main(argv) == code
    out, err = capsys.readouterr()
    assert needle in out + err and "Traceback" not in out + err


def test_make_archive_cli_without_pdf(built_tree, monkeypatch, capsys):
    shutil.rmtree(built_tree / "_build" / "pdf")
    build = make_archive.build
    monkeypatch.setattr(make_archive, "build", lambda: build(built_tree))
    assert make_archive.main([]) == 2
    out, err = capsys.readouterr()
    assert "PDF" in err and "Traceback" not in out + err


def test_check_of_a_corrupted_zip_is_a_problem_not_a_traceback(built_tree, tmp_path_factory):
    out = make_archive.build(built_tree)
    data = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as z:
        info = z.getinfo(f"{out.stem}/scenarios/us5.yaml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start, start + min(info.compress_size, 64)):
        data[i] ^= 0xFF  # damage the compressed bytes of one member
    bad = tmp_path_factory.mktemp("c") / out.name
    bad.write_bytes(bytes(data))
    problems = make_archive.check(bad)
    assert problems and any("damaged" in p or "scenarios/us5.yaml" in p for p in problems), problems


def test_stale_html_book_is_refused(built_tree):
    """Notebooks newer than the HTML (a later run swapped them in but its book build failed)."""
    (built_tree / "book" / "generated" / "us5_market.ipynb").write_text('{"cells": []}')
    with pytest.raises(TokenflowError, match="not a build of the current pages"):
        make_archive.build(built_tree)
    (built_tree / "_build" / "html" / ".tokenflow-book.sha256").unlink()
    with pytest.raises(TokenflowError, match="run make book"):
        make_archive.build(built_tree)


# ------------------------------------------------- issue 28: the PDF belongs to the build it archives


def test_a_pdf_from_an_earlier_build_is_refused(built_tree):
    """make book after make pdf: the HTML is the new build, the PDF still prints the old one."""
    (built_tree / "book" / "generated" / "us5_market.ipynb").write_text('{"cells": []}')
    stamp_book(built_tree, pdf=False)  # a new HTML build; the PDF and its stamp are the earlier ones
    with pytest.raises(TokenflowError, match=r"PDF .* was printed from another build of the book \(build \w{12}\) "
                                             r"than the HTML book .* rebuild it \(make pdf\)"):
        make_archive.build(built_tree)
    stamp_book(built_tree)  # make pdf again
    assert make_archive.check(make_archive.build(built_tree)) == []


def test_a_pdf_without_a_stamp_or_with_other_bytes_is_refused(built_tree):
    pdf = next((built_tree / "_build" / "pdf").glob("*.pdf"))
    stamp = make_archive.pdf_stamp_path(pdf)
    pdf.write_bytes(tiny_pdf(3))  # another valid PDF copied over the printed one
    with pytest.raises(TokenflowError, match="is not the file make pdf printed"):
        make_archive.build(built_tree)
    stamp.unlink()
    with pytest.raises(TokenflowError, match=r"has no build stamp .*\.pdf\.build\.json.* rebuild it"):
        make_archive.build(built_tree)
    for text in ("{", "[]", '{"book_build": 1}'):
        stamp.write_text(text)
        with pytest.raises(TokenflowError, match="build stamp .* is malformed"):
            make_archive.build(built_tree)
    assert not (built_tree / "dist").exists() or not list((built_tree / "dist").iterdir())


def test_the_bundle_records_the_build_and_check_compares_the_pdf(built_tree, tmp_path_factory):
    from tokenflow.publish.reproduce import book_key

    out = make_archive.build(built_tree)
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read(f"{out.stem}/MANIFEST.json"))
        pdf_name = f"{out.stem}/{manifest['pdf']}"
        assert manifest["pdf_sha256"] == hashlib.sha256(z.read(pdf_name)).hexdigest()
    assert manifest["book_build"] == book_key(built_tree)
    other = tiny_pdf(2) + b"% another build\n%%EOF\n"  # same page count, other bytes; SHA256SUMS updated

    def swap(name, data):
        if name.endswith(".pdf"):
            return other
        if name.endswith("SHA256SUMS"):
            return data.replace(hashlib.sha256(tiny_pdf(2)).hexdigest().encode(), hashlib.sha256(other).hexdigest()
                                .encode())
        return data

    problems = make_archive.check(_rewrite(out, tmp_path_factory.mktemp("b") / out.name, swap))
    assert problems == [f"{manifest['pdf']} is not the PDF of this build (its sha256 is not the one MANIFEST.json "
                        "records)"], problems
