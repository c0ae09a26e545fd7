"""`make archive`: the deposit bundle ``dist/tokenflow-<version>-artifact.zip``.

Contents, under one top folder ``tokenflow-<version>-artifact/``:

    html/                 the HTML book (_build/html), opens offline
    tokenflow-<v>.pdf     the PDF book
    notebooks/            the executed notebooks (book/generated/*.ipynb)
    results/              result files (netCDF) and figures the notebooks wrote
    scenarios/            the packaged scenario files (tokenflow/data/*.yaml)
    environment/          pip-freeze.txt (exact versions used), python.txt, pyproject.toml, environment.yml
    README.md CITATION.cff .zenodo.json CHANGELOG.md LICENSE   (citation files with the commit filled in)
    results.json results.csv   the citable results (see the "Results at a glance" chapter)
    MANIFEST.json         the PDF's page count (pdfinfo) and sha256, the book build, the number of files
    SHA256SUMS            sha256 of every other file, `sha256sum -c` format

The PDF is tied to the build it prints: ``tools/build_pdf.py`` writes beside it
``tokenflow-<v>.pdf.build.json`` with the book build it printed (the content key of
``_build/singlehtml``, :func:`tokenflow.publish.reproduce.book_key`) and the PDF's sha256.  The
archive refuses a PDF without that stamp, with other bytes than it records, or printed from
another build than the HTML book (an earlier ``make pdf``); MANIFEST.json records the build
and the PDF's sha256, and ``--check`` compares the PDF with it.

Temporary files of a run (``.NAME.running.ipynb``, ``*.tmp``, any dot-file under
``book/generated``) are never collected.  ``--check ZIP`` verifies a bundle: every required
part present, every checksum right, the PDF a PDF (``%PDF-`` header, ``%%EOF`` trailer) with
the page count recorded in MANIFEST.json (counted by ``pdfinfo`` from poppler-utils), and no
stray file (anything outside the layout above).

Usage: python tools/make_archive.py [--check dist/tokenflow-<v>-artifact.zip]
Exit codes: 0 complete; 1 the bundle is incomplete or damaged (each problem listed);
2 the archive could not be built (a part missing, the PDF not a PDF) or bad usage.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_FILES = ["README.md", "CITATION.cff", ".zenodo.json", "CHANGELOG.md", "LICENSE"]
ENV_FILES = {"pip-freeze.txt", "python.txt", "pyproject.toml", "environment.yml"}
MANIFEST = "MANIFEST.json"


def pdf_stamp_path(pdf: Path) -> Path:
    """The file that ties ``pdf`` to the book build it prints (``<pdf>.build.json``)."""
    return pdf.with_name(pdf.name + ".build.json")


def write_pdf_stamp(pdf: Path, data: bytes, book_build: str) -> Path:
    """Record, whole or not at all, that ``pdf`` (its bytes ``data``) prints the book build
    ``book_build`` (the build's content key).  Written by ``tools/build_pdf.py`` after the PDF."""
    stamp = pdf_stamp_path(pdf)
    tmp = stamp.with_name(f".{stamp.name}.tmp")
    tmp.write_text(json.dumps({"book_build": book_build, "pdf": pdf.name,
                               "pdf_sha256": hashlib.sha256(data).hexdigest()}, indent=1) + "\n")
    tmp.replace(stamp)
    return stamp


def pdf_build(pdf: Path, data: bytes) -> str:
    """The book build ``pdf`` (bytes ``data``) was printed from, by its stamp; TokenflowError
    when there is no stamp, a malformed one, or the PDF's bytes are not those it records."""
    from tokenflow.core.errors import TokenflowError

    stamp = pdf_stamp_path(pdf)
    again = "rebuild it (make pdf)"
    if not stamp.is_file():
        raise TokenflowError(f"cannot build the archive: the PDF {pdf} has no build stamp ({stamp.name}), so nothing "
                             f"ties it to the HTML book (printed by hand, or by an older make pdf); {again}")
    try:
        rec = json.loads(stamp.read_text(encoding="utf-8"))
        if not (isinstance(rec, dict) and isinstance(rec.get("book_build"), str)
                and isinstance(rec.get("pdf_sha256"), str)):
            raise ValueError("no book_build or pdf_sha256")
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenflowError(f"cannot build the archive: the PDF's build stamp {stamp} is malformed ({exc}); "
                             f"{again}") from None
    if hashlib.sha256(data).hexdigest() != rec["pdf_sha256"]:
        raise TokenflowError(f"cannot build the archive: the PDF {pdf} is not the file make pdf printed for its "
                             f"stamp (its bytes changed since, or it was copied in); {again}")
    return rec["book_build"]


def _temporary(name: str) -> bool:
    """A run's temporary file (never archived, a stray file when found in a bundle)."""
    return name.endswith((".tmp", ".running.ipynb")) or name.startswith(".") and name.endswith(".ipynb")


def pdf_pages(data: bytes) -> int:
    """Pages of a PDF: ``pdfinfo`` (poppler-utils) when installed, else a count of its
    ``/Type /Page`` objects.  Raises ValueError when the bytes are not a PDF."""
    if not data.startswith(b"%PDF-"):
        raise ValueError("not a PDF (no %PDF- header)")
    if b"%%EOF" not in data[-2048:]:
        raise ValueError("a truncated PDF (no %%EOF trailer)")
    exe = shutil.which("pdfinfo")
    if exe:
        with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
            f.write(data)
            f.flush()
            proc = subprocess.run([exe, f.name], capture_output=True, text=True)
        m = re.search(r"^Pages:\s+(\d+)", proc.stdout, re.M)
        if proc.returncode != 0 or not m:
            raise ValueError(f"not a readable PDF (pdfinfo: {(proc.stderr or proc.stdout).strip()[:200]})")
        return int(m.group(1))
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


def stray(rel: str, pdf_name: str | None = None) -> bool:
    """Whether bundle member ``rel`` (relative to the top folder) is outside the layout."""
    parts = rel.split("/")
    name, top = parts[-1], parts[0]
    if _temporary(name) or any(".staging" in p for p in parts):
        return True
    if len(parts) == 1:
        return not (name in {"SHA256SUMS", MANIFEST, *TOP_FILES, "results.json", "results.csv"}
                    or (re.fullmatch(r"tokenflow-[^/]+\.pdf", name) and (pdf_name is None or name == pdf_name)))
    if top == "html":
        return False
    if top == "notebooks":
        return len(parts) != 2 or not name.endswith(".ipynb") or name.startswith(".")
    if top == "results":
        return any(p.startswith(".") for p in parts[1:])
    if top == "scenarios":
        return len(parts) != 2 or not name.endswith(".yaml") or name.startswith(".")
    if top == "environment":
        return len(parts) != 2 or name not in ENV_FILES
    return True


def version() -> str:
    sys.path.insert(0, str(ROOT))
    from tokenflow import __version__

    return __version__


def bundle_name(v: str) -> str:
    return f"tokenflow-{v}-artifact"


def collect(root: Path, v: str) -> dict[str, bytes | Path]:
    """Archive member name (relative to the top folder) -> file path or bytes."""
    from tokenflow.core.errors import TokenflowError

    html = root / "_build" / "html"
    pdf = root / "_build" / "pdf" / f"tokenflow-{v}.pdf"
    gen = root / "book" / "generated"
    need = {"HTML book (make book)": html / "index.html", "PDF (make pdf)": pdf,
            "executed notebooks (make book)": gen}
    missing = [f"{what}: {p}" for what, p in need.items() if not p.exists()]
    if missing:
        raise TokenflowError("cannot build the archive, missing " + "; ".join(missing))
    members: dict[str, bytes | Path] = {}
    from tokenflow.publish.reproduce import BOOK_STAMP, book_key

    stamp = html / BOOK_STAMP
    if not stamp.is_file() or stamp.read_text().strip() != book_key(root):
        raise TokenflowError(f"cannot build the archive: the HTML book {html} is not a build of the current pages "
                             "and executed notebooks (changed since, or their book build failed): run make book")
    if not pdf.is_file():
        raise TokenflowError(f"cannot build the archive: the PDF {pdf} is not a file")
    try:
        pages = pdf_pages(pdf.read_bytes())
    except ValueError as exc:
        raise TokenflowError(f"cannot build the archive: {pdf} is {exc}; rebuild it (make pdf)") from None
    if pages < 1:
        raise TokenflowError(f"cannot build the archive: {pdf} has no pages; rebuild it (make pdf)")
    html_build = stamp.read_text().strip()
    printed = pdf_build(pdf, pdf.read_bytes())
    if printed != html_build:
        raise TokenflowError(f"cannot build the archive: the PDF {pdf} was printed from another build of the book "
                             f"(build {printed[:12]}) than the HTML book {html} (build {html_build[:12]}): an earlier "
                             "make pdf; rebuild it (make pdf)")
    for p in sorted(html.rglob("*")):
        if p.is_file() and not p.name.startswith(".tokenflow-book") and not _temporary(p.name):
            members[f"html/{p.relative_to(html).as_posix()}"] = p
    members[pdf.name] = pdf
    for p in sorted(gen.glob("*.ipynb")):
        if not p.name.startswith(".") and p.is_file():  # never a run's .NAME.running.ipynb
            members[f"notebooks/{p.name}"] = p
    for p in sorted((gen / "results").rglob("*")):
        rel = p.relative_to(gen / "results")
        if p.is_file() and not any(part.startswith(".") for part in rel.parts) and not _temporary(p.name):
            members[f"results/{rel.as_posix()}"] = p
    for p in sorted((root / "tokenflow" / "data").glob("*.yaml")):
        members[f"scenarios/{p.name}"] = p
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                            text=True, check=True).stdout
    members["environment/pip-freeze.txt"] = (f"# tokenflow=={v} (this bundle)\n" + freeze).encode()
    members["environment/python.txt"] = (f"python {platform.python_version()} "
                                         f"({platform.python_implementation()})\n"
                                         f"platform {platform.platform()}\n").encode()
    for name in ("pyproject.toml", "environment.yml"):
        members[f"environment/{name}"] = root / name
    for name in TOP_FILES:
        if (root / name).is_file():
            members[name] = root / name
    # citable results at the top (written by the results chapter); citation files with the commit
    for name in ("results.json", "results.csv"):
        if (gen / "results" / name).is_file():
            members[name] = gen / "results" / name
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from citation import filled

    members.update(filled(root))
    members[MANIFEST] = (json.dumps({"version": v, "pdf": pdf.name, "pdf_pages": pages,
                                     "pdf_sha256": hashlib.sha256(pdf.read_bytes()).hexdigest(),
                                     "book_build": html_build, "files": len(members) + 2}, indent=1) + "\n").encode()
    return members


def _bytes(v: bytes | Path) -> bytes:
    return v if isinstance(v, bytes) else v.read_bytes()


def build(root: Path = ROOT) -> Path:
    v = version()
    top = bundle_name(v)
    members = collect(root, v)
    sums = "".join(f"{hashlib.sha256(_bytes(data)).hexdigest()}  {name}\n" for name, data in members.items())
    out = root / "dist" / f"{top}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=(2026, 1, 1, 0, 0, 0))  # reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, _bytes(data))
        info = zipfile.ZipInfo(f"{top}/SHA256SUMS", date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        z.writestr(info, sums)
    tmp.replace(out)  # whole or not at all
    return out


def check(zip_path: Path) -> list[str]:
    """Problems with a bundle (empty list: complete, every checksum right, the PDF a PDF of
    the recorded page count, no stray file).  A path that is missing or not a zip is one
    problem, never an exception."""
    zip_path = Path(zip_path)
    if not zip_path.exists():
        return [f"no such file: {zip_path}"]
    if not zip_path.is_file():
        return [f"not a file: {zip_path}"]
    try:
        z = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        return [f"not a zip archive: {zip_path} ({exc})"]
    try:
        with z:
            return _check_open(z)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:  # damaged or encrypted members
        return [f"damaged zip archive: {zip_path} ({type(exc).__name__}: {exc})"]


def _sha256_member(z: zipfile.ZipFile, name: str) -> str:
    """SHA-256 of one member, read in 1 MiB pieces (a huge member is not held in memory)."""
    h = hashlib.sha256()
    with z.open(name) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_open(z: zipfile.ZipFile) -> list[str]:
    problems = []
    names = z.namelist()
    if not names:
        return ["empty zip archive"]
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or any("/" not in n for n in names):
        return [f"expected one top folder, found {sorted(tops)[:5]}"]
    top = tops.pop()
    rel = {n.split("/", 1)[1] for n in names if not n.endswith("/")}
    required = {
        "HTML book": lambda r: "html/index.html" in r,
        "math bundled (MathJax)": lambda r: any(n.startswith("html/_static/mathjax/tex-chtml") for n in r),
        "PDF": lambda r: any(n.endswith(".pdf") and "/" not in n for n in r),
        "executed notebooks": lambda r: sum(n.startswith("notebooks/") and n.endswith(".ipynb")
                                            and not n.split("/")[-1].startswith(".") for n in r) > 0,
        "result files (netCDF)": lambda r: any(n.startswith("results/") and n.endswith(".nc") for n in r),
        "scenario files": lambda r: any(n.startswith("scenarios/") and n.endswith(".yaml") for n in r),
        "pip freeze": lambda r: "environment/pip-freeze.txt" in r,
        "SHA256SUMS": lambda r: "SHA256SUMS" in r,
        MANIFEST: lambda r: MANIFEST in r,
        "citation metadata": lambda r: {"CITATION.cff", ".zenodo.json"} <= r,
    }
    problems += [f"missing {what}" for what, ok in required.items() if not ok(rel)]
    manifest: dict = {}
    if MANIFEST in rel:
        try:
            manifest = json.loads(z.read(f"{top}/{MANIFEST}").decode("utf-8"))
            if not isinstance(manifest, dict) or not isinstance(manifest.get("pdf_pages"), int):
                raise ValueError("no pdf_pages")
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"malformed {MANIFEST}: {exc}")
            manifest = {}
    pdfs = sorted(n for n in rel if n.endswith(".pdf") and "/" not in n)
    problems += [f"stray file: {n}" for n in sorted(rel) if stray(n, manifest.get("pdf"))]
    for name in pdfs:
        try:
            pages = pdf_pages(z.read(f"{top}/{name}"))
        except ValueError as exc:
            problems.append(f"{name} is {exc}")
            continue
        if pages < 1:
            problems.append(f"{name} has no pages")
        elif manifest and pages != manifest["pdf_pages"]:
            problems.append(f"{name} has {pages} pages, {MANIFEST} records {manifest['pdf_pages']}")
        if isinstance(manifest.get("pdf_sha256"), str) and _sha256_member(z, f"{top}/{name}") != manifest["pdf_sha256"]:
            problems.append(f"{name} is not the PDF of this build (its sha256 is not the one {MANIFEST} records)")
    if "SHA256SUMS" in rel:
        listed: dict[str, str] = {}
        try:
            text = z.read(f"{top}/SHA256SUMS").decode("utf-8")
        except UnicodeDecodeError:
            text = None
            problems.append("malformed SHA256SUMS: not UTF-8 text")
        for i, line in enumerate((text or "").splitlines(), 1):
            m = re.fullmatch(r"([0-9a-f]{64})  (\S.*)", line)
            if not m:
                problems.append(f"malformed SHA256SUMS line {i}: {line[:60]!r}")
                continue
            listed[m.group(2)] = m.group(1)
        if text is not None:
            unlisted = rel - set(listed) - {"SHA256SUMS"}
            problems += [f"not in SHA256SUMS: {n}" for n in sorted(unlisted)]
            for name, digest in listed.items():
                if name not in rel:
                    problems.append(f"listed but absent: {name}")
                elif _sha256_member(z, f"{top}/{name}") != digest:
                    problems.append(f"checksum mismatch: {name}")
    if manifest.get("files") is not None and manifest["files"] != len(rel):
        problems.append(f"{len(rel)} files, {MANIFEST} records {manifest['files']}")
    return problems


def main(argv: list[str]) -> int:
    from tokenflow.core.errors import TokenflowError

    if "--check" in argv:
        i = argv.index("--check")
        if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
            print("make_archive: error: --check needs the path of a bundle (.zip)", file=sys.stderr)
            return 2
        path = Path(argv[i + 1])
        problems = check(path)
        if problems:
            print(f"archive {path.name} INCOMPLETE:")
            for p in problems:
                print("  -", p)
            return 1
        with zipfile.ZipFile(path) as z:
            n = len(z.namelist())
        print(f"archive {path.name} complete: {n} files, every checksum verified, the PDF's pages as recorded")
        return 0
    if argv:
        print(f"make_archive: error: unknown arguments {argv}; usage: make_archive.py [--check ZIP]",
              file=sys.stderr)
        return 2
    try:
        out = build()
    except TokenflowError as exc:
        print(f"make_archive: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"make_archive: error: {exc}", file=sys.stderr)
        return 2
    print(f"archive: {out.relative_to(ROOT)} ({out.stat().st_size / 1e6:.1f} MB)")
    return main(["--check", str(out)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
