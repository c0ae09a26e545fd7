"""Incremental rebuilds: a notebook is re-executed only when its content key changes."""

from __future__ import annotations

import json

import nbformat
import pytest

from tokenflow import reproduce as rp
from tokenflow.errors import TokenflowError


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    pytest.importorskip("papermill")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell('n = 1\noutput_dir = "results"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import os\nprint(n, os.path.isdir(output_dir))")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "tiny.ipynb")
    monkeypatch.setattr(rp, "NOTEBOOKS", {"tiny": ({"n": 3}, {"n": 2})})
    return tmp_path


def test_reuse_then_reexecute_on_change_and_force(tiny):
    rp.run_notebooks(tiny)
    assert rp.last_status() == {"tiny": "executed"}
    rp.run_notebooks(tiny)
    assert rp.last_status() == {"tiny": "reused"}
    rp.run_notebooks(tiny, fast=True)  # other parameters: another key
    assert rp.last_status() == {"tiny": "executed"}
    rp.run_notebooks(tiny, fast=True, force=True)
    assert rp.last_status() == {"tiny": "executed"}
    src = tiny / "notebooks" / "tiny.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells[1].source += "\nprint('changed')"
    nbformat.write(nb, src)
    rp.run_notebooks(tiny, fast=True)
    assert rp.last_status() == {"tiny": "executed"}
    rp.run_notebooks(tiny, fast=True)
    assert rp.last_status() == {"tiny": "reused"}


def test_executed_copy_has_no_machine_path_and_hides_injected_cell(tiny):
    rp.run_notebooks(tiny)
    out = tiny / "book" / "generated" / "tiny.ipynb"
    text = out.read_text()
    assert str(tiny) not in text
    nb = json.loads(text)
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0]["metadata"]["tags"]
    assert 'output_dir = "results"' in "".join(injected[0]["source"])
    printed = "".join("".join(o.get("text", [])) for c in nb["cells"] for o in c.get("outputs", []))
    assert printed.strip() == "3 True"


def test_package_change_changes_every_key(tiny, monkeypatch):
    src = tiny / "notebooks" / "tiny.ipynb"
    k1 = rp.notebook_key(src, {"n": 1}, rp.package_fingerprint())
    assert k1 == rp.notebook_key(src, {"n": 1}, rp.package_fingerprint())
    assert k1 != rp.notebook_key(src, {"n": 1}, "another package")
    assert k1 != rp.notebook_key(src, {"n": 2}, rp.package_fingerprint())


def test_unknown_notebook_is_a_clear_error(tiny):
    with pytest.raises(TokenflowError, match="unknown notebook"):
        rp.run_notebooks(tiny, names=["nope"])


def test_every_toc_notebook_is_reproduced():
    """reproduce lists exactly the notebooks the book's table of contents shows."""
    import yaml

    root = rp.Path(__file__).resolve().parents[1]
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    in_toc = {f.rsplit("/", 1)[1] for f in files if f.startswith("book/generated/")}
    on_disk = {p.stem for p in (root / "notebooks").glob("*.ipynb")}
    assert in_toc <= set(rp.NOTEBOOKS)
    assert in_toc & on_disk == in_toc
