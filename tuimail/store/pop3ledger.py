"""A POP3 account's downloads in its store (the tables of the POP3 migration in db.py).

A POP3 message is a row of a local folder (INBOX until the user moves it) with sid = its UIDL,
plus a ledger entry (pop3_ledger: UIDL, fingerprint, download time, body committed or not,
still on the server) and its stored copy (pop3_raw: the whole message; none while headers_first
has not fetched the body: the row holds what the list shows, the header block is not kept
twice). The ledger entry outlives the row: a message the user deleted keeps its UIDL known
(keep mode never downloads it again) with msg_id NULL.

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
_INSERT_ID = ("INSERT INTO messages(id, folder_id, sid, date, from_, to_, cc, subject, message_id, in_reply_to,"
              " refs, size, has_attachment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_ID_OR_IGNORE = _INSERT_ID.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)


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
            if not headers_only:
                self.db.execute("INSERT INTO pop3_raw(msg_id, raw) VALUES (?, ?)", (msg_id, raw))
            if mark_threads:
                self.db.execute("UPDATE folders SET threads_dirty = ? WHERE id = ? AND threads_dirty = ?",
                                (THREADS_NEW, folder_id, THREADS_CLEAN))
        assert msg_id is not None and lid is not None
        return lid, msg_id

    def add_many(self, folder_id: int, items: list[tuple[str | None, str, bytes, tuple]], headers_only: bool,
                 now: float, *, mark_threads: bool = True) -> list[tuple[int, int]]:
        """add() for each (uidl, fingerprint, raw, fields), in one transaction and a few
        statements (executemany) instead of four per message; the same rows, server ids and
        (ledger id, local id) pairs, in order."""
        if not items:
            return []
        with self.store.transaction():
            db = self.db
            # the ids are chosen here (the transaction holds the write lock): messages' next
            # AUTOINCREMENT id, the ledger's next rowid, so that executemany needs no lastrowid
            base = db.execute("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),"
                              " coalesce((SELECT max(id) FROM messages), 0))").fetchone()[0]
            lbase = db.execute("SELECT coalesce(max(id), 0) FROM pop3_ledger").fetchone()[0]
            ids = range(base + 1, base + 1 + len(items))
            lids = range(lbase + 1, lbase + 1 + len(items))
            seen: set[str] = set()
            rows, odd = [], []
            for msg_id, lid, (uidl, _fp, _raw, fields) in zip(ids, lids, items, strict=True):
                if uidl is None or uidl in seen:
                    odd.append((msg_id, f"{uidl or ''}#{lid}", fields))  # add()'s server id of its own
                else:
                    seen.add(uidl)
                    rows.append((msg_id, folder_id, uidl, *fields))
            before = db.total_changes
            db.executemany(_INSERT_ID_OR_IGNORE, rows)
            if db.total_changes - before != len(rows):  # a UIDL the folder has already (rare)
                there = {r[0] for r in db.execute("SELECT id FROM messages WHERE id BETWEEN ? AND ?",
                                                  (ids[0], ids[-1]))}
                lid_of = dict(zip(ids, lids, strict=True))
                odd += [(r[0], f"{r[2]}#{lid_of[r[0]]}", r[3:]) for r in rows if r[0] not in there]
            if odd:
                db.executemany(_INSERT_ID, [(msg_id, folder_id, sid, *fields) for msg_id, sid, fields in odd])
            body = int(not headers_only)
            db.executemany("INSERT INTO pop3_ledger(id, msg_id, uidl, fingerprint, downloaded_at, has_body)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           [(lid, msg_id, uidl, fp, now, body) for lid, msg_id, (uidl, fp, _r, _f)
                            in zip(lids, ids, items, strict=True)])
            if not headers_only:
                db.executemany("INSERT INTO pop3_raw(msg_id, raw) VALUES (?, ?)",
                               [(msg_id, raw) for msg_id, (_u, _fp, raw, _f) in zip(ids, items, strict=True)])
            if mark_threads:
                db.execute("UPDATE folders SET threads_dirty = ? WHERE id = ? AND threads_dirty = ?",
                           (THREADS_NEW, folder_id, THREADS_CLEAN))
        return list(zip(lids, ids, strict=True))

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

    def set_bodies(self, items: list[tuple[int, bytes, bool | None]]) -> list[int | None]:
        """set_body() for each (ledger id, raw, has_attachment), in one transaction: the local id
        of each (None where the user deleted the row meanwhile)."""
        if not items:
            return []
        with self.store.transaction():
            db = self.db
            msg_of: dict[int, int | None] = {}
            for i in range(0, len(items), _CHUNK):
                chunk = [lid for lid, _r, _a in items[i:i + _CHUNK]]
                marks = ",".join("?" * len(chunk))
                msg_of.update(db.execute(f"SELECT id, msg_id FROM pop3_ledger WHERE id IN ({marks})", chunk).fetchall())
            db.executemany("UPDATE pop3_ledger SET has_body = 1 WHERE id = ?", [(lid,) for lid, _r, _a in items])
            out = [msg_of.get(lid) for lid, _r, _a in items]
            db.executemany("INSERT OR REPLACE INTO pop3_raw(msg_id, raw) VALUES (?, ?)",
                           [(m, raw) for m, (_l, raw, _a) in zip(out, items, strict=True) if m is not None])
            db.executemany("UPDATE messages SET has_attachment = ? WHERE id = ?",
                           [(int(a), m) for m, (_l, _r, a) in zip(out, items, strict=True)
                            if m is not None and a is not None])
        return out

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
        """(stored copy, its ledger entry) of a message; (b"", entry) for one whose body is not
        downloaded yet (headers_first: the entry says has_body False); None when the store has
        neither (a copy that was lost)."""
        row = self.db.execute("SELECT raw FROM pop3_raw WHERE msg_id = ?", (msg_id,)).fetchone()
        e = self.db.execute("SELECT id, msg_id, uidl, fingerprint, downloaded_at, has_body, on_server FROM pop3_ledger"
                            " WHERE msg_id = ?", (msg_id,)).fetchone()
        entry = LedgerEntry(e[0], e[1], e[2], e[3], e[4], bool(e[5]), bool(e[6])) if e else None
        if row is None:
            return (b"", entry) if entry is not None and not entry.has_body else None
        return bytes(row[0]), entry

    def without_body(self) -> list[LedgerEntry]:
        """Header-only messages the user still has (headers_first): their bodies are due."""
        return [e for e in self.entries() if not e.has_body and e.msg_id is not None]
