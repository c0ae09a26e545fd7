"""The main job: execute every notebook with papermill, then build the book from the
executed copies (no second execution), with Sphinx warnings as errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

# notebook -> parameters for the full run and for --fast (tests, CI smoke)
NOTEBOOKS: dict[str, tuple[dict, dict]] = {
    "data_provenance": ({}, {}),
    "us5_market": ({}, {}),
    "us5_demand_growth": ({"n_points": 41, "n_range": 8}, {"n_points": 6, "n_range": 2}),
    "transfer_vs_token": ({}, {}),
    "latency": ({"n_limits": 39}, {"n_limits": 5}),
    "us20_scaleup": ({"n_points": 25}, {"n_points": 5}),
    "formulations_settlement": ({"n_points": 25}, {"n_points": 5}),
    "robustness": ({"n_draws": 500}, {"n_draws": 12}),
    "choices": ({}, {}),
    "referees": ({}, {"sim_requests": 400, "sim_rhos": [0.5, 0.9], "n_scales": 2, "us20_check": False,
                          "fixed_point_tol": 1e-2}),
    "scorecard": ({}, {}),
}
OUT = Path("book") / "generated"


def run_notebooks(root: Path, fast: bool = False, names: list[str] | None = None) -> dict[str, float]:
    """Execute notebooks into ``book/generated``; return seconds per notebook.

    A failing cell raises :class:`~tokenflow.errors.TokenflowError` naming the notebook and cell.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .errors import TokenflowError

    out = root / OUT
    out.mkdir(parents=True, exist_ok=True)
    results_dir = out / "results"
    times = {}
    names = names or list(NOTEBOOKS)
    for i, name in enumerate(names, 1):
        full, quick = NOTEBOOKS[name]
        params = {**(quick if fast else full), "output_dir": str(results_dir.resolve())}
        src, dst = root / "notebooks" / f"{name}.ipynb", out / f"{name}.ipynb"
        print(f"[{i}/{len(names)}] {name} ...", end=" ", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name="python3",
                                cwd=str(out), progress_bar=False, log_output=False)
        except PapermillExecutionError as exc:
            print("FAILED")
            raise TokenflowError(f"notebook {name}.ipynb failed in cell {exc.exec_count}: "
                                 f"{exc.ename}: {exc.evalue} (executed copy: {dst})") from None
        times[name] = time.perf_counter() - t0
        print(f"{times[name]:.1f} s", flush=True)
    return times


def build_book(root: Path) -> float:
    """``jupyter-book build`` of the repository root, warnings as errors; seconds taken."""
    from .errors import TokenflowError

    t0 = time.perf_counter()
    shutil.rmtree(root / "_build", ignore_errors=True)
    jb = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
    proc = subprocess.run([jb, "build", str(root), "--builder", "html", "-W", "--keep-going"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise TokenflowError(f"jupyter-book build failed:\n{tail}")
    return time.perf_counter() - t0


def reproduce(root: Path = Path("."), fast: bool = False, build: bool = True) -> int:
    root = root.resolve()
    if not (root / "notebooks").is_dir():
        from .errors import TokenflowError

        raise TokenflowError(f"{root} has no notebooks/ folder: run from the repository root or pass --root")
    t0 = time.perf_counter()
    times = run_notebooks(root, fast=fast)
    if build:
        print("building the book ...", end=" ", flush=True)
        times["book build"] = build_book(root)
        print(f"{times['book build']:.1f} s")
    total = time.perf_counter() - t0
    print("\ntimings (s):")
    for k, v in times.items():
        print(f"  {k:22s} {v:7.1f}")
    print(f"  {'total':22s} {total:7.1f}")
    if build:
        print(f"\nbook: {root / '_build' / 'html' / 'index.html'}")
    return 0
