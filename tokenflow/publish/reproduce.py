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

One run per folder: :func:`project_lock` (``_build/.reproduce.lock``) refuses a second run
in the same folder before it touches anything, naming the process that holds the lock.  A
notebook whose kernel dies (a crash, ``os._exit``, a signal, out of memory) is a failed
notebook, reported within seconds, like a failing cell.

``reproduce --root CLONE`` refuses to run when the ``tokenflow`` this command imports is
not ``CLONE/tokenflow``: the notebooks would run, and the content keys be computed, against
other code.  The notebooks' kernel gets the root first on ``PYTHONPATH``.

Executed notebooks carry no machine path: papermill is given a *relative* ``output_dir``
(notebooks run with ``book/generated`` as working directory) and the injected-parameters
cell is tagged ``remove-cell``, so the page shows only the notebook's own ``parameters``
cell.  Parameters passed at run time are listed in the timing table's key file instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from importlib import metadata
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
OUT = Path("book") / "generated"
STAGING = Path("_build") / ".generated.staging"  # notebooks execute here; same depth as OUT
OLD = Path("_build") / ".generated.old"  # the previous OUT during the swap (removed after)
FAILED = Path("_build") / "failed"  # executed copies of notebooks that failed (never in the book)
RESULTS = "results"  # relative to OUT, the notebooks' working directory
STATE = ".reproduce.json"
FACTS = "build_facts.md"  # included by book/artifact.md: this build's machine and notebook times
BOOK_STAMP = ".tokenflow-book.sha256"
LOCK = Path("_build") / ".reproduce.lock"  # held by the run working in this folder (its pid inside)
# packages whose version changes results or pages: part of every content key
STACK = ("linopy", "highspy", "numpy", "scipy", "pandas", "xarray", "matplotlib", "cartopy", "papermill",
         "jupyter-book", "myst-nb", "sphinx-mathjax-offline", "simpy", "distributed")


# Quiet console: kernels log only CRITICAL (not ipykernel's TCP-transport warning once per
# notebook) and the notebook runner's third-party deprecation chatter is not printed; the
# notebooks' own warnings still reach their outputs, where the book check fails on them.
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]  # cell errors still fail the notebook
QUIET_MODULES = ("jupyter_client", "jupyter_core", "nbclient", "nbformat", "papermill", "zmq", "traitlets")


def _quiet() -> None:
    import warnings

    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's path-migration warning
    for mod in QUIET_MODULES:
        warnings.filterwarnings("ignore", module=rf"{mod}(\.|$)")


def _sha256_files(h: hashlib._Hash, files: list[Path], base: Path) -> None:
    for f in sorted(files):
        h.update(f.relative_to(base).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())


def package_fingerprint() -> str:
    """SHA-256 of the package source and data (``tokenflow/**``, caches excluded) and of the
    installed versions in :data:`STACK`."""
    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    _sha256_files(h, [p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                      and p.suffix not in {".pyc", ".pyo"}], pkg)
    for name in STACK:
        try:
            h.update(f"{name}=={metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name} missing\n".encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def notebook_key(src: Path, params: dict, package: str) -> str:
    """Content key of one notebook run: notebook bytes + parameters + package fingerprint."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(src.read_bytes()).digest())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(package.encode())
    return h.hexdigest()


def _load_state(out: Path) -> dict:
    try:
        return json.loads((out / STATE).read_text())
    except (OSError, ValueError):
        return {}


def _save_state(out: Path, state: dict) -> None:
    tmp = out / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(out / STATE)


def _swap_in(new: Path, target: Path, old: Path) -> None:
    """Replace folder ``target`` by ``new`` (two renames on one file system; ``old`` holds the
    previous ``target`` between them and is removed after)."""
    shutil.rmtree(old, ignore_errors=True)
    old.parent.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _recover(target: Path, old: Path) -> None:
    """Undo a swap that was cut between its two renames (``target`` gone, ``old`` present)."""
    if not target.exists() and old.exists():
        os.replace(old, target)
    else:
        shutil.rmtree(old, ignore_errors=True)


def _is_temporary(p: Path) -> bool:
    """A temporary file of a run (``.NAME.running.ipynb``, ``.*.tmp``): never part of the book."""
    return p.name.startswith(".") and (p.name.endswith(".running.ipynb") or p.name.endswith(".tmp"))


def _prepare_stage(out: Path, stage: Path) -> None:
    """The staging folder: the leftover of a failed or interrupted run (resumed: its state
    file says which notebooks it executed), else a copy of the current ``book/generated``."""
    if stage.is_dir():
        for p in list(stage.rglob(".*")):
            if p.is_file() and _is_temporary(p):
                p.unlink()
        return
    tmp = stage.with_name(stage.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if out.is_dir():
        shutil.copytree(out, tmp, symlinks=True,
                        ignore=lambda d, names: [n for n in names if _is_temporary(Path(d) / n)])
    else:
        tmp.mkdir()
    os.replace(tmp, stage)


_HELD: dict[tuple, list] = {}  # (lock path, thread) -> [open file, depth] of the locks this process holds


@contextlib.contextmanager
def project_lock(root: Path):
    """Hold the folder's reproduce lock (``_build/.reproduce.lock``) while the body runs.

    One run per project folder: a second run (another process) is refused at once with a
    :class:`~tokenflow.core.errors.TokenflowError` naming the lock and the process that holds it,
    before it touches ``book/generated`` or ``_build``.  The lock is an OS lock on the open
    file (``flock``), so it ends with its process however that process ends: the file a dead
    run leaves (with its pid) is taken over by the next run.  Re-entrant within one thread
    (:func:`reproduce` holds it around :func:`run_notebooks` and :func:`build_book`); another
    thread of the same process is refused like another process.
    """
    from ..core.errors import TokenflowError

    path = Path(root).resolve() / LOCK
    me = (str(path), threading.get_ident())
    held = _HELD.get(me)
    if held is not None:
        held[1] += 1
        try:
            yield path
        finally:
            held[1] -= 1
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock (one run at a time is then up to the user)
        fcntl = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # _build a file, the lock a folder, no permission
        raise TokenflowError(f"cannot take the reproduce lock {path}: {exc.strerror or exc}; nothing was "
                             "changed by this run") from None
    f = os.fdopen(fd, "r+")
    try:
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read(64).strip()
                who = f"process {holder}" if holder.isdigit() else "another process"
                if holder.isdigit() and not _alive(int(holder)):  # its notebook runner outlives it
                    who = (f"a notebook runner of process {holder}, which has ended; the runner stops after "
                           "its current notebook")
                raise TokenflowError(
                    f"another tokenflow reproduce is running in {Path(root).resolve()} ({who} holds the lock "
                    f"{path}); wait for it to finish or stop it. Nothing was changed by this run") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
    except BaseException:
        f.close()
        raise
    _HELD[me] = [f, 1]
    try:
        yield path
    finally:
        del _HELD[me]
        try:
            f.seek(0)
            f.truncate()  # (the file stays: removing it could let two runs lock two different files)
        except OSError:
            pass
        f.close()  # releases the lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _lock_fds(root: Path) -> tuple[int, ...]:
    """The open lock file of ``root`` held by this process (any thread), for the children of
    the run: a runner whose parent was killed keeps the folder locked until it has stopped,
    so a new run never shares the staging folder with it."""
    path = str(Path(root).resolve() / LOCK)
    return tuple(f.fileno() for (p, _), (f, _n) in list(_HELD.items()) if p == path)[:1]


def _tree_digest(pkg: Path) -> str:
    """SHA-256 over a package folder's files (caches excluded)."""
    h = hashlib.sha256()
    _sha256_files(h, [p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                      and p.suffix not in {".pyc", ".pyo"}], pkg)
    return h.hexdigest()


def check_package(root: Path) -> None:
    """Refuse when ``root`` holds a ``tokenflow`` package other than the one running (the same
    folder, or a copy with identical files, e.g. a non-editable install of ``root``)."""
    from ..core.errors import TokenflowError

    here = Path(__file__).resolve().parents[1]
    theirs = Path(root).resolve() / "tokenflow"
    if (theirs / "__init__.py").is_file() and theirs.resolve() != here \
            and _tree_digest(theirs) != _tree_digest(here):
        raise TokenflowError(
            f"reproduce --root {root}: that folder's package is {theirs}, but this command imports tokenflow "
            f"from {here}; the notebooks would run against other code. Run the folder's own package: "
            f"PYTHONPATH={Path(root).resolve()} tokenflow reproduce --root {Path(root).resolve()}")


# the child that executes notebooks (papermill in its own process and session).  One child per
# job slot lives for the whole run and keeps one kernel warm: the stack (numpy, pandas, xarray,
# matplotlib, linopy, tokenflow, ...) is imported once per slot, not once per notebook.  Before
# each later notebook the kernel is put back to the state of a new kernel (see _WARM, _RESET);
# ``fresh=True`` starts a new kernel for every notebook instead.
_RUNNER = r"""
import json, os, queue, sys, time
proto = os.fdopen(os.dup(1), "w", buffering=1)  # answers go here; everything else to the log
os.dup2(2, 1)
sys.stdout = sys.stderr
cwd, kernel_args, fresh, warm_code, reset_code = (sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1",
                                                  sys.argv[4], sys.argv[5])
import papermill as pm
from jupyter_core.utils import run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from papermill.log import logger

KM = None
DIED = ("the notebook's kernel died (its process ended during a cell: a crash, os._exit, a signal or "
        "running out of memory)")


class DeadKernel(RuntimeError):
    pass


class _Client(PapermillNotebookClient):
    async def async_start_new_kernel_client(self):
        # an asynchronous client: a blocking one waits for output inside the event loop
        # (get_msg(timeout=None)), so nbclient's check for a dead kernel never runs (a hang)
        from jupyter_client.asynchronous import AsyncKernelClient

        factory, self.km.client_factory = self.km.client_factory, AsyncKernelClient
        try:
            return await super().async_start_new_kernel_client()
        finally:
            self.km.client_factory = factory

    start_new_kernel_client = run_sync(async_start_new_kernel_client)  # (papermill calls this one)

    def execute(self, **kw):
        try:
            return super().execute(**kw)
        finally:  # the kernel stays (it is not ours to stop); its client's channels do not
            if getattr(self, "kc", None) is not None:
                self.kc.stop_channels()
                self.kc = None


class WarmEngine(NBClientEngine):
    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                 start_timeout=60, execution_timeout=None, **kwargs):
        # papermill writes (and validates) the whole notebook before and after every cell, for
        # watching a long run; ours goes to a temporary file that only the finished run keeps,
        # so it is written once, when the notebook completes or fails
        save, nb_man.save = nb_man.save, lambda **kw: None
        try:
            return _Client(nb_man, km=KM, kernel_name=kernel_name, log=logger, log_output=log_output,
                           stdout_file=stdout_file, stderr_file=stderr_file, startup_timeout=start_timeout,
                           timeout=execution_timeout).execute()
        finally:
            nb_man.save = save


papermill_engines.register("tokenflow-warm", WarmEngine)


def run_code(code):
    kc = KM.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        msg_id = kc.execute(code, store_history=False)
        deadline = time.monotonic() + 600
        while True:  # (not execute_interactive: it would wait its whole timeout on a dead kernel)
            try:
                reply = kc.get_shell_msg(timeout=1)
            except queue.Empty:
                if not KM.is_alive():
                    raise DeadKernel("the kernel died while it was being prepared") from None
                if time.monotonic() > deadline:
                    raise TimeoutError("kernel preparation took more than 600 s") from None
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                break
    finally:
        kc.stop_channels()
    c = reply["content"]
    if c.get("status") != "ok":
        raise RuntimeError(f"kernel preparation failed: {c.get('ename')}: {c.get('evalue')}")


def start():
    global KM
    from jupyter_client.manager import KernelManager
    KM = KernelManager(kernel_name="python3")
    KM.start_kernel(cwd=cwd, extra_arguments=kernel_args)
    run_code(warm_code)


used = False
for line in sys.stdin:
    req = json.loads(line)
    try:
        try:
            if fresh:
                pm.execute_notebook(req["src"], req["dst"], parameters=req["params"], kernel_name="python3", cwd=cwd,
                                    progress_bar=False, log_output=False, extra_arguments=kernel_args)
            else:
                if KM is None or not KM.is_alive():
                    start()
                elif used:
                    run_code(reset_code)
                used = True
                pm.execute_notebook(req["src"], req["dst"], parameters=req["params"], kernel_name="python3", cwd=cwd,
                                    progress_bar=False, log_output=False, engine_name="tokenflow-warm")
            out = {"ok": True}
        except PapermillExecutionError as exc:
            out = {"ok": False, "cell": exc.exec_count, "ename": exc.ename, "evalue": str(exc.evalue)}
    except Exception as exc:
        out = {"ok": False, "ename": type(exc).__name__, "evalue": str(exc)}
        if type(exc).__name__ in ("DeadKernelError", "DeadKernel"):
            out["evalue"] = DIED if type(exc).__name__ == "DeadKernelError" else str(exc)
    proto.write(json.dumps(out) + "\n")
if KM is not None:
    KM.shutdown_kernel(now=False)  # (the kernel stops its sweep workers on its way out)
"""

# run once in a new kernel of a slot, before its first notebook: a snapshot of what _RESET
# restores (standard library only: the stack is imported by the slot's first notebook, as in a
# new kernel, and stays imported for the next ones)
_WARM = r"""
import os as _os, sys as _sys, types as _types, warnings as _warnings
_sys.modules["_tokenflow_fresh_state"] = _types.SimpleNamespace(
    filters=list(_warnings.filters), environ=dict(_os.environ), path=list(_sys.path), cwd=_os.getcwd(),
    main={k: v for k, v in vars(_sys.modules["__main__"]).items() if k.startswith("__") and k.endswith("__")})
del _os, _sys, _types, _warnings
"""

# between two notebooks of a slot: an empty namespace, no figures, and the settings, caches and
# live solver state of a kernel that has only run _WARM
_RESET = r"""
def _tokenflow_reset():
    import os, sys, warnings
    st, mods = sys.modules["_tokenflow_fresh_state"], sys.modules
    get_ipython().run_line_magic("reset", "-f")
    main = vars(mods["__main__"])  # %reset also drops __spec__ & co. (multiprocessing's spawn reads them)
    for k, v in st.main.items():
        main.setdefault(k, v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "matplotlib.pyplot" in mods:
            mods["matplotlib.pyplot"].close("all")
        if "matplotlib" in mods:
            mods["matplotlib"].rc_file_defaults()  # the settings matplotlib read when it was imported
        if "pandas" in mods:
            mods["pandas"].reset_option("all")
    if "numpy" in mods:  # numpy's defaults
        np = mods["numpy"]
        np.set_printoptions(edgeitems=3, infstr="inf", linewidth=75, nanstr="nan", precision=8, suppress=False,
                            threshold=1000, formatter=None, sign="-", floatmode="maxprec", legacy=False)
        np.seterr(all="warn", under="ignore")
    warnings.filters[:] = st.filters
    if hasattr(warnings, "_filters_mutated"):
        warnings._filters_mutated()
    os.environ.clear()
    os.environ.update(st.environ)
    sys.path[:] = st.path
    os.chdir(st.cwd)
    # tokenflow.publish.book installs the house style and table formatters when it is imported: the
    # next notebook's import does it again, after its own %matplotlib inline, as in a new kernel
    mods.pop("tokenflow.publish.book", None)
    if "tokenflow.clearing.engine" in mods:  # no live market, graph or memo from the previous notebook
        mods["tokenflow.clearing.engine"]._POOL.clear()
        mods["tokenflow.clearing.engine"]._STRUCTURES.clear()
    if "tokenflow.lp.routes" in mods:
        mods["tokenflow.lp.routes"]._GRAPHS.clear()
    if "tokenflow.lp.solver" in mods:
        mods["tokenflow.lp.solver"]._BANNER_SHOWN = False
    if "tokenflow.studies.sweep_pool" in mods:  # no sweep workers (and their live markets) from the previous notebook
        mods["tokenflow.studies.sweep_pool"].close_local_pools()


_tokenflow_reset()  # (its own %reset also removes this function from the namespace)
"""


_LIVE: set = set()  # notebook children running now (stopped together on Ctrl-C with --jobs > 1)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a notebook child and its kernel (its own process group): TERM, then KILL."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=5.0)
            break
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


class _Runner:
    """One job slot's child process (:data:`_RUNNER`): it executes the notebooks sent to it one
    at a time, in one warm kernel (or a new kernel each, ``fresh``), and answers each with its
    outcome.  It has its own session: Ctrl-C reaches only the parent, which stops the child
    and its kernel (:func:`_stop`)."""

    def __init__(self, cwd: Path, root: Path, fresh: bool):
        import tempfile

        env = dict(os.environ)
        if (root / "tokenflow" / "__init__.py").is_file():
            env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
        self.key = (str(cwd), str(root), fresh)
        self.logf = tempfile.TemporaryFile(prefix="tokenflow-nb-")
        self.proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(cwd), json.dumps(KERNEL_ARGS),
                                      "1" if fresh else "0", _WARM, _RESET], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.logf, env=env, start_new_session=True,
                                     text=True, bufsize=1, pass_fds=_lock_fds(root))
        _LIVE.add(self.proc)

    def run(self, src: Path, dst: Path, params: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps({"src": str(src), "dst": str(dst), "params": params}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BaseException:
            self.close(kill=True)
            raise
        if line:
            return json.loads(line)
        self.proc.wait()
        self.logf.seek(0)
        tail = " ".join(self.logf.read().decode(errors="replace").strip().splitlines()[-3:])
        self.close(kill=True)
        return {"ok": False, "ename": "ChildFailed", "evalue": f"exit status {self.proc.returncode}: {tail}"}

    def close(self, kill: bool = False) -> None:
        """Let the child stop its kernel and exit (``kill``: stop both at once)."""
        if kill or self.proc.poll() is not None:
            _stop(self.proc)
        else:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                _stop(self.proc)
        _LIVE.discard(self.proc)
        self.logf.close()


_SLOTS = threading.local()  # each worker thread of run_notebooks keeps its own runner
_RUNNERS: list[_Runner] = []
_FRESH = False  # run_notebooks(fresh=...) for the worker threads


def _execute(src: Path, dst: Path, params: dict, cwd: Path, root: Path) -> dict:
    """Run ``src`` with papermill writing ``dst`` in this thread's runner (started on first
    use); the outcome (``ok``; else ``cell``, ``ename``, ``evalue``).  A runner whose notebook
    failed is not used again (its kernel may hold the failed notebook's state)."""
    r = getattr(_SLOTS, "runner", None)
    if r is None or r.key != (str(cwd), str(root), _FRESH) or r.proc.poll() is not None:
        r = _SLOTS.runner = _Runner(cwd, root, _FRESH)
        _RUNNERS.append(r)
    out = r.run(src, dst, params)
    if not out.get("ok"):
        r.close(kill=True)
        _SLOTS.runner = None
    return out


def _close_runners(kill: bool = False) -> None:
    while _RUNNERS:
        r = _RUNNERS.pop()
        if r.proc.poll() is None or not r.logf.closed:
            r.close(kill=kill)


def _clean_executed(path: Path, name: str) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` (the book does not show it) and
    replace the absolute paths papermill records in the notebook metadata by repository paths."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    # a warm kernel counts on from its previous notebook: number the cells as a new kernel would
    n = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            n += 1
            cell.execution_count = n
            for o in cell.get("outputs", []):
                if o.get("output_type") == "execute_result":
                    o["execution_count"] = n
    pm_meta = nb.metadata.get("papermill", {})
    if "input_path" in pm_meta:
        pm_meta["input_path"] = f"notebooks/{name}.ipynb"
    if "output_path" in pm_meta:
        pm_meta["output_path"] = (OUT / f"{name}.ipynb").as_posix()
    nbformat.write(nb, path)


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
    from the state of a kernel that has just imported the stack (:data:`_RESET`: an empty
    namespace, matplotlib, pandas, numpy and warnings settings, environment, working folder
    and tokenflow's live solver state as they were; ``tokenflow.publish.book`` imported afresh);
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
    global _FRESH
    _FRESH = bool(fresh)
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
