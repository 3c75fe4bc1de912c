"""SQLite and file errors of the local store, turned into one line with the right cause.

    store_error(exc, path) -> StoreError     (kind: corrupt | full | permission | locked | io | other)
    guard(path)                              context manager: sqlite3 errors inside -> StoreError

The advice never throws the journal of pending actions away: a damaged store is repaired with
`tuimail repair`, which keeps the journal and rebuilds the rest from the server; a full disk
only needs space (reading still works, nothing was lost).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

from tuimail.errors import StoreError

_FULL_BYTES = 64 * 1024  # less than this left on the file system counts as full


def repair_hint(path: Path | str) -> str:
    """The command that repairs the store (or body cache) at `path`."""
    return f"tuimail repair --account {Path(path).stem}"


def disk_full(path: Path | str) -> bool:
    """Whether the file system holding `path` has (next to) no space left for this user."""
    p = Path(path)
    for d in (p.parent, p):
        try:
            st = os.statvfs(d)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize < _FULL_BYTES or (st.f_files > 0 and st.f_favail == 0)
    return False


def _kind(exc: BaseException, path: Path) -> str:
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "full"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return "permission"
        return "io"
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc).lower()
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return "corrupt"
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return "full"
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")) or "readonly database" in text:
        return "permission"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        if disk_full(path):
            return "full"
        if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
            return "permission"
        return "io"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        # on a full disk a reader holds the file alone (db.connect): the cause is the disk
        return "full" if disk_full(path) else "locked"
    if name.startswith("SQLITE_IOERR") or "i/o error" in text:
        return "full" if disk_full(path) else "io"
    return "other"


def store_error(exc: BaseException, path: Path | str) -> StoreError:
    """One line naming the file, the cause and what to do; never advice that loses the journal."""
    if isinstance(exc, StoreError):
        return exc
    path = Path(path)
    kind = _kind(exc, path)
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    detail = " ".join(detail.split())[:200]
    if kind == "corrupt":
        msg = (f"{path}: the local store is damaged ({detail}); run `{repair_hint(path)}` to rebuild it"
               " (pending actions are kept)")
    elif kind == "full":
        msg = f"{path}: disk full ({detail}); free some space and try again (nothing was lost)"
    elif kind == "permission":
        msg = f"{path}: permission denied ({detail}); check the owner and mode of the file and its directory"
    elif kind == "locked":
        msg = f"{path}: the store is locked by another tuimail process ({detail}); try again when it is done"
    elif kind == "io":
        msg = (f"{path}: I/O error ({detail}); check the disk; if it persists, run `{repair_hint(path)}`"
               " (pending actions are kept)")
    else:
        msg = f"{path}: local store error ({detail})"
    return StoreError(msg, kind, path)


@contextlib.contextmanager
def guard(path: Path | str):
    """sqlite3 errors raised inside become a StoreError about `path`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(exc, path) from None
