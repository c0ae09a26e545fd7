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
    SHA256SUMS            sha256 of every other file, `sha256sum -c` format

``--check ZIP`` verifies a bundle: every required part present and every checksum right.

Usage: python tools/make_archive.py [--check dist/tokenflow-<v>-artifact.zip]
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_FILES = ["README.md", "CITATION.cff", ".zenodo.json", "CHANGELOG.md", "LICENSE"]


def version() -> str:
    sys.path.insert(0, str(ROOT))
    from tokenflow import __version__

    return __version__


def bundle_name(v: str) -> str:
    return f"tokenflow-{v}-artifact"


def collect(root: Path, v: str) -> dict[str, bytes | Path]:
    """Archive member name (relative to the top folder) -> file path or bytes."""
    from tokenflow.errors import TokenflowError

    html = root / "_build" / "html"
    pdf = root / "_build" / "pdf" / f"tokenflow-{v}.pdf"
    gen = root / "book" / "generated"
    need = {"HTML book (make book)": html / "index.html", "PDF (make pdf)": pdf,
            "executed notebooks (make book)": gen}
    missing = [f"{what}: {p}" for what, p in need.items() if not p.exists()]
    if missing:
        raise TokenflowError("cannot build the archive, missing " + "; ".join(missing))
    members: dict[str, bytes | Path] = {}
    for p in sorted(html.rglob("*")):
        if p.is_file() and not p.name.startswith(".tokenflow-book"):
            members[f"html/{p.relative_to(html).as_posix()}"] = p
    members[pdf.name] = pdf
    for p in sorted(gen.glob("*.ipynb")):
        members[f"notebooks/{p.name}"] = p
    for p in sorted((gen / "results").rglob("*")):
        if p.is_file():
            members[f"results/{p.relative_to(gen / 'results').as_posix()}"] = p
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
    """Problems with a bundle (empty list: complete and every checksum right)."""
    problems = []
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) != 1:
            return [f"expected one top folder, found {sorted(tops)}"]
        top = tops.pop()
        rel = {n.split("/", 1)[1] for n in names if not n.endswith("/")}
        required = {
            "HTML book": lambda r: "html/index.html" in r,
            "math bundled (MathJax)": lambda r: any(n.startswith("html/_static/mathjax/tex-chtml") for n in r),
            "PDF": lambda r: any(n.endswith(".pdf") and "/" not in n for n in r),
            "executed notebooks": lambda r: sum(n.startswith("notebooks/") and n.endswith(".ipynb") for n in r) > 0,
            "result files (netCDF)": lambda r: any(n.startswith("results/") and n.endswith(".nc") for n in r),
            "scenario files": lambda r: any(n.startswith("scenarios/") and n.endswith(".yaml") for n in r),
            "pip freeze": lambda r: "environment/pip-freeze.txt" in r,
            "SHA256SUMS": lambda r: "SHA256SUMS" in r,
            "citation metadata": lambda r: {"CITATION.cff", ".zenodo.json"} <= r,
        }
        problems += [f"missing {what}" for what, ok in required.items() if not ok(rel)]
        if "SHA256SUMS" in rel:
            listed = {}
            for line in z.read(f"{top}/SHA256SUMS").decode().splitlines():
                digest, name = line.split("  ", 1)
                listed[name] = digest
            unlisted = rel - set(listed) - {"SHA256SUMS"}
            problems += [f"not in SHA256SUMS: {n}" for n in sorted(unlisted)]
            for name, digest in listed.items():
                if name not in rel:
                    problems.append(f"listed but absent: {name}")
                elif hashlib.sha256(z.read(f"{top}/{name}")).hexdigest() != digest:
                    problems.append(f"checksum mismatch: {name}")
    return problems


def main(argv: list[str]) -> int:
    if "--check" in argv:
        path = Path(argv[argv.index("--check") + 1])
        problems = check(path)
        if problems:
            print(f"archive {path.name} INCOMPLETE:")
            for p in problems:
                print("  -", p)
            return 1
        with zipfile.ZipFile(path) as z:
            n = len(z.namelist())
        print(f"archive {path.name} complete: {n} files, every checksum verified")
        return 0
    out = build()
    print(f"archive: {out.relative_to(ROOT)} ({out.stat().st_size / 1e6:.1f} MB)")
    return main(["--check", str(out)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
