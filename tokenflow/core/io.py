"""Output files appear whole or not at all.

:func:`atomic_write` lets a writer (xarray, linopy, plain text) write a temporary file
in the target's folder, checks it, fsyncs it and renames it over the target with
:func:`os.replace`.  On any failure the temporary file is removed, the target is left
as it was, and an :class:`~tokenflow.core.errors.OutputError` names the file and the real
cause: missing folder, is a directory, disk full or file-size limit, permission.
"""

from __future__ import annotations

import errno
import os
import resource
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import OutputError, TokenflowError


class IncompleteOutput(Exception):
    """Raised by a ``verify`` function: the written file is not complete or not readable."""


_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_PERM = {errno.EACCES, errno.EPERM, errno.EROFS}


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """Check, before any work is done, that ``path`` can be written: its folder exists
    and is writable and ``path`` is not a directory.  Returns the path."""
    if path is None or (isinstance(path, str) and not path.strip()):
        raise OutputError(f"cannot write {what}: no file name given")
    if not isinstance(path, (str, os.PathLike)):
        raise OutputError(f"cannot write {what}: file name must be a path, got {path!r}")
    try:
        return _check_output_path(Path(path), what)
    except OSError as exc:  # e.g. ELOOP, ENAMETOOLONG from stat()
        raise OutputError(f"cannot write {what} {path!s:.200}: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. an embedded NUL byte
        raise OutputError(f"cannot write {what} {path!r:.200}: not a valid file name ({exc})") from None


def _check_output_path(path: Path, what: str) -> Path:
    if "\0" in str(path):
        raise ValueError("embedded NUL byte")
    if path.is_symlink():  # write where the link points, keep the link
        try:
            path = path.resolve(strict=False)
        except (RuntimeError, OSError):  # RuntimeError: Python < 3.13's "Symlink loop"
            raise OutputError(f"cannot write {what} {path}: a symbolic link loop") from None
        if path.is_symlink():  # resolve() gave up inside a loop (Python >= 3.13)
            raise OutputError(f"cannot write {what} {path}: a symbolic link loop")
    folder = path.parent
    if path.exists() and not path.is_dir() and not path.is_file():
        raise OutputError(f"cannot write {what} {path}: not a regular file (a device, pipe or socket)")
    if path.is_dir():
        raise OutputError(f"cannot write {what} {path}: it is a directory")
    if not folder.exists():
        raise OutputError(f"cannot write {what} {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {path}: permission denied on folder {folder}")
    if _virtual(folder):
        raise OutputError(f"cannot write {what} {path}: folder {folder} is on a virtual file system "
                          "(like /proc or /sys), not on a disk")
    if path.exists() and not os.access(path, os.W_OK) and not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write {what} {path}: permission denied")
    return path


def _virtual(folder: Path) -> bool:
    """A kernel file system without storage under /proc or /sys (statvfs reports 0 blocks).
    Other folders with 0 blocks (some FUSE mounts) are written to; a failure there is never
    called "disk full"."""
    try:
        real = folder.resolve()
        return real.parts[:2] in {("/", "proc"), ("/", "sys")} and os.statvfs(real).f_blocks == 0
    except (OSError, RuntimeError):
        return False


def _cause(exc: BaseException, tmp: Path) -> str:
    """The real reason a write failed, as words (the library may hide errno)."""
    err = exc if isinstance(exc, OSError) else None
    cur: BaseException | None = exc
    while err is None and cur is not None:  # an OSError in the chain?
        cur = cur.__cause__ or cur.__context__
        if isinstance(cur, OSError):
            err = cur
    if err is not None and err.errno in _FULL:
        return "disk full or file-size limit reached (" + os.strerror(err.errno) + ")"
    if err is not None and err.errno in _PERM:
        return "permission denied"
    if err is not None and err.errno == errno.EISDIR:
        return "it is a directory"
    if err is not None and err.errno == errno.ENOENT:
        return "folder does not exist"
    # libraries (netCDF, HiGHS) often report a failed write without errno: look for the reason
    try:
        size = tmp.stat().st_size if tmp.exists() else 0
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY and size >= soft:
            return f"file-size limit reached (ulimit -f: {soft} bytes)"
        st = os.statvfs(tmp.parent)
        if st.f_blocks > 0 and st.f_bavail * st.f_frsize < 1 << 20:  # (a virtual fs has no blocks)
            return "disk full"
    except OSError:
        pass
    if isinstance(exc, IncompleteOutput):
        return str(exc)
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}".replace("\n", " ")


def atomic_write(path: str | Path, write: Callable[[Path], Any], *, what: str = "output",
                 verify: Callable[[Path], None] | None = None) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file next to ``path``
    (same suffix, so format-by-suffix writers work), ``verify(tmp)`` may check it (raise
    to refuse), then it is fsynced and renamed into place.  Returns ``path``.

    Raises :class:`OutputError` naming the file and the cause; an existing target is
    never damaged.  ``KeyboardInterrupt`` removes the temporary file and propagates.
    """
    path = check_output_path(path, what)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}"
    try:
        try:
            write(tmp)
            if not tmp.exists():
                raise IncompleteOutput("the writer produced no file")
            if verify is not None:
                verify(tmp)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if path.exists() and os.access(path, os.F_OK):
                # keep the target's permission bits if it already exists
                try:
                    os.chmod(tmp, path.stat().st_mode & 0o777)
                except OSError:
                    pass
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except OutputError as exc:  # a writer that itself writes atomically: name this target
            text = str(exc)
            reason = (text.split(f"{tmp}: ", 1)[1] if f"{tmp}: " in text
                      else _cause(exc.__cause__ if exc.__cause__ is not None else exc, tmp))
            raise OutputError(f"cannot write {what} {path}: {reason}") from exc
        except TokenflowError:  # the writer's own verdict (e.g. infeasible market) passes unchanged
            raise
        except Exception as exc:  # noqa: BLE001 - any writer failure becomes one clear message
            raise OutputError(f"cannot write {what} {path}: {_cause(exc, tmp)}") from exc
    finally:
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def verify_netcdf(path: Path) -> None:
    """Refuse a netCDF file that cannot be opened and read back (truncated write)."""
    import xarray as xr

    try:
        with xr.open_dataset(path) as ds:
            ds.load()
    except Exception as exc:  # noqa: BLE001
        raise IncompleteOutput(f"the netCDF file could not be read back after writing ({exc})") from exc


def verify_text_end(marker: str) -> Callable[[Path], None]:
    """A ``verify`` for text formats that end with a keyword (MPS: ``ENDATA``, LP: ``end``)."""

    def _verify(path: Path) -> None:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256))
            tail = fh.read().decode("ascii", "replace").strip().lower()
        if not tail.endswith(marker.lower()):
            raise IncompleteOutput(f"the file is incomplete (no final {marker!r})")

    return _verify


def verify_model_file(path: Path) -> None:
    """``verify`` for solver model files by suffix: MPS ends with ENDATA, LP with End."""
    suffix = path.suffix.lower()
    if suffix == ".mps":
        verify_text_end("ENDATA")(path)
    elif suffix == ".lp":
        verify_text_end("end")(path)


def write_netcdf(ds: Any, path: str | Path, what: str = "netCDF file") -> Path:
    """Write an xarray Dataset to netCDF atomically and check it reads back."""
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp), what=what, verify=verify_netcdf)
