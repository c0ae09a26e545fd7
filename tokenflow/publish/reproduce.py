"""The main job: execute every notebook with papermill into ``book/generated``, then build
the book from the executed copies (no second execution), with Sphinx warnings as errors.

Rebuilds are incremental.  A notebook is re-executed only when its *content key* changed:
a SHA-256 over the notebook file, its parameters, the package source and data
(``tokenflow/**``) and the versions of the tokenflow stack.  The keys of the last run are
kept in ``book/generated/.reproduce.json``; ``force=True`` ignores them.  The book build is
skipped the same way when no page, notebook or configuration file changed.

Transactional: a run never damages the last good book.  Notebooks execute into a staging
copy of ``book/generated`` (``_build/.generated.staging``; the copy of a previous failed or
interrupted run is resumed) that replaces ``book/generated`` only when every notebook of
the run succeeded (a failing notebook's executed copy goes to ``_build/failed/``; the
staged copy stays the last good one); the book is built into ``_build/.staging-<builder>`` and replaces
``_build/<builder>`` only when the whole build succeeded.  A failed or interrupted run
leaves both as they were and says so.  Each notebook runs in a child process (papermill)
in its own session, so Ctrl-C stops the run with one line, no kernel tracebacks; the
temporary ``.NAME.running.ipynb`` never reaches ``book/generated``.

One run per folder (:func:`~tokenflow.publish.build_state.project_lock`); a notebook whose
kernel dies is a failed notebook, like a failing cell.  ``reproduce --root CLONE`` refuses to
run another folder's package (:func:`~tokenflow.publish.build_state.check_package`).  The
notebooks' kernel gets the root first on ``PYTHONPATH``.

Executed notebooks carry no machine path: papermill is given a *relative* ``output_dir``
(notebooks run with ``book/generated`` as working directory) and the injected-parameters
cell is tagged ``remove-cell``, so the page shows only the notebook's own ``parameters``
cell.  Parameters passed at run time are listed in the timing table's key file instead.

This module holds the notebook list, the run (:func:`run_notebooks`), the build facts, the
book build (:func:`build_book`) and :func:`reproduce`.  The content keys, the run state, the
staging folder and its swap, the folder lock and the package check are in
:mod:`tokenflow.publish.build_state`; the child processes that execute the notebooks in warm
kernels are in :mod:`tokenflow.publish.notebook_runner`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import notebook_runner as _runner
from .build_state import (
    OLD,
    OUT,
    STAGING,
    _load_state,
    _prepare_stage,
    _recover,
    _save_state,
    _sha256_files,
    _swap_in,
    check_package,
    notebook_key,
    package_fingerprint,
    project_lock,
)
from .notebook_runner import _LIVE, _clean_executed, _close_runners, _execute, _quiet, _stop

# notebook -> parameters for the full run and for --fast (tests, CI smoke)
NOTEBOOKS: dict[str, tuple[dict, dict]] = {
    "data_provenance": ({}, {}),
    "us5_market": ({}, {}),
    "us5_demand_growth": ({"n_points": 41, "n_range": 8}, {"n_points": 6, "n_range": 2}),
    "transfer_vs_token": ({}, {}),
    "latency": ({"n_limits": 39}, {"n_limits": 5}),
    "us20_scaleup": ({"n_points": 25}, {"n_points": 5}),
    "formulations_settlement": ({"n_points": 25}, {"n_points": 5}),
    "robustness": ({"n_draws": 2000}, {"n_draws": 12}),
    "planner": ({}, {"n_sweep": 3}),
    "choices": ({}, {}),
    "referees": ({}, {"sim_requests": 400, "sim_rhos": [0.5, 0.9], "n_scales": 2, "us20_check": False,
                          "fixed_point_tol": 1e-2, "search_rel_tol": 0.05}),
    "scorecard": ({}, {}),
    "identifiability": ({}, {"choices": {"payload_direction": ["request"], "capacity_measure": ["as_published"]},
                             "ks": [3], "grid_points": 5}),
    "results": ({}, {}),  # last: reads the robustness draws of this build
}
# notebooks that read what the others of the same run wrote: with --jobs they start last
RUN_LAST = frozenset({"results"})
FAILED = Path("_build") / "failed"  # executed copies of notebooks that failed (never in the book)
RESULTS = "results"  # relative to OUT, the notebooks' working directory
FACTS = "build_facts.md"  # included by book/artifact.md: this build's machine and notebook times
BOOK_STAMP = ".tokenflow-book.sha256"


def default_jobs() -> int:
    """Notebooks run at once by default: one per core."""
    return max(1, os.cpu_count() or 1)


def run_notebooks(root: Path, fast: bool = False, names: list[str] | None = None,
                  force: bool = False, jobs: int | None = None, fresh: bool = False) -> dict[str, float]:
    """Execute notebooks into ``book/generated``; return seconds per notebook (in the order
    of ``names``: the timing table's order, whatever order they finished in).

    ``jobs`` notebooks run at once (default :func:`default_jobs`, one per core), the longest
    (by their last execution) first.  Each job slot
    is a child process with one warm kernel that runs its notebooks one after the other, each
    from the state of a kernel that has just imported the stack
    (:data:`~tokenflow.publish.notebook_runner._RESET`: an empty namespace, matplotlib, pandas,
    numpy and warnings settings, environment, working folder and tokenflow's live solver state
    as they were; ``tokenflow.publish.book`` imported afresh);
    ``fresh=True`` starts a new kernel for every notebook instead (slower).  A notebook of
    :data:`RUN_LAST` starts only when every other
    notebook of the run has finished.  After a failure no new notebook starts; those already
    running finish and are kept in the staging copy (the next run resumes them).

    Notebooks whose content key is unchanged since the last run (and whose executed copy
    exists) are reused, not executed; :func:`last_status` tells which.  A failing cell raises
    :class:`~tokenflow.core.errors.TokenflowError` naming the notebook and cell; Ctrl-C raises
    :class:`KeyboardInterrupt` whose message says what was kept.  Either way ``book/generated``
    is left as it was (see the module docstring: the run is staged and swapped in whole).
    """
    root = Path(root).resolve()
    names, jobs = _check_run(root, names, jobs)  # (bad arguments: refused before the lock creates _build/)
    with project_lock(root):
        return _run_notebooks(root, fast, names, force, jobs, fresh)


def _check_run(root: Path, names: list[str] | str | None, jobs: int | None) -> tuple[list[str], int]:
    """The notebooks to run (each once, in the order given; all when ``names`` is empty) and
    the number of jobs; :class:`~tokenflow.core.errors.TokenflowError` for an unknown or missing
    notebook, a bad ``jobs`` or another folder's package."""
    from ..core.errors import TokenflowError

    if isinstance(names, str):
        names = [names]
    if names is not None and (not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names)):
        raise TokenflowError(f"notebook names must be a list of names (without .ipynb), got {names!r:.80}")
    names = list(dict.fromkeys(names or NOTEBOOKS))  # a name given twice runs once
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise TokenflowError(f"unknown notebook(s) {', '.join(unknown)}; known: {', '.join(NOTEBOOKS)}")
    for name in names:
        if not (root / "notebooks" / f"{name}.ipynb").is_file():
            raise TokenflowError(f"notebook {root / 'notebooks' / (name + '.ipynb')} not found")
    if jobs is None:
        jobs = default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise TokenflowError(f"jobs must be a whole number >= 1, got {jobs!r}")
    check_package(root)
    return names, jobs


def _run_notebooks(root: Path, fast: bool, names: list[str], force: bool, jobs: int,
                   fresh: bool) -> dict[str, float]:
    from ..core.errors import TokenflowError

    _quiet()
    _runner._FRESH = bool(fresh)  # (read by _execute in the worker threads)
    out, stage = root / OUT, root / STAGING
    _recover(out, root / OLD)
    _prepare_stage(out, stage)
    (stage / RESULTS).mkdir(parents=True, exist_ok=True)
    state = _load_state(stage)
    package = package_fingerprint()
    times: dict[str, float] = {}
    _STATUS.clear()
    kept = "the previous book/generated is unchanged" if out.is_dir() else "book/generated was not created"
    todo: list[tuple[int, str, dict, Path, Path, str]] = []

    def key_of(name: str) -> str:
        full, quick = NOTEBOOKS[name]
        params = {**(quick if fast else full), "output_dir": RESULTS}
        return notebook_key(root / "notebooks" / f"{name}.ipynb", params, package)

    # a RUN_LAST notebook reads what the others wrote: its key includes theirs, so it runs again
    # whenever one of them changes (the results page read a stale robustness_mc.nc)
    upstream = hashlib.sha256("".join(key_of(n) for n in sorted(NOTEBOOKS) if n not in RUN_LAST
                                      and (root / "notebooks" / f"{n}.ipynb").is_file()).encode()).hexdigest()
    for i, name in enumerate(names, 1):
        full, quick = NOTEBOOKS[name]
        params = {**(quick if fast else full), "output_dir": RESULTS}
        src, dst = root / "notebooks" / f"{name}.ipynb", stage / f"{name}.ipynb"
        key = notebook_key(src, params, package)
        if name in RUN_LAST:
            key = hashlib.sha256((key + upstream).encode()).hexdigest()
        if not force and dst.is_file() and state.get(name, {}).get("key") == key:
            times[name] = 0.0
            _STATUS[name] = "reused"
            print(f"[{i}/{len(names)}] {name} ... reused (unchanged)", flush=True)
            continue
        todo.append((i, name, params, src, dst, key))
    # notebooks of RUN_LAST wait for all others; the rest start ``jobs`` at a time, the longest
    # first (seconds of their last execution: the slots then finish close together), new ones first
    last = {name: float(st.get("seconds", 0.0)) for name, st in state.items() if isinstance(st, dict)}
    todo.sort(key=lambda job: (job[1] in RUN_LAST, -last.get(job[1], float("inf"))))
    failure: TokenflowError | None = None
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="notebook")
    running: dict = {}
    try:
        while (todo and failure is None) or running:
            while todo and failure is None and len(running) < jobs \
                    and not (todo[0][1] in RUN_LAST and running):
                i, name, params, src, dst, key = todo.pop(0)
                tmp = stage / f".{name}.running.ipynb"
                print(f"[{i}/{len(names)}] {name} ...", end=" " if jobs == 1 else " started\n", flush=True)
                fut = pool.submit(_execute, src, tmp, params, stage, root)
                running[fut] = (i, name, params, dst, key, tmp, time.perf_counter())
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                i, name, params, dst, key, tmp, t0 = running[fut]
                outcome = fut.result()  # KeyboardInterrupt raised in the worker surfaces here
                del running[fut]
                seconds = time.perf_counter() - t0
                label = "" if jobs == 1 else f"[{i}/{len(names)}] {name}: "
                if not outcome.get("ok"):
                    print(f"{label}FAILED", flush=True)
                    state.pop(name, None)
                    _save_state(stage, state)
                    where = f" in cell {outcome['cell']}" if outcome.get("cell") is not None else ""
                    if tmp.is_file():
                        failed = root / FAILED / f"{name}.ipynb"
                        failed.parent.mkdir(parents=True, exist_ok=True)
                        tmp.replace(failed)  # for reading, never part of the book
                        seen = f"executed copy with the error: {failed}"
                    else:
                        seen = "no executed copy"
                    failure = failure or TokenflowError(
                        f"notebook {name}.ipynb failed{where}: {outcome.get('ename')}: "
                        f"{outcome.get('evalue')} ({seen}); {kept}")
                    continue
                _clean_executed(tmp, name)
                tmp.replace(dst)  # the executed copy appears whole or not at all
                times[name] = seconds
                _STATUS[name] = "executed"
                state[name] = {"key": key, "parameters": params, "seconds": round(seconds, 2)}
                _save_state(stage, state)
                print(f"{label}{seconds:.1f} s", flush=True)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (the CLI's _Terminated)
        print("interrupted", flush=True)
        for proc in list(_LIVE):
            _stop(proc)
        pool.shutdown(wait=True, cancel_futures=True)
        _close_runners(kill=True)
        for *_, tmp, _t0 in running.values():
            tmp.unlink(missing_ok=True)
        raise type(exc)(f"{kept}; _build/ is unchanged") from None
    except BaseException:  # an unexpected error of this process: stop the children, keep the folders
        for proc in list(_LIVE):
            _stop(proc)
        pool.shutdown(wait=True, cancel_futures=True)
        _close_runners(kill=True)
        raise
    pool.shutdown(wait=True)
    _close_runners()
    if failure is not None:
        raise failure
    times = {n: times[n] for n in names if n in times}
    _swap_in(stage, out, root / OLD)  # every notebook of the run succeeded
    return times


_STATUS: dict[str, str] = {}


def machine_facts() -> dict[str, str]:
    """Cores, memory, CPU model, OS and Python of this machine (for the artifact page)."""
    import platform

    facts = {"cores": str(os.cpu_count() or "?"), "python": platform.python_version(),
             "system": f"{platform.system()} {platform.machine()}"}
    try:
        info = Path("/proc/cpuinfo").read_text()
        facts["cpu"] = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                            if line.startswith("model name"))
    except (OSError, StopIteration):
        facts["cpu"] = platform.processor() or "unknown"
    try:
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
        facts["memory"] = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        facts["memory"] = "unknown"
    return facts


def write_build_facts(root: Path) -> Path:
    """``book/generated/build_facts.md``: the machine and the seconds each notebook took when it
    was last executed (from the run state).  Rewritten only when its text changes, so an
    unchanged rebuild leaves the book's content key alone."""
    out = Path(root) / OUT
    state = _load_state(out)
    f = machine_facts()
    from .._version import __version__

    lines = [f"Measured by `tokenflow reproduce` on the machine that built this copy (tokenflow {__version__}): "
             f"{f['cores']} cores ({f['cpu']}), {f['memory']} memory, {f['system']}, Python {f['python']}.",
             "", "| notebook | parameters | seconds (last execution) |", "|---|---|---:|"]
    total = 0.0
    for name in NOTEBOOKS:
        st = state.get(name)
        if not st:
            continue
        params = ", ".join(f"{k}={v}" for k, v in st["parameters"].items() if k != "output_dir") or "defaults"
        lines.append(f"| {name} | {params} | {st['seconds']:.1f} |")
        total += st["seconds"]
    lines.append(f"| **all notebooks** | | **{total:.1f}** |")
    text = "\n".join(lines) + "\n"
    path = out / FACTS
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(f".{FACTS}.tmp")
        tmp.write_text(text)
        tmp.replace(path)  # whole or not at all
    return path


def last_status() -> dict[str, str]:
    """``executed`` or ``reused`` for each notebook of the last :func:`run_notebooks` call."""
    return dict(_STATUS)


def book_key(root: Path) -> str:
    """Content key of the book build: configuration, pages, bibliography, executed notebooks
    and result figures, plus the package fingerprint (the theme and extensions' versions)."""
    root = Path(root)
    files = [root / "_config.yml", root / "_toc.yml"]
    files += [p for p in (root / "book").rglob("*") if p.is_file() and not p.name.startswith(".")
              and "_build" not in p.parts]
    h = hashlib.sha256()
    _sha256_files(h, [f for f in files if f.is_file()], root)
    h.update(package_fingerprint().encode())
    return h.hexdigest()


def build_book(root: Path, builder: str = "html", force: bool = False) -> tuple[float, bool]:
    """``jupyter-book build`` of the repository root, warnings as errors.

    Returns (seconds, rebuilt).  The build is skipped when ``_build/<builder>`` holds a build
    of the same :func:`book_key`.  It is made in ``_build/.staging-<builder>`` and replaces
    ``_build/<builder>`` only when it succeeded: a failed or interrupted build leaves the
    previous book (the error says so).
    """
    with project_lock(root):
        return _build_book(Path(root), builder, force)


def _build_book(root: Path, builder: str, force: bool) -> tuple[float, bool]:
    from ..core.errors import TokenflowError

    t0 = time.perf_counter()
    target = root / "_build" / builder
    old = root / "_build" / f".{builder}.old"
    _recover(target, old)
    stamp = target / BOOK_STAMP
    key = book_key(root)
    if not force and stamp.is_file() and stamp.read_text().strip() == key:
        return time.perf_counter() - t0, False
    stage = root / "_build" / f".staging-{builder}"
    shutil.rmtree(stage, ignore_errors=True)
    kept = f"the previous book in {target} is unchanged" if target.is_dir() else f"no book in {target}"
    try:
        proc = subprocess.run([*jupyter_book(), "build", str(root), "--builder", builder, "--path-output",
                               str(stage), "-W", "--keep-going"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        built = stage / "_build" / builder
        if proc.returncode != 0 or not built.is_dir():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise TokenflowError(f"jupyter-book build ({builder}) failed; {kept}:\n{tail}")
        (built / BOOK_STAMP).write_text(key + "\n")
        _swap_in(built, target, old)
    except KeyboardInterrupt as exc:
        raise type(exc)(kept) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return time.perf_counter() - t0, True


def jupyter_book() -> list[str]:
    """The ``jupyter-book`` command of this environment."""
    return [shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))]


def _load() -> str:
    """The 1-minute load average, for the timing table (``?`` where the system has none)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (OSError, AttributeError):
        return "?"


def reproduce(root: Path = Path("."), fast: bool = False, build: bool = True, force: bool = False,
              only: list[str] | None = None, jobs: int | None = None, fresh: bool = False) -> int:
    """Execute notebooks (all, or ``only`` these names; ``jobs`` at once, default one per
    core) and, when the last one has finished, build the book; print timings."""
    from ..core.errors import TokenflowError

    root = Path(root).resolve()
    if not (root / "notebooks").is_dir():
        raise TokenflowError(f"{root} has no notebooks/ folder: run from the repository root or pass --root")
    t0, load0 = time.perf_counter(), _load()
    _check_run(root, only, jobs)  # (bad arguments: refused before the lock creates _build/)
    with project_lock(root):  # one run per folder, from the first notebook to the built book
        times = run_notebooks(root, fast=fast, names=only, force=force, jobs=jobs, fresh=fresh)
        status = last_status()
        write_build_facts(root)
        if build:
            print("building the book ...", end=" ", flush=True)
            times["book build"], rebuilt = build_book(root, force=force)
            status["book build"] = "built" if rebuilt else "reused"
            print(f"{times['book build']:.1f} s" if rebuilt else "reused (unchanged)")
    total = time.perf_counter() - t0
    width = max(len(k) for k in [*times, "total"]) + 2
    print(f"\n  {'step':{width}s} {'status':9s} {'seconds':>8s}")
    for k, v in times.items():
        print(f"  {k:{width}s} {status.get(k, ''):9s} {v:8.1f}")
    print(f"  {'total':{width}s} {'':9s} {total:8.1f}   (1-min load average {load0} at the start, "
          f"{_load()} at the end, {os.cpu_count()} cores)")
    n_reused = sum(1 for k in times if k != "book build" and status.get(k) == "reused")
    print(f"{n_reused} of {len(times) - int(build)} notebook(s) reused")
    if build:
        print(f"\nbook: {root / '_build' / 'html' / 'index.html'}")
    return 0
