"""The citation files with this build's version and commit filled in.

``CITATION.cff`` and ``.zenodo.json`` in the repository carry the version (kept in step
with ``tokenflow.__version__`` by ``tests/test_citation.py``) and a commit placeholder;
:func:`filled` returns both with the commit of the working tree (``git rev-parse HEAD``,
``-dirty`` when the package differs from it), for the artifact archive.  The DOI is
filled by hand on deposit (Zenodo assigns it).

Usage: python tools/citation.py   (prints the filled CITATION.cff)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMIT_RE = re.compile(r'^commit: .*$', re.M)


def commit(root: Path = ROOT) -> str:
    sys.path.insert(0, str(root))
    from tokenflow.studies.citable import build_meta

    return build_meta()["commit"]


def filled(root: Path = ROOT, sha: str | None = None) -> dict[str, bytes]:
    """``{"CITATION.cff": ..., ".zenodo.json": ...}`` with the commit written in."""
    sha = sha or commit(root)
    cff = (root / "CITATION.cff").read_text()
    if not COMMIT_RE.search(cff):
        raise ValueError("CITATION.cff has no 'commit:' line to fill")
    cff = COMMIT_RE.sub(f'commit: "{sha}"', cff, count=1)
    zen = json.loads((root / ".zenodo.json").read_text())
    zen["notes"] = f"tokenflow {zen.get('version', '')}, commit {sha}. DOI: assigned by Zenodo on deposit."
    zen_text = json.dumps(zen, indent=2, ensure_ascii=False) + "\n"
    return {"CITATION.cff": cff.encode(), ".zenodo.json": zen_text.encode()}


if __name__ == "__main__":
    sys.stdout.write(filled()["CITATION.cff"].decode())
