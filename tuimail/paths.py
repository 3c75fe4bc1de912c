"""Where tuimail keeps its files.

Every function asks platformdirs at call time (not at import time), so XDG_CONFIG_HOME,
XDG_DATA_HOME, XDG_CACHE_HOME and XDG_STATE_HOME set after import still move the directories
(tests rely on this).

- config: the user's config.toml
- data: the per-account store (it holds the journal of pending actions, which must survive a
  cache clean)
- cache: re-downloadable message bodies
- state: lock files

The functions only compute paths; they create nothing. Call ensure_private_dir() on a path's
parent before writing there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import platformdirs

APPNAME = "tuimail"

# Account names become file names; config.py validates them with the same pattern.
ACCOUNT_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def config_dir() -> Path:
    return platformdirs.user_config_path(APPNAME, appauthor=False)


def data_dir() -> Path:
    return platformdirs.user_data_path(APPNAME, appauthor=False)


def cache_dir() -> Path:
    return platformdirs.user_cache_path(APPNAME, appauthor=False)


def state_dir() -> Path:
    return platformdirs.user_state_path(APPNAME, appauthor=False)


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def _checked(name: str) -> str:
    # Config validation already guarantees this; checking again keeps a name that did not come
    # from the config (e.g. a caller's typo) from ever escaping the directory.
    if not isinstance(name, str) or not ACCOUNT_NAME_RE.fullmatch(name):
        raise ValueError(f"invalid account name: {name!r}")
    return name


def account_store_path(account_name: str) -> Path:
    """The account's SQLite store (headers, flags, journal)."""
    return data_dir() / "accounts" / f"{_checked(account_name)}.sqlite3"


def account_cache_path(account_name: str) -> Path:
    """The account's re-downloadable bodies cache."""
    return cache_dir() / "bodies" / f"{_checked(account_name)}.sqlite3"


def lock_path(account_name: str) -> Path:
    """The per-account lock that lets only one syncer replay the journal."""
    return state_dir() / f"{_checked(account_name)}.lock"


def ensure_private_dir(path: Path | str) -> Path:
    """Create `path` (and missing parents) if needed; the directories created get mode 0700.

    Directories that already exist keep their mode: we do not tighten (or loosen) what the user set.
    Returns the path as a Path.
    """
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            # Someone else created it in between; leave its mode alone.
            continue
        # mkdir's mode is filtered by the umask; make sure it is exactly 0700.
        os.chmod(d, 0o700)
    if not path.is_dir():
        raise NotADirectoryError(f"not a directory: {path}")
    return path


def write_cache_file(path: Path, make: Callable[[], bytes]) -> None:
    """Replace the cache file `path` with make()'s bytes at once (a temporary file beside it,
    renamed; its directory made 0700 if missing). A cache that cannot be made or written is only
    not written: nothing is raised (the program works without it)."""
    import tempfile  # (only a start that has something new to keep gets here)

    try:
        data = make()
        ensure_private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:
        pass
