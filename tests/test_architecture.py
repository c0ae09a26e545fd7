"""The package's architecture (issue 30): module sizes, no import circles, no module that imports
the package's face, and the public API as documented.  The layers themselves are checked by
import-linter (``lint-imports``, the contract in pyproject.toml; see ARCHITECTURE.md).

Read from the source with :mod:`ast` (nothing is imported but the package itself), so the tests
are fast and hold for the flat layout and for the layered one alike."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tokenflow

ROOT = Path(__file__).resolve().parents[1]
PKG_DIR = ROOT / "tokenflow"

#: the most lines a module may have (issue 30: "no module over about 600 lines")
MAX_MODULE_LINES = 600

#: the public API: every name importable from ``tokenflow`` (README, tokenflow/__init__.py)
PUBLIC_API = {
    "BidResult", "CHOICES", "InfeasibleMarketError", "Market", "MarketResult", "OutputError", "PlanResult",
    "Scenario", "ScenarioError", "SolverError", "TokenflowError", "__version__", "available_scenarios",
    "clear_bids", "demand_scale_limit", "export_lp", "load_scenario", "max_demand_scale", "plan", "solve",
    "sweep", "synthetic_network",
}
PUBLIC_FUNCTIONS = {"available_scenarios", "clear_bids", "demand_scale_limit", "export_lp", "load_scenario",
                    "max_demand_scale", "plan", "solve", "sweep", "synthetic_network"}
PUBLIC_ERRORS = {"InfeasibleMarketError", "OutputError", "ScenarioError", "SolverError", "TokenflowError"}


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package's __init__ as the package)."""
    out = {}
    for f in sorted(PKG_DIR.rglob("*.py")):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports (at the top or inside a function), resolved."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else (node.module or "")
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # tokenflow.clearing.engine.Market -> tokenflow.clearing.engine
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_circle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_relative_and_lazy_imports():
    # the face imports the market's entry points; the market's one-shot module imports the engine
    market = next(m for m in MODULES if m.endswith(".market") and "engine" in {x.rsplit(".", 1)[-1]
                                                                               for x in GRAPH[m]})
    assert any(x.endswith(".engine") for x in GRAPH[market])
    assert any(x.endswith(".market") for x in GRAPH["tokenflow"])
    assert len(MODULES) > 40


def test_no_import_circles():
    """No circle among the package's modules, counting imports inside functions too (the face
    ``tokenflow/__init__.py`` is a module here, so a module that imports it closes a circle)."""
    cycles = _cycles(GRAPH)
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_the_face():
    """Inside the package, code imports the module that defines a name, never ``tokenflow`` itself."""
    offenders = sorted(m for m, deps in GRAPH.items() if m != "tokenflow" and "tokenflow" in deps)
    assert not offenders, f"modules importing the package's face: {offenders}"


def _sizes() -> list[tuple[int, str]]:
    return sorted(((len(p.read_text(encoding="utf-8").splitlines()), m) for m, p in MODULES.items()), reverse=True)


def test_module_sizes(capsys):
    """No module over :data:`MAX_MODULE_LINES` (issue 30, item 3); prints the largest ten."""
    sizes = _sizes()
    with capsys.disabled():
        print("\nlargest modules (lines): " + ", ".join(f"{m.removeprefix('tokenflow.')} {n}" for n, m in sizes[:10]))
    over = [(m, n) for n, m in sizes if n > MAX_MODULE_LINES]
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"


def test_every_module_imports():
    """Every module imports (a relative import that points nowhere, e.g. after a move, fails here:
    the import graph above and lint-imports skip what they cannot resolve)."""
    import importlib

    failed = {}
    for m in MODULES:
        try:
            importlib.import_module(m)
        except Exception as e:  # noqa: BLE001  (collect them all)
            failed[m] = f"{type(e).__name__}: {e}"
    assert not failed, failed


def test_the_layer_contract_holds():
    """import-linter's contract (pyproject.toml: the layers, exhaustive) on the layered package."""
    import shutil
    import subprocess
    import sys

    if not (PKG_DIR / "core").is_dir():
        pytest.skip("flat layout: the contract is for the layers tools/restructure.py makes")
    exe = Path(sys.executable).with_name("lint-imports")
    exe = str(exe) if exe.exists() else shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    cp = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-2000:]


def test_public_api_is_the_documented_one():
    assert set(tokenflow.__all__) == PUBLIC_API
    assert len(tokenflow.__all__) == len(set(tokenflow.__all__))
    for name in PUBLIC_API:
        assert hasattr(tokenflow, name), name
    for name in PUBLIC_FUNCTIONS:
        assert callable(getattr(tokenflow, name)) and not isinstance(getattr(tokenflow, name), type), name
    for name in PUBLIC_ERRORS:
        assert issubclass(getattr(tokenflow, name), tokenflow.TokenflowError), name
    assert isinstance(tokenflow.__version__, str) and tokenflow.__version__
    assert isinstance(tokenflow.Market, type) and isinstance(tokenflow.Scenario, type)
    assert "prefill_and_decode" in str(tokenflow.CHOICES)


def test_the_cli_entry_point_resolves():
    import importlib
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["tokenflow"]
    mod, _, fn = target.partition(":")
    assert callable(getattr(importlib.import_module(mod), fn))
