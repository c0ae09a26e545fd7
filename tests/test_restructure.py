"""tools/restructure.py on a tiny package: moves, rewritten imports (relative, absolute, strings,
aliases, source paths), package data found, the face unchanged, and a second run changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))

import restructure as rs  # noqa: E402

FILES = {
    "tokenflow/__init__.py": "from .engine import Market\nfrom .plan import plan\n__all__ = ['Market', 'plan']\n",
    "tokenflow/errors.py": "class TokenflowError(Exception):\n    pass\n",
    "tokenflow/engine.py": "from .errors import TokenflowError\n\n\nclass Market:\n    err = TokenflowError\n",
    "tokenflow/plan.py": ("from pathlib import Path\n\nfrom . import engine as _e\nfrom .engine import Market\n\n"
                          "COST = Path(__file__).resolve().parent / 'data' / 'c.csv'\n\n\n"
                          "def plan():\n    from .errors import TokenflowError\n"
                          "    return Market, _e, TokenflowError, COST.read_text()\n"),
    "tokenflow/newthing.py": "from .engine import Market  # a module the table does not know\n",
    "tokenflow/cli.py": "from .plan import plan\n",
    "tokenflow/data/c.csv": "a,b\n",
    "tests/test_x.py": ("import tokenflow as tf\nfrom tokenflow import engine\nfrom tokenflow import plan\n"
                        "from tokenflow.errors import TokenflowError\n\n\n"
                        "def test_x(monkeypatch):\n"
                        "    monkeypatch.setattr('tokenflow.engine.Market.err', TokenflowError)\n"
                        "    src = open('tokenflow/plan.py').read()\n"
                        "    return tf.engine.Market, tf.plan(), plan(), engine, src\n"),
    "notebooks/n.ipynb": json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                                                "source": ["%matplotlib inline\n", "from tokenflow import engine\n",
                                                           "import tokenflow.plan as tp"]},
                                               {"cell_type": "code", "metadata": {}, "outputs": [],
                                                "source": "from tokenflow.engine import Market\nMarket"}],
                                     "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n",
}


@pytest.fixture
def tree(tmp_path):
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("add", "-A")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "flat")
    return tmp_path


def _run(tree, capsys, monkeypatch) -> str:
    monkeypatch.chdir(tree)
    assert rs.main(["--no-ruff", "--root", str(tree)]) == 0
    return capsys.readouterr().out


def _import(tree, code: str) -> str:
    cp = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def test_restructure_moves_and_rewrites(tree, capsys, monkeypatch):
    out = _run(tree, capsys, monkeypatch)
    assert "moved now: 3" in out and "newthing" in out  # errors, engine, plan; the unknown reported
    assert (tree / "tokenflow/core/errors.py").is_file() and (tree / "tokenflow/clearing/engine.py").is_file()
    assert (tree / "tokenflow/planning/plan.py").is_file() and (tree / "tokenflow/newthing.py").is_file()
    plan = (tree / "tokenflow/planning/plan.py").read_text()
    assert "from ..clearing import engine as _e" in plan and "from ..clearing.engine import Market" in plan
    assert "from ..core.errors import TokenflowError" in plan and ".parents[1] / 'data'" in plan
    assert "from .clearing.engine import Market" in (tree / "tokenflow/newthing.py").read_text()
    t = (tree / "tests/test_x.py").read_text()
    assert "from tokenflow.clearing import engine\nfrom tokenflow import plan\n" in t  # plan: the function
    assert "'tokenflow.clearing.engine.Market.err'" in t and "tf.clearing.engine.Market, tf.plan()" in t
    assert "from tokenflow.core.errors import" in t and "'tokenflow/planning/plan.py'" in t
    nb = "".join(json.loads((tree / "notebooks/n.ipynb").read_text())["cells"][0]["source"])
    assert nb == "%matplotlib inline\nfrom tokenflow.clearing import engine\nimport tokenflow.planning.plan as tp"
    cell = json.loads((tree / "notebooks/n.ipynb").read_text())["cells"][1]["source"]
    assert cell == "from tokenflow.clearing.engine import Market\nMarket"  # a string stays a string
    # the face is unchanged, the package data found, every module imports
    got = _import(tree, "import tokenflow as tf, tokenflow.newthing, tokenflow.cli\n"
                        "print(sorted(tf.__all__), tf.plan()[3], tf.Market.__module__)")
    assert got.split() == ["['Market',", "'plan']", "a,b", "tokenflow.clearing.engine"]


def test_restructure_twice_changes_nothing(tree, capsys, monkeypatch):
    _run(tree, capsys, monkeypatch)
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts}
    out = _run(tree, capsys, monkeypatch)
    assert "moved now: 0" in out and "files rewritten: 0" in out
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts} == before


def test_restructure_refuses_a_table_with_a_layer_named_like_a_module(monkeypatch):
    monkeypatch.setitem(rs.LAYERS, "plan", "clash")
    with pytest.raises(SystemExit, match="layer names equal to module names"):
        rs._check_table()
