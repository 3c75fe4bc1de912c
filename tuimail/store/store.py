"""The account store: folders, message header rows, flags and the journal of pending actions.

Writers: the sync engine (server truth) and user intents (flag/move/expunge, which write the row
*and* a journal entry in one transaction). Readers: the UI and the CLI. Each thread opens its own
Store on the same file (WAL: one writer, many readers).

A row is known by its local id (`id`, never reused) everywhere above the backend; the backend
knows it by its server id (`sid`, text) too. Flags are canonical (tuimail.core.flags: the five
columns) plus the other keywords as the backend spells them, space-separated. The effective flags
of a row are the server's flags with the pending journal entries applied on top, so a user's
offline change stays visible until the server has it. A folder's sync state is the backend's,
stored as an opaque string (folder_state).
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple, overload

from tuimail.core.flags import ANSWERED, FLAGGED, SEEN
from tuimail.store.conn import StoreConn
from tuimail.store.db import MIGRATIONS
from tuimail.store.failures import ActionInfo, Failures
from tuimail.store.journal import (
    MASK_SQL, Journal, JournalEntry, _apply, copy_row, flag_cols, flag_set, norm_flags, split_flags)
from tuimail.store.sqlite_errors import store_error
from tuimail.store.threads import _WITH_THREADS, THREADS_CLEAN, THREADS_NEW, ThreadOrder
from tuimail.store.undo import UndoLog
from tuimail.store import copy_undo  # noqa: F401  (registers the inverse of a copy with the undo history)
from tuimail.store.writer import yield_to_intents

ROLES = ("inbox", "drafts", "sent", "archive", "junk", "trash")
SORTS = ("date", "arrival", "from", "subject", "size")  # the list's orders (`o` cycles them, [ui] sort)
_CHUNK = 500  # bound on the number of SQL variables per query
ROWS_PER_TX = 2000  # header rows per transaction (insert_headers): a sync window is 5000


class MessageRow(NamedTuple):
    id: int  # the local id
    sid: str  # the server's id (IMAP: the uid in decimal)
    flags: frozenset[str]  # canonical (tuimail.core.flags)
    keywords: str  # other keywords, space-separated, as the backend spells them
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
    def seen(self) -> bool:
        return SEEN in self.flags

    @property
    def flagged(self) -> bool:
        return FLAGGED in self.flags

    @property
    def answered(self) -> bool:
        return ANSWERED in self.flags


# the five flag columns as one small int (flag_set turns it into the canonical frozenset)
_MASK = MASK_SQL
_ROW_COLS = (f"id, sid, {_MASK}, keywords, date, from_, to_, cc, subject, message_id, in_reply_to, refs, size, "
             "has_attachment, coalesce(depth, 0), coalesce(prefix, ''), modseq")


@dataclass(frozen=True)
class FolderInfo:
    id: int
    name: str
    delimiter: str | None
    role: str | None
    attrs: str
    selectable: bool
    state: str | None  # the backend's sync state, opaque here (None: never synced)
    total: int
    unread: int
    synced_at: float | None
    error: str | None = None  # the server's last refusal of this folder (cleared by a good sync)
    gone: bool = False  # left the server's LIST while actions on it were waiting

    def display_name(self) -> str:
        if self.delimiter and self.delimiter in self.name:
            return self.name.rsplit(self.delimiter, 1)[1]
        return self.name


class Store:
    """One connection to an account's store. Not shared between threads.

    Made of parts sharing the connection and its transactions (conn.StoreConn): the journal of
    user intents (journal.Journal), the thread order (threads.ThreadOrder), the failed actions
    (failures.Failures), the undo history (undo.UndoLog). Store's methods of theirs are
    delegations, so callers know one object."""

    def __init__(self, path: Path | str, *, migrations: list[str] = MIGRATIONS):
        """migrations: the schema to bring the file to (a benchmark or a migration test may want
        an older one; tuimail itself always opens with all of them)."""
        self.path = Path(path)
        self._conn = StoreConn(self.path, migrations)
        self.db = self._conn.db
        self.journal = Journal(self._conn)
        self.threads = ThreadOrder(self._conn)
        self.failures = Failures(self._conn)
        self.undo = UndoLog(self._conn, self.journal)  # the undo history (undo.py)

    def close(self) -> None:
        self.db.close()

    def data_version(self) -> int:
        """Changes when another connection (another thread or process) commits to the file;
        a few microseconds (the UI polls it to notice a cron `tuimail sync`)."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        if isinstance(exc, sqlite3.Error):  # a damaged page, a full disk...: one line, the right cause
            raise store_error(exc, self.path) from None

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Atomic unit: every sync step commits all or nothing (nested calls join the outer one)."""
        return self._conn.transaction()

    @property
    def in_transaction(self) -> bool:
        """Inside transaction() (what is read there is the transaction's snapshot)."""
        return self._conn.in_transaction

    # ------------------------------------------------------------------ folders

    def folders(self) -> list[FolderInfo]:
        # both counts come from covering index scans, never from the table itself
        unseen = dict(self.db.execute("SELECT folder_id, count(*) FROM messages INDEXED BY msg_unseen"
                                      " WHERE seen = 0 AND hidden = 0 GROUP BY folder_id"))
        counts = {fid: (t, unseen.get(fid, 0)) for fid, t in self.db.execute(
            "SELECT folder_id, count(*) FROM messages INDEXED BY msg_date WHERE hidden = 0 GROUP BY folder_id")}
        out = []
        for r in self.db.execute(
                "SELECT id, name, delimiter, role, attrs, selectable, state,"
                " synced_at, server_total, server_unseen, error, gone FROM folders ORDER BY name"):
            total, unread = counts.get(r[0], (None, None))
            if total is None:  # never synced: show what STATUS said, if anything
                total, unread = r[8] or 0, r[9] or 0
            out.append(FolderInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6],
                                  int(total), int(unread), r[7], r[10], bool(r[11])))
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
            "SELECT id, name, delimiter, role, attrs, selectable, state,"
            f" synced_at, error, gone FROM folders WHERE {col} = ?", (name_or_id,)).fetchall()
        out = []
        for r in rows:
            total, unread = self.counts(r[0]) if counts else (-1, -1)
            out.append(FolderInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6],
                                  total, unread, r[7], r[8], bool(r[9])))
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
                self.failures.folder_back(row[0])
                return row[0]
            return int(self.db.execute(
                "INSERT INTO folders(name, delimiter, attrs, role, selectable) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (name, delimiter, attrs_s, role, int(selectable))).fetchone()[0])

    def delete_folder(self, name: str) -> None:
        """The folder is gone from the server: its rows go; pending actions on it cannot be replayed."""
        with self.transaction():
            self.db.execute("DELETE FROM folders WHERE name = ?", (name,))

    def folder_state(self, folder_id: int) -> str | None:
        """The backend's sync state of the folder, as it stored it (None: never synced)."""
        row = self.db.execute("SELECT state FROM folders WHERE id = ?", (folder_id,)).fetchone()
        return row[0] if row else None

    def set_folder_state(self, folder_id: int, state: str | None = None, *, server_total: int | None = None,
                         server_unseen: int | None = None, synced: bool = False) -> None:
        """state: the backend's opaque sync state (None: unchanged); the counts the server gave."""
        sets: list[str] = []
        args: list[object] = []
        for col, val in (("state", state), ("server_total", server_total), ("server_unseen", server_unseen)):
            if val is not None:
                sets.append(f"{col} = ?")
                args.append(val)
        if synced:
            sets.append("synced_at = ?")
            args.append(time.time())
        if sets:
            with self.transaction():
                self.db.execute(f"UPDATE folders SET {', '.join(sets)} WHERE id = ?", (*args, folder_id))

    def reset_folder(self, folder_id: int, state: str | None) -> None:
        """The server's ids of the folder are meaningless now (IMAP: UIDVALIDITY changed): its rows
        go. Journal entries survive without a row (sid NULL; msg_id, never given again, keeps the
        entries of one message together) and are matched again by
        Message-ID, size and date after the folder is refilled (journal_rematch). `state`: the
        backend's new sync state."""
        with self.transaction():
            # (sid NULL: the old server ids mean nothing now; Message-ID, size and date find them)
            self.db.execute("UPDATE journal SET sid = NULL WHERE folder_id = ?", (folder_id,))
            self.db.execute("DELETE FROM messages WHERE folder_id = ?", (folder_id,))
            self.db.execute("DELETE FROM threads WHERE folder_id = ?", (folder_id,))
            self.db.execute("UPDATE folders SET state = ?, threads_dirty = 1 WHERE id = ?", (state, folder_id))

    # ------------------------------------------------------------------ message rows (read side)

    @overload
    def id_list(self, folder_id: int, sort: str = ..., reverse: bool = ..., limit: int | None = ...,
                *, packed: Literal[False] = ...) -> list[int]: ...
    @overload
    def id_list(self, folder_id: int, sort: str = ..., reverse: bool = ..., limit: int | None = ...,
                *, packed: Literal[True]) -> array: ...
    def id_list(self, folder_id: int, sort: str = "date", reverse: bool = False,
                limit: int | None = None, *, packed: bool = False) -> list[int] | array:
        """The folder's ordered list of local ids: newest first for date/arrival unless reverse.

        This is the one query that returns every row of a folder (as bare ints); everything else
        asks for the visible ids only. With `limit`, only the first rows: for the date order that
        walks the date index and costs nothing at 100k (the first screen). Arrival is the server's
        order where its ids are numbers (IMAP uids), else the order rows were stored in.

        packed=True: an array('I') (4 bytes an id) made without a Python int per id — SQLite
        writes every id as 8 hex digits into one string, which becomes the array's bytes. The UI
        reloads a 100k list in a thread while a sync fills it: building 100k ints there held the
        GIL (and fed the collector) for ~15 ms each time, a stall of the UI thread.
        """
        order = {
            "date": "date DESC, id DESC",
            "arrival": "CAST(sid AS INTEGER) DESC, id DESC",
            "from": "from_ COLLATE NOCASE, date DESC",
            "subject": "subject COLLATE NOCASE, date DESC",
            "size": "size DESC, id DESC",
            "thread": "pos DESC, sub, id DESC",
        }.get(sort)
        if order is None:
            raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}, thread")
        if reverse:
            order = ", ".join(p.replace(" DESC", " ASC") if " DESC" in p else p + " DESC"
                              for p in (s.strip() for s in order.split(",")))
        # one string out of SQLite (the work in SQLite, without the GIL) and one conversion; 16
        # digits (array 'q') only once an id passed 32 bits (4 billion rows stored in the file)
        src = _WITH_THREADS if sort == "thread" else "messages"
        args = (folder_id,) if limit is None else (folder_id, max(0, int(limit)))
        for digits in (8, 16):
            count, joined = self.db.execute(
                f"SELECT count(*), group_concat(printf('%0{digits}x', id), '') FROM (SELECT id FROM {src}"
                f" WHERE folder_id = ? AND hidden = 0 ORDER BY {order}{' LIMIT ?' if limit is not None else ''})",
                args).fetchone()
            if not joined or len(joined) == digits * count:
                break
        ids = array("I" if digits == 8 else "q")
        if joined:
            ids.frombytes(bytes.fromhex(joined))
            if sys.byteorder == "little":
                ids.byteswap()  # (the hex digits are big-endian)
        return ids if packed else ids.tolist()

    def rows(self, folder_id: int, ids: Sequence[int]) -> dict[int, MessageRow]:
        out: dict[int, MessageRow] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = list(ids[i:i + _CHUNK])
            # (+folder_id: without it SQLite walked the folder's date index, 100k entries, for 88 ids)
            q = f"SELECT {_ROW_COLS} FROM {_WITH_THREADS} WHERE id IN ({','.join('?' * len(chunk))}) AND +folder_id = ?"
            for r in self.db.execute(q, (*chunk, folder_id)):
                out[r[0]] = MessageRow(r[0], r[1], flag_set(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                                       r[11], r[12], bool(r[13]), r[14], r[15], r[16])
        return out

    def row(self, folder_id: int, id: int) -> MessageRow | None:
        return self.rows(folder_id, [id]).get(id)

    def message_count(self, folder_id: int) -> int:
        """Every cached row of the folder, hidden ones included (what the server's MESSAGES counts)."""
        return self.db.execute("SELECT count(*) FROM messages INDEXED BY msg_date WHERE folder_id = ?",
                               (folder_id,)).fetchone()[0]

    def local_sids(self, folder_id: int) -> list[str]:
        """The server id of every cached row of the folder, hidden ones included (sync side)."""
        return [r[0] for r in self.db.execute("SELECT sid FROM messages INDEXED BY msg_sid WHERE folder_id = ?",
                                              (folder_id,))]

    def sid_of(self, ids: Iterable[int]) -> dict[int, str]:
        """{local id: server id} of the rows that exist."""
        ids = list(ids)
        out: dict[int, str] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            out.update(self.db.execute(f"SELECT id, sid FROM messages WHERE id IN ({','.join('?' * len(chunk))})",
                                       chunk))
        return out

    def ids_of(self, folder_id: int, sids: Iterable[str]) -> dict[str, int]:
        """{server id: local id} of the folder's rows that exist."""
        sids = [str(x) for x in sids]
        out: dict[str, int] = {}
        for i in range(0, len(sids), _CHUNK):
            chunk = sids[i:i + _CHUNK]
            out.update(self.db.execute(f"SELECT sid, id FROM messages WHERE folder_id = ? AND sid IN"
                                       f" ({','.join('?' * len(chunk))})", (folder_id, *chunk)))
        return out

    def find_by_message_id(self, folder_id: int, message_id: str) -> int | None:
        row = self.db.execute("SELECT id FROM messages WHERE folder_id = ? AND message_id = ? LIMIT 1",
                              (folder_id, message_id)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ sync side writes

    def set_missing_dates(self, folder_id: int, dates: dict[str, int]) -> list[int]:
        """Dates for rows that have none (no Date: header): the arrival time, by server id.
        Returns the local ids set."""
        done = []
        with self.transaction():
            for sid, ts in dates.items():
                row = self.db.execute("UPDATE messages SET date = ? WHERE folder_id = ? AND sid = ? AND date IS NULL"
                                      " RETURNING id", (ts, folder_id, str(sid))).fetchone()
                if row:
                    done.append(row[0])
        return done

    def insert_headers(self, folder_id: int, rows: Iterable[tuple]) -> list[int]:
        """rows: (sid, modseq, flags, keywords, date, from_, to, cc, subject, message_id, in_reply_to,
        refs, size, has_attachment), flags canonical (a frozenset), keywords a space-separated
        string; in the backend's order (IMAP: ascending uid). A new row gets the next local id; a
        known sid keeps its id and row (a refetch after a crash is harmless). Returns the rows'
        local ids, in the order given."""
        rows = list(rows)
        ids: list[int] = []
        # A few thousand rows per transaction (a window of 5000 held the write lock ~70 ms on a
        # busy machine): a user's intent waits for one of them, not for the window. Each row is
        # whole in its transaction; a crash between two leaves rows a resync does not fetch again.
        for i in range(0, len(rows), ROWS_PER_TX):
            if i:
                yield_to_intents(self.path)
            with self.transaction():  # (the pending intents are read under the write lock)
                pend = self.journal.pending_flag_deltas(folder_id, "sid")
                data = []
                for r in rows[i:i + ROWS_PER_TX]:
                    flags, kw = r[2], r[3]
                    if pend and r[0] in pend:
                        flags, kw = split_flags(_apply({*flags, *kw.split()}, *pend[r[0]]))
                    data.append((folder_id, r[0], r[1] or 0, *flag_cols(flags), kw, *r[4:]))
                before = self._last_id()
                self._insert_rows(data)
                # every row new: they took the next ids, in order (a known sid that was updated
                # instead still uses up an id: the sequence says nothing, the rows do)
                new = [r[0] for r in self.db.execute("SELECT id FROM messages WHERE id > ? ORDER BY id", (before,))]
                if len(new) == len(data):
                    ids += new
                else:  # (some were known: they kept theirs)
                    known = self.ids_of(folder_id, [r[1] for r in data])
                    ids += [known[r[1]] for r in data if r[1] in known]
                # new rows only: they are threaded with the threads they join (threads.py)
                self.db.execute("UPDATE folders SET threads_dirty = ? WHERE id = ? AND threads_dirty = ?",
                                (THREADS_NEW, folder_id, THREADS_CLEAN))
        return ids

    def _insert_rows(self, data: list[tuple]) -> None:
        """Every row new (a first fill, new mail): a plain INSERT. An upsert costs ~20 % more per
        row even when nothing conflicts, because the search index's AFTER UPDATE trigger is
        compiled into it (measured: 100k rows 0.76 s plain, 0.91 s upsert, tests/bench/search_bench.py).
        A known sid among them (a refetch after a crash) rolls the batch back to the savepoint and
        upserts it instead."""
        self.db.execute("SAVEPOINT insert_rows")
        try:
            self.db.executemany(_INSERT_NEW, data)
        except sqlite3.IntegrityError:
            self.db.execute("ROLLBACK TO insert_rows")
            self.db.executemany(_INSERT, data)
        finally:
            self.db.execute("RELEASE insert_rows")

    def _last_id(self) -> int:
        """The last local id given (AUTOINCREMENT: never given again)."""
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        return row[0] if row else 0

    def apply_server_flags(self, folder_id: int,
                           updates: Iterable[tuple[str, Iterable[str], str, int | None]]) -> list[int]:
        """Server truth for (sid, canonical flags, keywords, modseq); pending user intents stay
        applied on top. Returns the local ids whose visible flags changed."""
        updates = list(updates)
        if not updates:
            return []
        sids = [u[0] for u in updates]
        changed, data = [], []
        # Read the rows and the pending intents under the write lock: an intent committed by the
        # UI between the read and the write would otherwise be painted over until the next sync.
        with self.transaction():
            pend = self.journal.pending_flag_deltas(folder_id, "sid")
            current = {}
            for i in range(0, len(sids), _CHUNK):
                chunk = sids[i:i + _CHUNK]
                for sid, id_, mask, kw in self.db.execute(
                        f"SELECT sid, id, {_MASK}, keywords FROM messages WHERE folder_id = ?"
                        f" AND sid IN ({','.join('?' * len(chunk))})", (folder_id, *chunk)):
                    current[sid] = (id_, flag_set(mask), kw)
            for sid, flags, kw, modseq in updates:
                cur = current.get(sid)
                if cur is None:
                    continue  # not cached yet (new mail is fetched separately)
                flags = frozenset(flags)
                kw = kw if isinstance(kw, str) else norm_flags(kw)
                if sid in pend:
                    flags, kw = split_flags(_apply({*flags, *kw.split()}, *pend[sid]))
                if (flags, kw) != cur[1:]:
                    changed.append(cur[0])
                data.append((*flag_cols(flags), kw, modseq, cur[0]))
            if data:
                self.db.executemany(
                    "UPDATE messages SET seen = ?, flagged = ?, answered = ?, draft = ?, deleted = ?, keywords = ?,"
                    " modseq = coalesce(?, modseq) WHERE id = ?", data)
        return changed

    def remove_sids(self, folder_id: int, sids: Iterable[str]) -> list[int]:
        """Expunged on the server (by anyone): the expunge wins over pending flag changes.
        Returns the local ids removed."""
        sids = [str(x) for x in sids]
        removed: list[int] = []
        with self.transaction():
            for i in range(0, len(sids), _CHUNK):
                chunk = sids[i:i + _CHUNK]
                ids = [r[0] for r in self.db.execute(
                    f"SELECT id FROM messages WHERE folder_id = ? AND sid IN ({','.join('?' * len(chunk))})",
                    (folder_id, *chunk))]
                if not ids:
                    continue
                removed += ids
                ph = ",".join("?" * len(ids))
                self.db.execute(f"DELETE FROM messages WHERE id IN ({ph})", ids)
                self.db.execute(f"DELETE FROM threads WHERE folder_id = ? AND id IN ({ph})", (folder_id, *ids))
                self.db.execute(f"DELETE FROM journal WHERE msg_id IN ({ph})", ids)
            if removed:
                self.db.execute("UPDATE folders SET threads_dirty = 1 WHERE id = ?", (folder_id,))
        return removed

    def move_row(self, src_folder: int, id: int, dest_folder: int, new_sid: str) -> None:
        """After a server MOVE that told the new server id (IMAP COPYUID): the row appears at once
        in the destination, with the same local id."""
        self.move_rows(src_folder, [(id, new_sid)], dest_folder)

    def move_rows(self, src_folder: int, moved: Iterable[tuple[int, str]], dest_folder: int) -> None:
        """move_row for many (local id, new server id) pairs, in one transaction (a bulk move of
        thousands: one commit, not one each)."""
        with self.transaction():
            for id, new_sid in moved:
                self._move_row(src_folder, id, dest_folder, new_sid)

    def copy_rows(self, src_folder: int, copied: Iterable[tuple[int, str]], dest_folder: int) -> list[int]:
        """After a server COPY that told the copies' server ids (IMAP COPYUID; JMAP: the same
        id): each copy appears at once in the destination as a new row (a new local id). A
        destination that has the server id already (a sync that raced) keeps its row. Returns
        the new local ids."""
        out = []
        with self.transaction():
            for id, new_sid in copied:
                new = copy_row(self.db, id, src_folder, dest_folder, str(new_sid))
                if new is not None:
                    out.append(new)
            if out:
                self.db.execute("UPDATE folders SET threads_dirty = 1 WHERE id = ?", (dest_folder,))
        return out

    def _move_row(self, src_folder: int, id: int, dest_folder: int, new_sid: str) -> None:
        # (a row the destination holds already under that sid, from a sync that raced: it goes)
        self.db.execute("DELETE FROM messages WHERE folder_id = ? AND sid = ? AND id != ?",
                        (dest_folder, str(new_sid), id))
        self.db.execute("UPDATE messages SET folder_id = ?, sid = ?, modseq = 0, hidden = 0 WHERE id = ?"
                        " AND folder_id = ?", (dest_folder, str(new_sid), id, src_folder))
        self.db.execute("DELETE FROM threads WHERE folder_id = ? AND id = ?", (src_folder, id))
        self.db.execute("UPDATE folders SET threads_dirty = 1 WHERE id IN (?, ?)", (src_folder, dest_folder))
        # flag changes made while the move was on the wire (`tuimail flag` on the hidden row)
        # follow the message; the move's own entry is deleted by id by the caller
        self.db.execute("UPDATE journal SET folder_id = ?, sid = ?, state = 'pending' WHERE msg_id = ?"
                        " AND op = 'flags' AND state != 'failed'", (dest_folder, str(new_sid), id))

    # ------------------------------------------------------------------ the parts' methods (delegations)
    # user intents and the journal (journal.Journal)

    def set_flags(self, folder_id: int, ids: Iterable[int], add: Iterable[str] = (),
                  remove: Iterable[str] = ()) -> list[int]:
        return self.journal.set_flags(folder_id, ids, add, remove)

    def move(self, folder_id: int, ids: Iterable[int], dest: str) -> list[int]:
        return self.journal.move(folder_id, ids, dest)

    def expunge(self, folder_id: int, ids: Iterable[int]) -> list[int]:
        return self.journal.expunge(folder_id, ids)

    def copy(self, folder_id: int, ids: Iterable[int], dest: str) -> list[int]:
        return self.journal.copy(folder_id, ids, dest)

    def pending(self, folder_id: int | None = None) -> list[JournalEntry]:
        return self.journal.pending(folder_id)

    def journal_claim(self, folder_id: int) -> list[JournalEntry]:
        return self.journal.journal_claim(folder_id)

    def journal_release(self, ids: Iterable[int]) -> None:
        self.journal.journal_release(ids)

    def pending_count(self) -> int:
        return self.journal.pending_count()

    def pending_folders(self) -> set[str]:
        return self.journal.pending_folders()

    def journal_done(self, ids: Iterable[int]) -> None:
        self.journal.journal_done(ids)

    def journal_failed(self, entry_id: int, error: str, *, final: bool = False) -> None:
        self.journal.journal_failed(entry_id, error, final=final)

    # failed actions and gone folders (failures.Failures)

    def actions(self, *, failed_only: bool = False) -> list[ActionInfo]:
        return self.failures.actions(failed_only=failed_only)

    def failed_summary(self) -> list[tuple[str, int]]:
        return self.failures.failed_summary()

    def failed_count(self) -> int:
        return self.failures.failed_count()

    def discard(self, ids: Iterable[int]) -> list[tuple[int, int]]:
        return self.failures.discard(ids)

    def folder_vanished(self, name: str) -> str:
        return self.failures.folder_vanished(name)

    def folder_back(self, folder_id: int) -> None:
        self.failures.folder_back(folder_id)

    def set_folder_error(self, folder_id: int, error: str | None) -> None:
        self.failures.set_folder_error(folder_id, error)

    def journal_rematch(self, folder_id: int) -> int:
        return self.failures.journal_rematch(folder_id)

    # thread order (threads.ThreadOrder)

    def headers_for_threading(self, folder_id: int, uids: Iterable[int] | None = None) -> list[tuple]:
        return self.threads.headers_for_threading(folder_id, uids)

    def thread_info(self, folder_id: int) -> list[tuple[int, int, int | None]]:
        return self.threads.thread_info(folder_id)

    def thread_unread(self, folder_id: int) -> dict[int, int]:
        return self.threads.thread_unread(folder_id)

    def threads_state(self, folder_id: int) -> int:
        return self.threads.threads_state(folder_id)

    def thread_view(self, folder_id: int) -> tuple[list, dict[int, int], bool]:
        return self.threads.thread_view(folder_id)

    def threads_writing(self, folder_id: int) -> bool:
        return self.threads.threads_writing(folder_id)

    def unthreaded_ids(self, folder_id: int) -> list[int]:
        return self.threads.unthreaded_ids(folder_id)

    def thread_closure(self, folder_id: int, seeds: Sequence[int], limit: int) -> list[int] | None:
        return self.threads.thread_closure(folder_id, seeds, limit)

    def thread_members(self, folder_id: int, id: int, limit: int = 5000) -> list[int]:
        return self.threads.thread_members(folder_id, id, limit)

    def set_threads(self, folder_id: int, order: Iterable[tuple[int, int, int, str]],
                    uids: Sequence[int] | None = None) -> None:
        self.threads.set_threads(folder_id, order, uids)

_INSERT_NEW = ("INSERT INTO messages(folder_id, sid, modseq, seen, flagged, answered, draft, deleted, keywords,"
               " date, from_, to_, cc, subject, message_id, in_reply_to, refs, size, has_attachment) VALUES"
               " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT = ("INSERT INTO messages(folder_id, sid, modseq, seen, flagged, answered, draft, deleted, keywords, date,"
           " from_, to_, cc, subject, message_id, in_reply_to, refs, size, has_attachment) VALUES"
           " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
           " ON CONFLICT(folder_id, sid) DO UPDATE SET modseq = excluded.modseq, seen = excluded.seen,"
           " flagged = excluded.flagged, answered = excluded.answered, draft = excluded.draft,"
           " deleted = excluded.deleted, keywords = excluded.keywords, date = excluded.date,"
           " from_ = excluded.from_, to_ = excluded.to_, cc = excluded.cc, subject = excluded.subject,"
           " message_id = excluded.message_id, in_reply_to = excluded.in_reply_to, refs = excluded.refs,"
           " size = excluded.size, has_attachment = excluded.has_attachment")
