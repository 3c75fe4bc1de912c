"""Postponed messages on their way to the account's Drafts folder (issue #12 item 6).

A plain object over a Store's connection (``Postponed(store.db)``), like the outbox
(store/outbox.py): every method is one SQL statement, committed when it returns. The user's
postpone writes the message here first; the outbox drain (backends/send.py, backends/drafts.py)
APPENDs it to Drafts (flagged draft, seen) and only then deletes the row. Offline, or when the server
refuses, the row stays and is tried again with backoff: nothing the user wrote is lost.

    waiting     not before next_try
    appending   the APPEND may be on the wire: the next drain looks for its Message-ID in the
                folder before appending again (a killed drain never files it twice)
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

__all__ = ["PostponedEntry", "Postponed"]

_COLS = ("id, created, message, folder, message_id, subject, replaces_folder, replaces_sid, state, next_try,"
         " attempts, last_error")


@dataclass(frozen=True)
class PostponedEntry:
    id: int
    created: float
    message: bytes = field(repr=False)
    folder: str  # the Drafts folder it goes to
    message_id: str | None
    subject: str
    replaces_folder: str | None  # the draft it was resumed from: removed once this one is stored
    replaces_sid: str | None
    state: str
    next_try: float
    attempts: int
    last_error: str | None

    def why(self, now: float | None = None) -> str:
        """What it waits for, one line (not sanitised: the server's text may be in it)."""
        now = time.time() if now is None else now
        if self.state == "appending":
            return f"postponed: being stored in {self.folder}"
        if self.next_try > now:
            return (f"postponed: stored in {self.folder} at {time.strftime('%H:%M:%S', time.localtime(self.next_try))}"
                    + (f" ({self.last_error})" if self.last_error else ""))
        return f"postponed: waiting to be stored in {self.folder}"


def _entry(row: tuple) -> PostponedEntry:
    return PostponedEntry(row[0], row[1], bytes(row[2]), row[3], row[4], row[5], row[6], row[7], row[8], row[9],
                          row[10], row[11])


class Postponed:
    """The postponed table of one store. `db` is the Store's connection (autocommit)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def entries(self) -> list[PostponedEntry]:
        return [_entry(r) for r in self.db.execute(f"SELECT {_COLS} FROM postponed ORDER BY id")]

    def get(self, entry_id: int) -> PostponedEntry | None:
        row = self.db.execute(f"SELECT {_COLS} FROM postponed WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM postponed").fetchone()[0])

    def next_due(self) -> float | None:
        row = self.db.execute("SELECT min(next_try) FROM postponed").fetchone()
        return row[0] if row else None

    def add(self, message: bytes, folder: str, *, message_id: str | None = None, subject: str = "",
            replaces: tuple[str, str] | None = None, now: float | None = None) -> int:
        """Keep a postponed message (committed when this returns)."""
        now = time.time() if now is None else now
        cur = self.db.execute(
            "INSERT INTO postponed(created, message, folder, message_id, subject, replaces_folder, replaces_sid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, bytes(message), folder, message_id, subject, replaces[0] if replaces else None,
             replaces[1] if replaces else None))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def due(self, now: float | None = None, *, ignore_backoff: bool = False) -> list[int]:
        now = time.time() if now is None else now
        return [r[0] for r in self.db.execute("SELECT id FROM postponed WHERE ? OR next_try <= ? ORDER BY id",
                                              (ignore_backoff, now))]

    def appending(self, entry_id: int) -> None:
        """The APPEND is about to go on the wire."""
        self.db.execute("UPDATE postponed SET state = 'appending', attempts = attempts + 1 WHERE id = ?", (entry_id,))

    def later(self, entry_id: int, error: str, next_try: float) -> None:
        """Not stored now (offline, refused): kept, tried again at next_try. The state stays as it
        is ('appending': the APPEND may have arrived; the next try looks first)."""
        self.db.execute("UPDATE postponed SET next_try = ?, last_error = ? WHERE id = ?", (next_try, error, entry_id))

    def done(self, entry_id: int) -> None:
        self.db.execute("DELETE FROM postponed WHERE id = ?", (entry_id,))

    def cancel(self, entry_id: int) -> PostponedEntry | None:
        row = self.db.execute(f"DELETE FROM postponed WHERE id = ? RETURNING {_COLS}", (entry_id,)).fetchone()
        return _entry(row) if row else None
