"""The build's state on disk for :mod:`tokenflow.publish.reproduce`: content keys, the run
state, the staging folder and its atomic swap, the folder lock and the package check.

* **Content keys**: a notebook's key (:func:`notebook_key`) is a SHA-256 over the notebook
  file, its parameters, the package source and data (``tokenflow/**``) and the versions of the
  tokenflow stack (:func:`package_fingerprint`, :data:`STACK`); the keys of the last run are
  kept in ``book/generated/.reproduce.json`` (:data:`STATE`).
* **Whole or not at all**: notebooks execute into a staging copy of ``book/generated``
  (:func:`_prepare_stage`; the copy of a previous failed or interrupted run is resumed) that
  replaces it by two renames (:func:`_swap_in`; :func:`_recover` undoes a swap cut between them).
* **One run per folder**: :func:`project_lock` (``_build/.reproduce.lock``) refuses a second run
  in the same folder before it touches anything, naming the process that holds the lock.
* ``reproduce --root CLONE`` refuses to run when the ``tokenflow`` this command imports is
  not ``CLONE/tokenflow`` (:func:`check_package`): the notebooks would run, and the content keys
  be computed, against other code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
from importlib import metadata
from pathlib import Path

OUT = Path("book") / "generated"
STAGING = Path("_build") / ".generated.staging"  # notebooks execute here; same depth as OUT
OLD = Path("_build") / ".generated.old"  # the previous OUT during the swap (removed after)
STATE = ".reproduce.json"
LOCK = Path("_build") / ".reproduce.lock"  # held by the run working in this folder (its pid inside)
# packages whose version changes results or pages: part of every content key
STACK = ("linopy", "highspy", "numpy", "scipy", "pandas", "xarray", "matplotlib", "cartopy", "papermill",
         "jupyter-book", "myst-nb", "sphinx-mathjax-offline", "simpy", "distributed")


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
    (:func:`~tokenflow.publish.reproduce.reproduce` holds it around
    :func:`~tokenflow.publish.reproduce.run_notebooks` and
    :func:`~tokenflow.publish.reproduce.build_book`); another thread of the same process is
    refused like another process.
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
