"""A POP3 account's downloads in its store (the tables of the POP3 migration in db.py).

A POP3 message is a row of a local folder (INBOX until the user moves it) with sid = its UIDL,
plus a ledger entry (pop3_ledger: UIDL, fingerprint, download time, body committed or not,
still on the server) and its stored copy (pop3_raw: the whole message, or only its header block
while headers_first has not fetched the body). The ledger entry outlives the row: a message the
user deleted keeps its UIDL known (keep mode never downloads it again) with msg_id NULL.

Every write is one transaction, durable when it returns (the POP3 sync sends a DELE only after
the commit of the message returned; backends/pop3/download.py). Plain tuples here: the store
knows nothing of the backend's types (backends/pop3/ledger.py adapts this to its Ledger).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import NamedTuple

from tuimail.store.store import Store
from tuimail.store.threads import THREADS_CLEAN, THREADS_NEW

_CHUNK = 500
_INSERT = ("INSERT INTO messages(folder_id, sid, date, from_, to_, cc, subject, message_id, in_reply_to, refs,"
           " size, has_attachment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class LedgerEntry(NamedTuple):
    id: int  # the ledger entry (the backend's `ref`)
    msg_id: int | None  # the message's local id; None once the user deleted it
    uidl: str | None
    fingerprint: str
    downloaded_at: float
    has_body: bool
    on_server: bool


class Pop3Ledger:
    """The POP3 tables of one account's Store (the connection is the Store's: one thread)."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    # ------------------------------------------------------------------ folders

    def local_folder(self, name: str, role: str | None = None) -> int:
        """The local folder `name` (created if needed); its id."""
        row = self.db.execute("SELECT id FROM folders WHERE name = ? AND local = 1", (name,)).fetchone()
        if row is not None:
            return row[0]  # (no write: every sync asks)
        with self.store.transaction():
            fid = self.store.upsert_folder(name, None, (), role)
            self.db.execute("UPDATE folders SET local = 1, synced_at = coalesce(synced_at, 0) WHERE id = ?", (fid,))
        return fid

    # ------------------------------------------------------------------ the ledger

    def empty(self) -> bool:
        """Nothing was ever downloaded (a first fill is not new mail)."""
        return self.db.execute("SELECT 1 FROM pop3_ledger LIMIT 1").fetchone() is None

    def entries(self) -> list[LedgerEntry]:
        return [LedgerEntry(r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6])) for r in self.db.execute(
            "SELECT id, msg_id, uidl, fingerprint, downloaded_at, has_body, on_server FROM pop3_ledger ORDER BY id")]

    def add(self, folder_id: int, uidl: str | None, fingerprint: str, raw: bytes, headers_only: bool,
            fields: tuple, now: float, *, mark_threads: bool = True) -> tuple[int, int]:
        """A downloaded message: its row in `folder_id` (fields: date, from_, to, cc, subject,
        message_id, in_reply_to, refs, size, has_attachment), its ledger entry and its copy, in one
        transaction. Returns (ledger id, local id). mark_threads=False: the caller's enclosing
        transaction already marked the folder's thread order stale."""
        with self.store.transaction():
            msg_id = None
            if uidl is not None:
                try:  # (the unique index msg_sid refuses a repeated UIDL: one statement, not a lookup first)
                    msg_id = self.db.execute(_INSERT, (folder_id, uidl, *fields)).lastrowid
                except sqlite3.IntegrityError:
                    msg_id = None
            if msg_id is None:
                # no UIDL (or a repeated one): a server id that names this download alone
                nxt = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM pop3_ledger").fetchone()[0]
                msg_id = self.db.execute(_INSERT, (folder_id, f"{uidl or ''}#{nxt}", *fields)).lastrowid
            lid = self.db.execute("INSERT INTO pop3_ledger(msg_id, uidl, fingerprint, downloaded_at, has_body)"
                                  " VALUES (?, ?, ?, ?, ?)", (msg_id, uidl, fingerprint, now,
                                                               int(not headers_only))).lastrowid
            self.db.execute("INSERT INTO pop3_raw(msg_id, raw) VALUES (?, ?)", (msg_id, raw))
            if mark_threads:
                self.db.execute("UPDATE folders SET threads_dirty = ? WHERE id = ? AND threads_dirty = ?",
                                (THREADS_NEW, folder_id, THREADS_CLEAN))
        assert msg_id is not None and lid is not None
        return lid, msg_id

    def set_body(self, ledger_id: int, raw: bytes, has_attachment: bool | None = None) -> int | None:
        """The whole message for an entry stored headers-only; the local id it belongs to (None:
        the user deleted the row meanwhile: the entry only records that the body was had)."""
        with self.store.transaction():
            row = self.db.execute("SELECT msg_id FROM pop3_ledger WHERE id = ?", (ledger_id,)).fetchone()
            msg_id = row[0] if row else None
            self.db.execute("UPDATE pop3_ledger SET has_body = 1 WHERE id = ?", (ledger_id,))
            if msg_id is not None:
                self.db.execute("INSERT OR REPLACE INTO pop3_raw(msg_id, raw) VALUES (?, ?)", (msg_id, raw))
                if has_attachment is not None:
                    self.db.execute("UPDATE messages SET has_attachment = ? WHERE id = ?",
                                    (int(has_attachment), msg_id))
        return msg_id

    def remap(self, ledger_id: int, uidl: str | None) -> None:
        """The server lists this message under a new UIDL (a restore): the entry and, where it
        does not clash, the row's server id follow."""
        with self.store.transaction():
            self.db.execute("UPDATE pop3_ledger SET uidl = ?, on_server = 1 WHERE id = ?", (uidl, ledger_id))
            row = self.db.execute("SELECT m.id, m.folder_id FROM pop3_ledger l JOIN messages m ON m.id = l.msg_id"
                                  " WHERE l.id = ?", (ledger_id,)).fetchone()
            if row is not None and uidl is not None and not self.db.execute(
                    "SELECT 1 FROM messages WHERE folder_id = ? AND sid = ?", (row[1], uidl)).fetchone():
                self.db.execute("UPDATE messages SET sid = ? WHERE id = ?", (uidl, row[0]))

    def off_server(self, ledger_ids: Iterable[int]) -> None:
        ids = list(ledger_ids)
        with self.store.transaction():
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                self.db.execute(f"UPDATE pop3_ledger SET on_server = 0 WHERE id IN ({','.join('?' * len(chunk))})",
                                chunk)

    def deleted_locally(self) -> list[LedgerEntry]:
        """Entries whose message the user deleted and the server still has."""
        return [e for e in self.entries() if e.msg_id is None and e.on_server]

    # ------------------------------------------------------------------ reading

    def message(self, msg_id: int) -> tuple[bytes, LedgerEntry | None] | None:
        """(stored copy, its ledger entry) of a message; None when the store has no copy."""
        row = self.db.execute("SELECT raw FROM pop3_raw WHERE msg_id = ?", (msg_id,)).fetchone()
        if row is None:
            return None
        e = self.db.execute("SELECT id, msg_id, uidl, fingerprint, downloaded_at, has_body, on_server FROM pop3_ledger"
                            " WHERE msg_id = ?", (msg_id,)).fetchone()
        return bytes(row[0]), (LedgerEntry(e[0], e[1], e[2], e[3], e[4], bool(e[5]), bool(e[6])) if e else None)

    def without_body(self) -> list[LedgerEntry]:
        """Header-only messages the user still has (headers_first): their bodies are due."""
        return [e for e in self.entries() if not e.has_body and e.msg_id is not None]
