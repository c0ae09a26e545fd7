"""Turn the flat ``tokenflow/`` folder into layered subpackages (issue 30, item 1): one mechanical,
idempotent pass, meant to be run by the lead on the merged tree.

What it does, in the repository root of any later version of this tree:

1. ``git mv tokenflow/<m>.py tokenflow/<layer>/<m>.py`` for each module of :data:`MAPPING` (a
   module that has become a folder package ``tokenflow/<m>/`` moves as a whole); module names stay,
   only the folder changes.  Each layer gets an ``__init__.py`` holding only a docstring
   (:data:`LAYERS`).  A mapped module that is not there is reported and skipped; a module the table
   does not know stays at the top and is reported (add a line to :data:`MAPPING` and run again).
2. Rewrites every reference to an old module path to the new one:

   * imports in ``tokenflow/`` (relative ones too: each is resolved against the file's old place,
     mapped, and written relative again from the file's new place; ``from . import validate as _v``
     becomes ``from ..core import validate as _v``), found with :mod:`ast`, only the module part of
     a statement is replaced (names, aliases, comments and line breaks stay);
   * ``from tokenflow import engine`` -> ``from tokenflow.clearing import engine``; attribute chains
     on an alias of the package (``tf.engine.Market`` -> ``tf.clearing.engine.Market``, never
     ``tf.plan(...)`` or ``tf.sweep(...)``: names the package's face binds are left alone);
   * dotted paths ``tokenflow.<m>`` anywhere in Python code, strings and comments (monkeypatch and
     mock strings, error messages, docstrings), in notebook cells, book pages, Makefile,
     pyproject.toml, .ci/run and the workflows: ``tokenflow.engine.Market`` ->
     ``tokenflow.clearing.engine.Market``.  ``tokenflow.plan`` and ``tokenflow.sweep`` (the public
     functions) are rewritten only when followed by ``.name`` (then they are module paths);
   * file paths ``tokenflow/<m>.py`` and ``"tokenflow" / "<m>.py"`` (tests that read a source file);
   * ``Path(__file__)...parent`` / ``.parents[i]`` in each file moved *in this run* one level
     deeper (``.parent`` -> ``.parents[1]``, ``.parents[i]`` -> ``.parents[i+1]``), so package
     data (``tokenflow/data``, which does not move) and the package root are found as before.
     ``importlib.resources.files("tokenflow")`` needs no change.
3. ``ruff check --fix --select I`` on the rewritten Python files (the order of imports changes).

Not handled (reported, or listed here for the lead):
README.md and CHANGELOG.md are not touched (the lead's): the script counts their old paths.
Prose that names a module by a bare path which is also a public function (``tokenflow.plan``,
``tokenflow.sweep``) stays.  ``import tokenflow`` inside the package (the face) is reported, not
rewritten.  A test that copies a module's folder as the package (``Path(rp.__file__).parent``)
must be fixed by hand.  A file moved by an earlier, interrupted run does not get its
``__file__`` depth fixed again: run it on a clean tree.

How to run it (the lead, after merging every branch into main):

    git status --short                           # clean tree
    .venv/bin/tokenflow reproduce --force        # BEFORE: every notebook, book/generated
    .venv/bin/python tools/glue_values.py > /tmp/glue_before.json
    .venv/bin/python tools/restructure.py        # moves, rewrites, re-sorts imports; prints a report
    .venv/bin/python tools/restructure.py        # again: must report 0 moves and 0 files changed
    git status --short | head; git diff --stat | tail -1
    # a module the NOTEs call "not in the table": add a line to MAPPING, run again
    # a line the NOTEs call too long (E501): wrap it by hand
    .venv/bin/ruff check tokenflow tests tools benchmarks
    .venv/bin/lint-imports                       # the contract in pyproject.toml
    .venv/bin/python -m pytest -q tests/test_architecture.py   # circles, face, sizes (TO_SPLIT), API
    make test                                    # every test, only private import paths changed
    .venv/bin/tokenflow reproduce --force        # AFTER
    .venv/bin/python tools/glue_values.py > /tmp/glue_after.json
    cmp /tmp/glue_before.json /tmp/glue_after.json && echo "glue values byte-identical"
    python benchmarks/bench_market.py (before and after) for the closing note
    git add -A tokenflow tests tools benchmarks notebooks book Makefile pyproject.toml .ci
    git commit -m "tokenflow: layered subpackages (tools/restructure.py)"

Options: ``--dry-run`` (report what would move, change nothing), ``--no-ruff``.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

PKG = "tokenflow"

#: layer folder -> its docstring (the layers, bottom to top; see ARCHITECTURE.md)
LAYERS = {
    "core": "Bottom layer: the exception types, output files that appear whole or not at all, argument checks.\n"
            "Imports nothing else from tokenflow.",
    "scenarios": "Data layer: scenario files (parse, validate, choices, resolution), the network and backbones,\n"
                 "request traces, serving measurements and values of lost load as data, synthetic networks.\n"
                 "Knows no model: imports only tokenflow.core.",
    "lp": "The market LP: inputs as arrays, routes and exact pricing, the path and arc formulations,\n"
          "the live HiGHS instance, the linopy view.",
    "clearing": "The market: the persistent engine (Market), the one-shot entry points (solve, ...), results,\n"
                "alternative optima and statistics over the optimal face.",
    "latency": "The serving model on top of the market: batching and queueing, the discrete-event check,\n"
               "latency-consistent clearing.  Independent of tokenflow.planning.",
    "planning": "Long-run questions on top of the market: value of upgrades, the planning LP, clearing\n"
                "against bids and offers.  Independent of tokenflow.latency.",
    "studies": "Analyses built on the models: the paper's cases and claims, calibration, the consistent unit,\n"
               "sweeps, identifiability, the citable record.",
    "publish": "The book: the main job (reproduce), figures and their style, tables, interactive maps,\n"
               "notebook helpers.",
}

#: old module (tokenflow.<name>) -> layer folder; one line per module, module names unchanged
MAPPING = {
    "errors": "core",
    "io": "core",
    "validate": "core",
    "scenario": "scenarios",
    "network": "scenarios",
    "topology": "scenarios",
    "traces": "scenarios",
    "serving": "scenarios",
    "synthetic": "scenarios",
    "datafiles": "scenarios",
    "voll": "scenarios",
    "inputs": "lp",
    "routes": "lp",
    "model": "lp",
    "arc": "lp",
    "solver": "lp",
    "lp_view": "lp",
    "engine": "clearing",
    "market": "clearing",
    "results": "clearing",
    "alt_optima": "clearing",
    "face": "clearing",
    "queueing": "latency",
    "simulate": "latency",
    "latency_clearing": "latency",
    "latency_lp": "latency",
    "upgrades": "planning",
    "plan": "planning",
    "costs": "planning",
    "bids": "planning",
    "cases": "studies",
    "claims": "studies",
    "calibration": "studies",
    "consistent": "studies",
    "identifiability": "studies",
    "citable": "studies",
    "sweep": "studies",
    "analysis": "studies",
    "book": "publish",
    "plotting": "publish",
    "style": "publish",
    "tables": "publish",
    "interactive": "publish",
    "reproduce": "publish",
}

#: modules that stay at the top of the package on purpose
TOP = {"__init__", "__main__", "cli", "_version"}

PY_DIRS = ("tokenflow", "tests", "tools", "benchmarks")
TEXT_FILES = ("Makefile", "pyproject.toml", ".ci/run", "environment.yml", "_config.yml", "_toc.yml")
TEXT_GLOBS = ("book/*.md", ".github/workflows/*.yml")
REPORT_ONLY = ("README.md", "CHANGELOG.md", "CONTRIBUTING.md")
SELF = Path("tools/restructure.py")
#: files never rewritten: this script and its test (whose tiny tree is written in the old paths)
SKIP = (SELF, Path("tests/test_restructure.py"))
MAX_LINE = 120  # ruff's line-length (pyproject.toml)


def _check_table() -> None:
    clash = set(LAYERS) & (set(MAPPING) | TOP)
    if clash:  # a layer named like an old module would make the rewriting ambiguous
        raise SystemExit(f"layer names equal to module names: {sorted(clash)}")
    unknown = set(MAPPING.values()) - set(LAYERS)
    if unknown:
        raise SystemExit(f"MAPPING names layers not in LAYERS: {sorted(unknown)}")


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True)


# ----------------------------------------------------------------------------------- moves
def move_modules(root: Path, dry: bool) -> tuple[dict[Path, str], dict[str, list[str]]]:
    """git mv each mapped module; returns {new file: its old dotted module} for files moved now, and
    the report lists."""
    pkg = root / PKG
    moved_now: dict[Path, str] = {}
    rep: dict[str, list[str]] = {"moved": [], "already": [], "absent": [], "unknown": []}
    for name, layer in MAPPING.items():
        old_file, old_dir = pkg / f"{name}.py", pkg / name
        new_file, new_dir = pkg / layer / f"{name}.py", pkg / layer / name
        old = old_file if old_file.is_file() else old_dir if (old_dir / "__init__.py").is_file() else None
        new_exists = new_file.is_file() or (new_dir / "__init__.py").is_file()
        if old is not None and new_exists:
            raise SystemExit(f"both {old} and its new place exist: resolve by hand")
        if old is None:
            rep["already" if new_exists else "absent"].append(name)
            continue
        target = (new_file if old is old_file else new_dir)
        rep["moved"].append(f"{PKG}.{name} -> {PKG}.{layer}.{name}")
        if dry:
            continue
        init = pkg / layer / "__init__.py"
        if not init.is_file():
            init.parent.mkdir(exist_ok=True)
            init.write_text(f'"""{LAYERS[layer]}\n\nSee ARCHITECTURE.md for the layers and what each may import."""\n')
            _git("add", str(init))
        _git("mv", str(old), str(target))
        if target.is_file():
            moved_now[target] = f"{PKG}.{name}"
        else:
            for f in target.rglob("*.py"):
                rel = f.relative_to(target).with_suffix("")
                parts = [p for p in rel.parts if p != "__init__"]
                moved_now[f] = ".".join([PKG, name, *parts])
    for f in sorted(pkg.iterdir()):
        stem = f.stem if f.suffix == ".py" else f.name
        is_mod = f.suffix == ".py" or (f.is_dir() and (f / "__init__.py").is_file())
        if is_mod and stem not in MAPPING and stem not in TOP and stem not in LAYERS:
            rep["unknown"].append(stem)
    return moved_now, rep


# ------------------------------------------------------------------------------- rewriting
def _new_path(dotted: str) -> str | None:
    """New dotted path for an old one (``tokenflow.engine[.X]``), None when not an old path."""
    parts = dotted.split(".")
    if len(parts) >= 2 and parts[0] == PKG and parts[1] in MAPPING:
        return ".".join([PKG, MAPPING[parts[1]], *parts[1:]])
    return None


def _face_names(root: Path) -> set[str]:
    """Names the package's face binds (``tokenflow.plan`` is the function, not the module)."""
    tree = ast.parse((root / PKG / "__init__.py").read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out |= {a.asname or a.name for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(t, ast.Name):
                    out.add(t.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
    return out


_DOTTED = re.compile(r"(?<![\w.])" + PKG + r"\.([A-Za-z_]\w*)(\.[A-Za-z_]\w*)?")
_FROM_PKG = re.compile(r"(?<![\w.])from\s+" + PKG + r"\s+import\s+([A-Za-z_]\w*)(?=\s*(?:$|\\n|as\s|#|[\"']))",
                       re.MULTILINE)
_FILE = re.compile(r"(?<![\w.])" + PKG + r"/([A-Za-z_]\w*)\.py\b")
_PATHJOIN = re.compile(r"""(["'])""" + PKG + r"""\1(\s*/\s*)(["'])([A-Za-z_]\w*)\.py\3""")


def rewrite_text(text: str, face: set[str]) -> str:
    """Dotted module paths and source-file paths in any text (code, strings, comments, prose)."""
    def dotted(m: re.Match) -> str:
        name, rest = m.group(1), m.group(2) or ""
        s, e = m.start(), m.end()
        whole_string = 0 < s and e < len(m.string) and m.string[s - 1] in "\"'" and m.string[e] == m.string[s - 1]
        imported = re.search(r"(?:^|\s)(?:import|from)\s+$", m.string[max(0, s - 12):s]) is not None
        if name not in MAPPING or (name in face and not rest and not whole_string and not imported):
            return m.group(0)  # tokenflow.plan(...) is the function; "tokenflow.plan" alone is the module
        return f"{PKG}.{MAPPING[name]}.{name}{rest}"

    text = _DOTTED.sub(dotted, text)
    # code inside strings (a notebook cell a test writes): from tokenflow import engine
    text = _FROM_PKG.sub(lambda m: f"from {PKG}.{MAPPING[m.group(1)]} import {m.group(1)}"
                         if m.group(1) in MAPPING and m.group(1) not in face else m.group(0), text)
    text = _FILE.sub(lambda m: f"{PKG}/{MAPPING[m.group(1)]}/{m.group(1)}.py" if m.group(1) in MAPPING
                     else m.group(0), text)
    return _PATHJOIN.sub(lambda m: (f"{m.group(1)}{PKG}{m.group(1)}{m.group(2)}{m.group(3)}{MAPPING[m.group(4)]}"
                                    f"{m.group(3)}{m.group(2)}{m.group(3)}{m.group(4)}.py{m.group(3)}")
                         if m.group(4) in MAPPING else m.group(0), text)


def _offsets(src: str) -> list[int]:
    starts, pos = [0], 0
    for line in src.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _char(src_lines: list[str], starts: list[int], lineno: int, col_bytes: int) -> int:
    line = src_lines[lineno - 1]
    return starts[lineno - 1] + len(line.encode()[:col_bytes].decode(errors="ignore"))


def _resolve(module: str | None, level: int, here: str, is_pkg_init: bool) -> str:
    """Absolute dotted name of ``from <level dots><module> import`` in module ``here``."""
    if level == 0:
        return module or ""
    base = here.split(".") if is_pkg_init else here.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _relative(target: str, here: str, is_pkg_init: bool) -> str:
    """``target`` written relative to module ``here`` (``..clearing.engine``)."""
    pkg = here.split(".") if is_pkg_init else here.split(".")[:-1]
    tgt = target.split(".")
    common = 0
    while common < min(len(pkg), len(tgt)) and pkg[common] == tgt[common]:
        common += 1
    return "." * (len(pkg) - common + 1) + ".".join(tgt[common:])


def rewrite_python(src: str, face: set[str], here_old: str | None, here_new: str | None,
                   is_pkg_init: bool = False, moved_now: bool = False) -> tuple[str, list[str]]:
    """Rewrite one Python source.  ``here_old``/``here_new``: the file's dotted module before and
    after the move (package files only; relative imports are resolved against the old one)."""
    notes: list[str] = []
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        notes.append(f"not parsed ({e.msg}, line {e.lineno}): dotted paths rewritten as text only")
        return rewrite_text(src, face), notes
    lines = src.splitlines(keepends=True)
    starts = _offsets(src)
    edits: list[tuple[int, int, str]] = []
    aliases = {a.asname for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
               if a.name == PKG and a.asname}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and here_new and any(a.name == PKG for a in node.names):
            notes.append(f"line {node.lineno}: imports the package's face inside the package")
        if isinstance(node, ast.Import):  # import tokenflow.plan as tp: the module, whatever the face binds
            for al in node.names:
                new = _new_path(al.name)
                if new and hasattr(al, "end_col_offset") and al.lineno == al.end_lineno:
                    a = _char(lines, starts, al.lineno, al.col_offset)
                    if src.startswith(al.name, a):
                        edits.append((a, a + len(al.name), new))
        if isinstance(node, ast.ImportFrom):
            level, module = node.level, node.module
            if level and not here_old:
                continue
            absolute = _resolve(module, level, here_old or "", is_pkg_init)
            if level == 0 and not absolute.startswith(PKG):
                continue
            names = [a.name for a in node.names]
            # names that are old modules: from tokenflow import engine / from . import validate
            # (not a name the face binds: "from tokenflow import plan" is the function plan)
            mapped_subs = {n: _new_path(f"{PKG}.{n}") for n in names
                           if absolute == PKG and n in MAPPING and n not in face}
            if mapped_subs:  # from tokenflow import engine / from . import validate as _v
                parents = {v.rsplit(".", 1)[0] for v in mapped_subs.values()}
                if len(parents) != 1 or len(mapped_subs) != len(names):
                    split = _split_import(node, src, lines, starts, here_new, is_pkg_init, face)
                    if split is None:
                        notes.append(f"line {node.lineno}: 'from {'.' * level}{module or ''} import "
                                     f"{', '.join(names)}' mixes modules of several layers: split it by hand")
                    else:
                        edits.append(split)
                    continue
                new_abs = parents.pop()
            else:
                new_abs = _new_path(absolute) or absolute
            if level:
                new_mod = _relative(new_abs, here_new or "", is_pkg_init)
            else:
                new_mod = new_abs
            old_mod = "." * level + (module or "")
            if new_mod == old_mod:
                continue
            a = _char(lines, starts, node.lineno, node.col_offset)
            m = re.compile(r"from\s+(\.*\s*[\w.]*)\s+import").match(src, a)
            if not m:
                notes.append(f"line {node.lineno}: import statement not understood: left as it is")
                continue
            edits.append((m.start(1), m.end(1), new_mod))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if node.attr in MAPPING and node.attr not in face:
                a = _char(lines, starts, node.value.lineno, node.value.col_offset)
                b = _char(lines, starts, node.end_lineno, node.end_col_offset)
                edits.append((a, b, f"{node.value.id}.{MAPPING[node.attr]}.{node.attr}"))
    out = src
    for a, b, new in sorted(edits, reverse=True):
        out = out[:a] + new + out[b:]
    out = rewrite_text(out, face)
    if moved_now:
        out = _deeper_file_paths(out)
    before = set(src.splitlines())
    for i, line in enumerate(out.splitlines(), 1):
        if len(line) > MAX_LINE and line not in before:
            notes.append(f"line {i}: {len(line)} characters after the rewrite (ruff E501): wrap it")
    return out, notes


def _split_import(node: ast.ImportFrom, src: str, lines: list[str], starts: list[int], here_new: str | None,
                  is_pkg_init: bool, face: set[str]) -> tuple[int, int, str] | None:
    """``from tokenflow import __version__, citable`` -> one statement per new parent (same
    indentation); None where the statement shares its line with other code."""
    a = _char(lines, starts, node.lineno, node.col_offset)
    b = _char(lines, starts, node.end_lineno, node.end_col_offset)
    indent = src[starts[node.lineno - 1]:a]
    if indent.strip() or src[b:].split("\n", 1)[0].strip().split("#")[0].strip():
        return None
    groups: dict[str, list[str]] = {}
    for al in node.names:
        new = _new_path(f"{PKG}.{al.name}") if al.name in MAPPING and al.name not in face else None
        parent = new.rsplit(".", 1)[0] if new else PKG
        groups.setdefault(parent, []).append(al.name + (f" as {al.asname}" if al.asname else ""))
    stmts = []
    for parent, names in groups.items():
        mod = _relative(parent, here_new or "", is_pkg_init) if node.level else parent
        stmts.append(f"from {mod} import {', '.join(names)}")
    return a, b, ("\n" + indent).join(stmts)


_PARENT = re.compile(r"(Path\(__file__\)(?:\.resolve\(\))?)\.parent(?![\w\[])")
_PARENTS = re.compile(r"(Path\(__file__\)(?:\.resolve\(\))?)\.parents\[(\d+)\]")


def _deeper_file_paths(src: str) -> str:
    """A file one folder deeper: ``Path(__file__).parent`` -> ``.parents[1]``, ``.parents[i]`` -> ``[i+1]``."""
    src = _PARENTS.sub(lambda m: f"{m.group(1)}.parents[{int(m.group(2)) + 1}]", src)
    return _PARENT.sub(lambda m: f"{m.group(1)}.parents[1]", src)


def _mask_magics(code: str) -> str:
    """IPython magics and shell lines become comments of the same length (for ast)."""
    return "\n".join("#" + ln.lstrip()[1:] if ln.lstrip().startswith(("%", "!")) else ln for ln in code.split("\n"))


def rewrite_notebook(text: str, face: set[str]) -> tuple[str, list[str]]:
    nb = json.loads(text)
    sort = next((s for s in (True, False) if json.dumps(nb, sort_keys=s, indent=1, ensure_ascii=False) + "\n"
                 == text), None)
    if sort is None:
        return rewrite_text(text, face), ["does not round-trip through json: dotted paths rewritten as text only"]
    notes: list[str] = []
    for i, cell in enumerate(nb.get("cells", [])):
        src = "".join(cell.get("source", []))
        if cell.get("cell_type") == "code":
            masked = _mask_magics(src)
            new, n = rewrite_python(masked, face, None, None)
            notes += [f"cell {i}: {x}" for x in n]
            if new != masked:  # put the magics back
                new = "\n".join(o if o.lstrip().startswith(("%", "!")) else ln
                                for o, ln in zip(src.split("\n"), new.split("\n"), strict=True))
            else:
                new = src
        else:
            new = rewrite_text(src, face)
        if new != src:  # in the form the notebook stores it (one string, or a list of lines)
            cell["source"] = new if isinstance(cell.get("source"), str) else new.splitlines(keepends=True)
    return json.dumps(nb, sort_keys=sort, indent=1, ensure_ascii=False) + "\n", notes


def files_to_rewrite(root: Path) -> list[Path]:
    out = [p for d in PY_DIRS for p in sorted((root / d).rglob("*.py")) if "__pycache__" not in p.parts
           and ".venv" not in p.parts and p.resolve() not in {(root / s).resolve() for s in SKIP}]
    out += sorted((root / "notebooks").glob("*.ipynb"))
    out += [root / f for f in TEXT_FILES if (root / f).is_file()]
    out += [p for g in TEXT_GLOBS for p in sorted(root.glob(g))]
    return out


def rewrite_all(root: Path, moved_now: dict[Path, str], dry: bool) -> tuple[list[Path], dict[str, list[str]]]:
    face = _face_names(root)
    changed: list[Path] = []
    notes: dict[str, list[str]] = {}
    moved_now = {p.resolve(): m for p, m in moved_now.items()}
    for f in files_to_rewrite(root):
        text = f.read_text(encoding="utf-8")
        rel = f.relative_to(root)
        if f.suffix == ".py":
            here_old = here_new = None
            is_init = f.name == "__init__.py"
            if rel.parts[0] == PKG:
                mod = ".".join(rel.with_suffix("").parts)
                here_new = mod[: -len(".__init__")] if is_init else mod
                here_old = moved_now.get(f.resolve(), here_new)
            new, n = rewrite_python(text, face, here_old, here_new, is_init, f.resolve() in moved_now)
        elif f.suffix == ".ipynb":
            new, n = rewrite_notebook(text, face)
        else:
            new, n = rewrite_text(text, face), []
        if n:
            notes[str(rel)] = n
        if new != text:
            changed.append(f)
            if not dry:
                f.write_text(new, encoding="utf-8")
    return changed, notes


def leftovers(root: Path) -> dict[str, int]:
    """Old dotted paths still written in files the script does not rewrite (README, CHANGELOG)."""
    out = {}
    for name in REPORT_ONLY:
        p = root / name
        if p.is_file():
            n = sum(1 for m in _DOTTED.finditer(p.read_text(encoding="utf-8")) if m.group(1) in MAPPING)
            if n:
                out[name] = n
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="report what would move; change nothing")
    ap.add_argument("--no-ruff", action="store_true", help="do not re-sort imports with ruff afterwards")
    ap.add_argument("--root", default=".", help="repository root (default: here)")
    args = ap.parse_args(argv)
    root = Path(args.root).resolve()
    if not (root / PKG / "__init__.py").is_file():
        raise SystemExit(f"{root} is not the repository root (no {PKG}/__init__.py)")
    _check_table()
    import os

    os.chdir(root)
    moved_now, rep = move_modules(root, args.dry_run)
    changed, notes = ([], {}) if args.dry_run else rewrite_all(root, moved_now, False)
    py = [str(p.relative_to(root)) for p in changed if p.suffix == ".py"]
    if py and not args.no_ruff:
        ruff = root / ".venv" / "bin" / "ruff"
        subprocess.run([str(ruff) if ruff.exists() else "ruff", "check", "--fix", "--select", "I", "-q", *py],
                       check=False)
    print(f"moved now: {len(rep['moved'])}")
    for line in rep["moved"]:
        print(f"  {line}")
    print(f"already in place: {len(rep['already'])}  {' '.join(rep['already'])}")
    print(f"in the table but not in this tree (skipped): {' '.join(rep['absent']) or '-'}")
    print(f"not in the table, left at the top of {PKG}/ (add them to MAPPING): {' '.join(rep['unknown']) or '-'}")
    print(f"files rewritten: {len(changed)}")
    for p in changed:
        print(f"  {p.relative_to(root)}")
    for f, n in notes.items():
        for x in n:
            print(f"NOTE {f}: {x}")
    for f, n in leftovers(root).items():
        print(f"NOTE {f}: {n} old module path(s) left (not rewritten by this script)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
