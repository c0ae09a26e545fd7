"""The child processes that execute the notebooks of :mod:`tokenflow.publish.reproduce`
(papermill in a warm kernel), and the cleaning of their executed copies.

One child per job slot (:class:`_Runner`, running the script :data:`_RUNNER`) lives for the
whole run and keeps one kernel warm; before each later notebook the kernel is put back to the
state of a new kernel (:data:`_WARM`, :data:`_RESET`).  Each child has its own session, so
Ctrl-C reaches only the parent, which stops the child and its kernel (:func:`_stop`).  A
notebook whose kernel dies (a crash, ``os._exit``, a signal, out of memory) is a failed
notebook, reported within seconds, like a failing cell.  :func:`_clean_executed` hides the
injected-parameters cell and removes machine paths from an executed copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from .build_state import OUT, _lock_fds

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
    if "tokenflow.clearing.changes" in mods:
        mods["tokenflow.clearing.changes"]._STRUCTURES.clear()
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
