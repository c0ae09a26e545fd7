"""Every notebook runs through papermill with small parameters; the claims CLI passes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import once_per_run

from tokenflow.cli import main
from tokenflow.publish import reproduce as rp
from tokenflow.publish.reproduce import NOTEBOOKS, run_notebooks

ROOT = Path(__file__).resolve().parents[1]


def _parameter_names(path: Path) -> set[str]:
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    return set(re.findall(r"^([A-Za-z_]\w*)\s*=", "".join(cell["source"]), re.M))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """All notebooks with their --fast parameters, run once per test run (shared by the xdist
    workers).  A notebook with an ``n_workers`` parameter sweeps in its own process here
    (``n_workers=0``): the same notebook code without starting a Dask cluster per notebook
    (the cluster path: tests/test_sweep.py::test_local_dask_cluster_gives_same_result)."""
    pytest.importorskip("papermill")
    params = {name: (full, {**fast, "n_workers": 0} if "n_workers" in _parameter_names(ROOT / "notebooks" /
                                                                                      f"{name}.ipynb") else fast)
              for name, (full, fast) in rp.NOTEBOOKS.items()}
    with once_per_run(tmp_path_factory, "notebooks") as (root, done):
        if not done:
            shutil.copytree(ROOT / "notebooks", root / "notebooks", dirs_exist_ok=True)  # a failed first try left it
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(rp, "NOTEBOOKS", params)
                times = run_notebooks(root, fast=True)
            (root / "times.json").write_text(json.dumps(times))
        times = json.loads((root / "times.json").read_text())
    return root / "book" / "generated", times


# executing all fourteen notebooks takes minutes of CPU: a slow test (make test-slow; CI runs it, and
# make book runs every notebook at full size and checks every page with tools/check_book.py)
@pytest.mark.slow
def test_every_notebook_ran(executed):
    out, times = executed
    assert set(times) == set(NOTEBOOKS)
    for name in NOTEBOOKS:
        nb = json.loads((out / f"{name}.ipynb").read_text())
        outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], name
        glued = {o["metadata"]["scrapbook"]["name"] for o in outputs if "scrapbook" in o.get("metadata", {})}
        assert glued, f"{name} glues no values"
        # every glue key the notebook's text refers to was glued
        text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        for key in re.findall(r"\{glue:(?:text|md)\}`([A-Za-z0-9_]+)", text):
            assert key in glued, f"{name}: text quotes {key!r} which is not glued"


@pytest.mark.slow
def test_figures_and_results_saved(executed):
    out, _ = executed
    res = out / "results"
    for fig in ("fig1_us20_map", "fig2_us5_market", "fig3_us5_demand_growth", "fig4_transfer_aware",
                "fig_c3_latency", "fig_c4_merit_order"):
        for ext in ("png", "pdf"):
            assert (res / f"{fig}.{ext}").stat().st_size > 10_000, fig
    assert list(res.glob("*.nc"))
    assert (res / "scorecard.csv").exists()


def test_claims_cli_passes(capsys):
    assert main(["claims"]) == 0
    out = capsys.readouterr().out
    for claim in ("C1", "C2", "C3", "C4"):
        assert claim in out
