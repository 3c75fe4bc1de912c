"""Cached body structures and part contents, in the cache dir (always re-downloadable).

Keyed by what the backend chooses; IMAP: (folder name, UIDVALIDITY, server id = the uid), so a
UIDVALIDITY change can never serve a stale body. (The column keeps its v1 name `uid`; a decimal
server id is stored as the integer it spells.)
Parts may be cached partially: `complete` says whether `data` holds the whole part.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from tuimail.store.db import connect
from tuimail.store.sqlite_errors import guard

BODY_MIGRATIONS = [
    """
    CREATE TABLE structure(
      folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY(folder, uidvalidity, uid)
    ) WITHOUT ROWID;
    CREATE TABLE parts(
      folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL, section TEXT NOT NULL,
      complete INTEGER NOT NULL, total INTEGER, data BLOB NOT NULL,
      PRIMARY KEY(folder, uidvalidity, uid, section)
    );
    """,
]


def _guarded(fn):
    """Errors of this file are reported as the body cache's, not the store's."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kw):
        with guard(self.path):
            return fn(self, *args, **kw)
    return wrapper


def _jsonable(obj):
    if isinstance(obj, bytes):
        return {"b": obj.decode("latin-1")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(x) for x in obj]
    return obj


def _unjson(obj):
    if isinstance(obj, dict):
        return obj["b"].encode("latin-1")
    if isinstance(obj, list):
        return tuple(_unjson(x) for x in obj)
    return obj


class BodyCache:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.db = connect(path, BODY_MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    @_guarded
    def get_structure(self, folder: str, uidvalidity: int, sid: str | int):
        row = self.db.execute("SELECT data FROM structure WHERE folder = ? AND uidvalidity = ? AND uid = ?",
                              (folder, uidvalidity, sid)).fetchone()
        return _unjson(json.loads(row[0])) if row else None

    @_guarded
    def put_structure(self, folder: str, uidvalidity: int, sid: str | int, bodystructure) -> None:
        try:
            data = json.dumps(_jsonable(bodystructure))
        except RecursionError:  # nested deeper than any real message (a hostile server): not cached
            return
        self.db.execute("INSERT OR REPLACE INTO structure VALUES (?, ?, ?, ?)", (folder, uidvalidity, sid, data))

    @_guarded
    def get_part(self, folder: str, uidvalidity: int, sid: str | int, section: str) -> tuple[bytes, bool] | None:
        row = self.db.execute("SELECT data, complete FROM parts WHERE folder = ? AND uidvalidity = ? AND uid = ?"
                              " AND section = ?", (folder, uidvalidity, sid, section)).fetchone()
        return (bytes(row[0]), bool(row[1])) if row else None

    @_guarded
    def put_part(self, folder: str, uidvalidity: int, sid: str | int, section: str, data: bytes, complete: bool,
                 total: int | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (folder, uidvalidity, sid, section, int(complete), total, data))

    @_guarded
    def forget_folder(self, folder: str) -> None:
        self.db.execute("DELETE FROM parts WHERE folder = ?", (folder,))
        self.db.execute("DELETE FROM structure WHERE folder = ?", (folder,))
