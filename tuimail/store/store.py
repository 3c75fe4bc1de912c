"""The account store: folders, message header rows, flags and the journal of pending actions.

Writers: the sync engine (server truth) and user intents (flag/move/expunge, which write the row
*and* a journal entry in one transaction). Readers: the UI and the CLI. Each thread opens its own
Store on the same file (WAL: one writer, many readers).

Flags are kept as a space-separated, sorted string ("\\Flagged \\Seen"). The effective flags of a
row are the server's flags with the pending journal entries applied on top, so a user's offline
change stays visible until the server has it.
"""

from __future__ import annotations

import contextlib
import operator
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tuimail.store.db import connect
from tuimail.store.failures import ActionInfo, FailuresMixin  # noqa: F401  (re-exported)
from tuimail.store.sqlite_errors import store_error
from tuimail.store.journal import JournalEntry, JournalMixin, _apply, norm_flags  # noqa: F401  (re-exported)
from tuimail.store.threads import _WITH_THREADS, THREADS_CLEAN, THREADS_NEW, ThreadsMixin
from tuimail.store.writer import yield_to_intents

ROLES = ("inbox", "drafts", "sent", "archive", "junk", "trash")
SORTS = ("date", "arrival", "from", "subject", "size")  # the list's orders (`o` cycles them, [ui] sort)
_CHUNK = 500  # bound on the number of SQL variables per query
ROWS_PER_TX = 2000  # header rows per transaction (insert_headers): a sync window is 5000


class MessageRow(NamedTuple):
    uid: int
    flags: str
    date: int | None
    from_: str
    to: str
    cc: str
    subject: str
    message_id: str | None
    in_reply_to: str | None
    refs: str
    size: int
    has_attachment: bool
    thread_depth: int
    thread_prefix: str
    modseq: int

    @property
    def flag_set(self) -> frozenset[str]:
        return frozenset(self.flags.split())

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags.split()

    @property
    def flagged(self) -> bool:
        return "\\Flagged" in self.flags.split()


_ROW_COLS = ("uid, flags, date, from_, to_, cc, subject, message_id, in_reply_to, refs, size, "
             "has_attachment, coalesce(depth, 0), coalesce(prefix, ''), modseq")


@dataclass(frozen=True)
class FolderInfo:
    id: int
    name: str
    delimiter: str | None
    role: str | None
    attrs: str
    selectable: bool
    uidvalidity: int | None
    uidnext: int | None
    highestmodseq: int | None
    total: int
    unread: int
    synced_at: float | None
    error: str | None = None  # the server's last refusal of this folder (cleared by a good sync)
    gone: bool = False  # left the server's LIST while actions on it were waiting

    def display_name(self) -> str:
        if self.delimiter and self.delimiter in self.name:
            return self.name.rsplit(self.delimiter, 1)[1]
        return self.name


class Store(JournalMixin, FailuresMixin, ThreadsMixin):
    """One connection to an account's store. Not shared between threads."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.db = connect(self.path)
        self._tx_depth = 0

    def close(self) -> None:
        self.db.close()

    def data_version(self) -> int:
        """Changes when another connection (another thread or process) commits to the file;
        a few microseconds (the UI polls it to notice a cron `tuimail sync`)."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
        if isinstance(exc, sqlite3.Error):  # a damaged page, a full disk...: one line, the right cause
            raise store_error(exc, self.path) from None

    @contextlib.contextmanager
    def transaction(self):
        """Atomic unit: every sync step commits all or nothing (nested calls join the outer one)."""
        if self._tx_depth:
            self._tx_depth += 1
            try:
                yield self.db
            finally:
                self._tx_depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._tx_depth = 1
        try:
            yield self.db
        except BaseException:
            self._tx_depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._tx_depth = 0
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ folders

    def folders(self) -> list[FolderInfo]:
        # both counts come from covering index scans, never from the table itself
        unread = dict(self.db.execute("SELECT folder_id, count(*) FROM messages INDEXED BY msg_unseen"
                                      " WHERE seen = 0 AND hidden = 0 GROUP BY folder_id"))
        counts = {fid: (t, unread.get(fid, 0)) for fid, t in self.db.execute(
            "SELECT folder_id, count(*) FROM messages INDEXED BY msg_date WHERE hidden = 0 GROUP BY folder_id")}
        out = []
        for r in self.db.execute(
                "SELECT id, name, delimiter, role, attrs, selectable, uidvalidity, uidnext, highestmodseq,"
                " synced_at, server_total, server_unseen, error, gone FROM folders ORDER BY name"):
            total, unread = counts.get(r[0], (None, None))
            if total is None:  # never synced: show what STATUS said, if anything
                total, unread = r[10] or 0, r[11] or 0
            out.append(FolderInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8],
                                  int(total), int(unread), r[9], r[12], bool(r[13])))
        return out

    def folder(self, name_or_id: str | int, *, counts: bool = True) -> FolderInfo | None:
        """One folder; counts=False skips the two counts (a scan of ~20 ms per 100k rows) and
        leaves total and unread at -1 (unknown)."""
        for f in self.folders_light(name_or_id, counts=counts):
            return f
        return None

    def folders_light(self, name_or_id: str | int, *, counts: bool = True) -> list[FolderInfo]:
        col = "id" if isinstance(name_or_id, int) else "name"
        rows = self.db.execute(
            "SELECT id, name, delimiter, role, attrs, selectable, uidvalidity, uidnext, highestmodseq,"
            f" synced_at, error, gone FROM folders WHERE {col} = ?", (name_or_id,)).fetchall()
        out = []
        for r in rows:
            total, unread = self.counts(r[0]) if counts else (-1, -1)
            out.append(FolderInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8],
                                  total, unread, r[9], r[10], bool(r[11])))
        return out

    def folder_by_role(self, role: str) -> FolderInfo | None:
        row = self.db.execute("SELECT id FROM folders WHERE role = ? ORDER BY id LIMIT 1", (role,)).fetchone()
        return self.folder(row[0]) if row else None

    def folder_id(self, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM folders WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def counts(self, folder_id: int) -> tuple[int, int]:
        total = self.db.execute("SELECT count(*) FROM messages INDEXED BY msg_date WHERE folder_id = ?"
                                " AND hidden = 0", (folder_id,)).fetchone()[0]
        unread = self.db.execute("SELECT count(*) FROM messages INDEXED BY msg_unseen WHERE folder_id = ?"
                                 " AND seen = 0 AND hidden = 0", (folder_id,)).fetchone()[0]
        return int(total), int(unread)

    def upsert_folder(self, name: str, delimiter: str | None, attrs: Iterable[str], role: str | None,
                      selectable: bool = True) -> int:
        attrs_s = " ".join(attrs)
        with self.transaction():
            row = self.db.execute("SELECT id FROM folders WHERE name = ?", (name,)).fetchone()
            if row:
                self.db.execute("UPDATE folders SET delimiter = ?, attrs = ?, role = ?, selectable = ? WHERE id = ?",
                                (delimiter, attrs_s, role, int(selectable), row[0]))
                self.folder_back(row[0])
                return row[0]
            cur = self.db.execute(
                "INSERT INTO folders(name, delimiter, attrs, role, selectable) VALUES (?, ?, ?, ?, ?)",
                (name, delimiter, attrs_s, role, int(selectable)))
            return cur.lastrowid

    def delete_folder(self, name: str) -> None:
        """The folder is gone from the server: its rows go; pending actions on it cannot be replayed."""
        with self.transaction():
            self.db.execute("DELETE FROM folders WHERE name = ?", (name,))

    def set_folder_state(self, folder_id: int, *, uidvalidity: int | None = None, uidnext: int | None = None,
                         highestmodseq: int | None = None, server_total: int | None = None,
                         server_unseen: int | None = None, synced: bool = False) -> None:
        sets, args = [], []
        for col, val in (("uidvalidity", uidvalidity), ("uidnext", uidnext), ("highestmodseq", highestmodseq),
                         ("server_total", server_total), ("server_unseen", server_unseen)):
            if val is not None:
                sets.append(f"{col} = ?")
                args.append(val)
        if synced:
            sets.append("synced_at = ?")
            args.append(time.time())
        if sets:
            with self.transaction():
                self.db.execute(f"UPDATE folders SET {', '.join(sets)} WHERE id = ?", (*args, folder_id))

    def reset_folder(self, folder_id: int, uidvalidity: int) -> None:
        """UIDVALIDITY changed: every cached uid is meaningless. Journal entries survive with uid
        -uid (the entries for one message stay together) and are matched again by Message-ID, size
        and date after the folder is refilled (journal_rematch)."""
        with self.transaction():
            self.db.execute("UPDATE journal SET uid = -uid WHERE folder_id = ? AND uid > 0", (folder_id,))
            self.db.execute("DELETE FROM messages WHERE folder_id = ?", (folder_id,))
            self.db.execute("DELETE FROM threads WHERE folder_id = ?", (folder_id,))
            self.db.execute("UPDATE folders SET uidvalidity = ?, uidnext = NULL, highestmodseq = NULL,"
                            " threads_dirty = 1 WHERE id = ?", (uidvalidity, folder_id))

    # ------------------------------------------------------------------ message rows (read side)

    def uid_list(self, folder_id: int, sort: str = "date", reverse: bool = False,
                 limit: int | None = None) -> list[int]:
        """The folder's ordered uid list: newest first for date/arrival unless reverse.

        This is the one query that returns every row of a folder (as bare ints); everything else
        asks for the visible uids only. With `limit`, only the first rows: for the date and
        arrival orders that walks the date index and costs nothing at 100k (the first screen).
        """
        order = {
            "date": "date DESC, uid DESC",
            "arrival": "uid DESC",
            "from": "from_ COLLATE NOCASE, date DESC",
            "subject": "subject COLLATE NOCASE, date DESC",
            "size": "size DESC, uid DESC",
            "thread": "pos DESC, sub, uid DESC",
        }.get(sort)
        if order is None:
            raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}, thread")
        if reverse:
            order = ", ".join(p.replace(" DESC", " ASC") if " DESC" in p else p + " DESC"
                              for p in (s.strip() for s in order.split(",")))
        # one string out of SQLite and one split: ~20% cheaper than a row per uid at 100k
        src = _WITH_THREADS if sort == "thread" else "messages"
        joined = self.db.execute(f"SELECT group_concat(uid) FROM (SELECT uid FROM {src} WHERE folder_id = ?"
                                 f" AND hidden = 0 ORDER BY {order}{' LIMIT ?' if limit is not None else ''})",
                                 (folder_id,) if limit is None else (folder_id, max(0, int(limit)))).fetchone()[0]
        return list(map(int, joined.split(","))) if joined else []

    def rows(self, folder_id: int, uids: Sequence[int]) -> dict[int, MessageRow]:
        out: dict[int, MessageRow] = {}
        for i in range(0, len(uids), _CHUNK):
            chunk = list(uids[i:i + _CHUNK])
            q = f"SELECT {_ROW_COLS} FROM {_WITH_THREADS} WHERE folder_id = ? AND uid IN ({','.join('?' * len(chunk))})"
            for r in self.db.execute(q, (folder_id, *chunk)):
                out[r[0]] = MessageRow(*r[:11], bool(r[11]), *r[12:])
        return out

    def row(self, folder_id: int, uid: int) -> MessageRow | None:
        return self.rows(folder_id, [uid]).get(uid)

    def message_count(self, folder_id: int) -> int:
        """Every cached row of the folder, hidden ones included (what the server's MESSAGES counts)."""
        return self.db.execute("SELECT count(*) FROM messages INDEXED BY msg_date WHERE folder_id = ?",
                               (folder_id,)).fetchone()[0]

    def local_ranges(self, folder_id: int) -> list[tuple[int, int]]:
        """Every cached uid of the folder (hidden ones included) as sorted (lo, hi) runs, built
        as the rows stream by: a resync of a 100k folder holds no Python int per message."""
        runs: list[tuple[int, int]] = []
        lo = hi = None
        for (u,) in self.db.execute("SELECT uid FROM messages WHERE folder_id = ? ORDER BY uid", (folder_id,)):
            if hi is not None and u == hi + 1:
                hi = u
                continue
            if lo is not None:
                runs.append((lo, hi))
            lo = hi = u
        if lo is not None:
            runs.append((lo, hi))
        return runs

    def local_uids(self, folder_id: int) -> list[int]:
        """Every cached uid of the folder, hidden ones included (sync side)."""
        return [r[0] for r in self.db.execute("SELECT uid FROM messages WHERE folder_id = ? ORDER BY uid",
                                              (folder_id,))]

    def find_by_message_id(self, folder_id: int, message_id: str) -> int | None:
        row = self.db.execute("SELECT uid FROM messages WHERE folder_id = ? AND message_id = ? LIMIT 1",
                              (folder_id, message_id)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ sync side writes

    def set_missing_dates(self, folder_id: int, dates: dict[int, int]) -> list[int]:
        """Dates for rows that have none (no Date: header): the arrival time. Returns the uids set."""
        done = []
        with self.transaction():
            for uid, ts in dates.items():
                cur = self.db.execute("UPDATE messages SET date = ? WHERE folder_id = ? AND uid = ? AND date IS NULL",
                                      (ts, folder_id, uid))
                if cur.rowcount:
                    done.append(uid)
        return done

    def insert_headers(self, folder_id: int, rows: Iterable[tuple]) -> int:
        """rows: (uid, modseq, flags_str, date, from_, to, cc, subject, message_id, in_reply_to, refs,
        size, has_attachment). Existing uids are replaced (a refetch after a crash is harmless)."""
        # In key order: windows arrive newest first, and rows inserted in descending order split
        # every B-tree page in half (100k rows: 1.73 s and 17,399 pages, against 0.93 s and 8,832).
        rows = sorted(rows, key=operator.itemgetter(0))
        # A few thousand rows per transaction (a window of 5000 held the write lock ~70 ms on a
        # busy machine): a user's intent waits for one of them, not for the window. Each row is
        # whole in its transaction; a crash between two leaves rows a resync does not fetch again.
        for i in range(0, len(rows), ROWS_PER_TX):
            if i:
                yield_to_intents(self.path)
            with self.transaction():  # (the pending intents are read under the write lock)
                pend = self._pending_flag_deltas(folder_id)
                data = []
                for r in rows[i:i + ROWS_PER_TX]:
                    flags = r[2]
                    if r[0] in pend:
                        flags = norm_flags(_apply(set(flags.split()), *pend[r[0]]))
                    fl = flags.split()
                    data.append((folder_id, r[0], r[1] or 0, flags, int("\\Seen" in fl), int("\\Flagged" in fl),
                                 *r[3:]))
                self.db.executemany(
                    "INSERT OR REPLACE INTO messages(folder_id, uid, modseq, flags, seen, flagged, date, from_, to_,"
                    " cc, subject, message_id, in_reply_to, refs, size, has_attachment) VALUES"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", data)
                # new rows only: they are threaded with the threads they join (threads.py)
                self.db.execute("UPDATE folders SET threads_dirty = ? WHERE id = ? AND threads_dirty = ?",
                                (THREADS_NEW, folder_id, THREADS_CLEAN))
        return len(rows)

    def apply_server_flags(self, folder_id: int, updates: Iterable[tuple[int, Iterable[str], int | None]]) -> list[int]:
        """Server truth for (uid, flags, modseq); pending user intents stay applied on top.
        Returns the uids whose visible flags changed."""
        updates = list(updates)
        if not updates:
            return []
        uids = [u[0] for u in updates]
        changed, data = [], []
        # Read the rows and the pending intents under the write lock: an intent committed by the
        # UI between the read and the write would otherwise be painted over until the next sync.
        with self.transaction():
            pend = self._pending_flag_deltas(folder_id)
            current = {}
            for i in range(0, len(uids), _CHUNK):
                chunk = uids[i:i + _CHUNK]
                current.update(self.db.execute(
                    f"SELECT uid, flags FROM messages WHERE folder_id = ? AND uid IN ({','.join('?' * len(chunk))})",
                    (folder_id, *chunk)))
            for uid, flags, modseq in updates:
                if uid not in current:
                    continue  # not cached yet (new mail is fetched separately)
                eff = set(flags)
                if uid in pend:
                    eff = _apply(eff, *pend[uid])
                s = norm_flags(eff)
                if s != current[uid]:
                    changed.append(uid)
                data.append((s, int("\\Seen" in eff), int("\\Flagged" in eff), modseq, folder_id, uid))
            if data:
                self.db.executemany(
                    "UPDATE messages SET flags = ?, seen = ?, flagged = ?, modseq = coalesce(?, modseq)"
                    " WHERE folder_id = ? AND uid = ?", data)
        return changed

    def remove_uids(self, folder_id: int, uids: Iterable[int]) -> list[int]:
        """Expunged on the server (by anyone): the expunge wins over pending flag changes."""
        uids = list(uids)
        removed = []
        with self.transaction():
            for i in range(0, len(uids), _CHUNK):
                chunk = uids[i:i + _CHUNK]
                ph = ",".join("?" * len(chunk))
                removed += [r[0] for r in self.db.execute(
                    f"SELECT uid FROM messages WHERE folder_id = ? AND uid IN ({ph})", (folder_id, *chunk))]
                self.db.execute(f"DELETE FROM messages WHERE folder_id = ? AND uid IN ({ph})", (folder_id, *chunk))
                self.db.execute(f"DELETE FROM threads WHERE folder_id = ? AND uid IN ({ph})", (folder_id, *chunk))
                self.db.execute(f"DELETE FROM journal WHERE folder_id = ? AND uid IN ({ph})", (folder_id, *chunk))
            if removed:
                self.db.execute("UPDATE folders SET threads_dirty = 1 WHERE id = ?", (folder_id,))
        return removed

    def move_row(self, src_folder: int, uid: int, dest_folder: int, new_uid: int) -> None:
        """After a server MOVE with COPYUID: the row appears at once in the destination."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO messages(folder_id, uid, modseq, flags, seen, flagged, date, from_, to_, cc,"
                " subject, message_id, in_reply_to, refs, size, has_attachment)"
                " SELECT ?, ?, 0, flags, seen, flagged, date, from_, to_, cc, subject, message_id, in_reply_to,"
                " refs, size, has_attachment FROM messages WHERE folder_id = ? AND uid = ?",
                (dest_folder, new_uid, src_folder, uid))
            self.db.execute("DELETE FROM messages WHERE folder_id = ? AND uid = ?", (src_folder, uid))
            self.db.execute("DELETE FROM threads WHERE folder_id = ? AND uid = ?", (src_folder, uid))
            self.db.execute("UPDATE folders SET threads_dirty = 1 WHERE id IN (?, ?)", (src_folder, dest_folder))
            # flag changes made while the move was on the wire (`tuimail flag` on the hidden row)
            # follow the message; the move's own entry is deleted by id by the caller
            self.db.execute("UPDATE journal SET folder_id = ?, uid = ?, state = 'pending' WHERE folder_id = ?"
                            " AND uid = ? AND op = 'flags' AND state != 'failed'",
                            (dest_folder, new_uid, src_folder, uid))
