"""Atomic file writing (private; the lead may unify it with ``tokenflow.io``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import TokenflowError


def write_atomic(path: Path, write) -> Path:
    """Write through a temporary file in the target folder, then rename into place; errors
    name the real cause (missing folder, is a directory, disk full, permission)."""
    import errno

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise TokenflowError(f"cannot write {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise TokenflowError(f"cannot write {path}: {folder} is not a folder")
    if path.is_dir():
        raise TokenflowError(f"cannot write {path}: it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=folder)
    except PermissionError:
        raise TokenflowError(f"cannot write {path}: permission denied in {folder}") from None
    except OSError as exc:
        raise TokenflowError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        write(Path(tmp))
        size = os.path.getsize(tmp)
        if size == 0:
            raise OSError(errno.ENOSPC, "nothing was written (disk full or file size limit?)")
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            why = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file too large",
                   errno.EACCES: "permission denied", errno.EPERM: "permission denied"}.get(exc.errno,
                                                                                          exc.strerror or str(exc))
            raise TokenflowError(f"cannot write {path}: {why}") from None
        raise
    return path
