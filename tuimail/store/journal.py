"""User intents and the journal of pending actions (a part of Store: Store.journal).

An intent changes the row the user sees *and* appends a journal entry in one transaction; the
sync engine replays the journal and deletes an entry only after the server confirmed it.

An entry's `state`: 'pending' (waiting), 'sending' (claimed by the engine: its command may be on
the wire, or may have reached the server before a crash), 'failed'. The engine deletes a sent
entry by id once the server confirmed it, so only a 'pending' entry may absorb a newer intent for
the same message (and only one never refused, so that the newer intent does not share its fate);
otherwise the newer intent becomes a new entry, sent after it. Whatever the state, an entry
counts as pending for the flags shown (the server's flags with every entry applied on top, in id
order).

An entry names its message by local id (`msg_id`) and by the server id it had then (`sid`).
An entry without either is not sent until its message is found again (journal_rematch): sid is
NULL after the server reset the folder's ids (msg_id then names a row that is gone; ids are never
given again), msg_id is NULL in a repaired store (the server ids are still good there). Its
flags are canonical names (tuimail.core.flags) or keywords as the backend spells them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from tuimail.core.flags import CANONICAL
from tuimail.store.conn import StorePart

_CHUNK = 500
FLAG_COLS = CANONICAL  # the messages columns, in this order (seen, flagged, answered, draft, deleted)
# every combination of the five flag columns (bit i: FLAG_COLS[i]) as a frozenset, and back
_SETS = tuple(frozenset(f for i, f in enumerate(FLAG_COLS) if m >> i & 1) for m in range(32))
_COLS = {fs: tuple(int(f in fs) for f in FLAG_COLS) for fs in _SETS}
_CANON = frozenset(CANONICAL)
# the five flag columns as one small int, bit i for FLAG_COLS[i] (SQLite's | and << bind alike)
MASK_SQL = "(seen | (flagged << 1) | (answered << 2) | (draft << 3) | (deleted << 4))"


def flag_set(mask: int) -> frozenset[str]:
    return _SETS[mask]


def flag_cols(flags: frozenset[str]) -> tuple[int, ...]:
    """The five column values of a canonical flag set (a frozenset: one dict lookup a row)."""
    cols = _COLS.get(flags)
    return cols if cols is not None else tuple(int(f in flags) for f in FLAG_COLS)


def split_flags(tokens: Iterable[str]) -> tuple[frozenset[str], str]:
    """(canonical flags, the other keywords as the keywords column holds them)."""
    tokens = set(tokens)
    return frozenset(tokens & _CANON), norm_flags(tokens - _CANON)


@dataclass(frozen=True)
class JournalEntry:
    id: int
    folder_id: int
    folder: str
    msg_id: int | None  # the local id (None in a repaired store until the next sync links it)
    sid: str | None  # its server id when the entry was made (None: lost after the server reset its ids)
    message_id: str | None
    op: str
    add_flags: tuple[str, ...]
    remove_flags: tuple[str, ...]
    dest: str | None
    attempts: int
    last_error: str | None
    state: str = "pending"  # 'pending' | 'sending' | 'failed' (kept for the user to see and discard)


_COPY_COLS = ("seen, flagged, answered, draft, deleted, keywords, date, from_, to_, cc, subject, message_id,"
              " in_reply_to, refs, size, has_attachment")


def copy_row(db, id_: int, folder_id: int, dest_id: int, sid: str | None) -> int | None:
    """A new row in folder `dest_id` holding row `id_`'s headers and flags under server id `sid`
    (None: a local one, unique), with a new local id; None when the row is not there (or `dest_id`
    holds `sid` already: a sync that raced brought it). Inside the caller's transaction."""
    if sid is None:
        got = db.execute("SELECT sid FROM messages WHERE id = ? AND folder_id = ? AND hidden = 0",
                         (id_, folder_id)).fetchone()
        if got is None:
            return None
        sid = f"{got[0]}#c{id_}.{time.time_ns()}"
    cur = db.execute(f"INSERT INTO messages(folder_id, sid, {_COPY_COLS}) SELECT ?, ?, {_COPY_COLS}"
                     " FROM messages WHERE id = ? AND folder_id = ? ON CONFLICT(folder_id, sid) DO NOTHING",
                     (dest_id, sid, id_, folder_id))
    return cur.lastrowid if cur.rowcount else None


def norm_flags(flags: Iterable[str]) -> str:
    return " ".join(sorted({f for f in flags if f}))


def _apply(flags: set[str], add: Iterable[str], remove: Iterable[str]) -> set[str]:
    flags = set(flags)
    flags.difference_update(remove)
    flags.update(add)
    return flags


# {key (a local id or a server id): (flags added, flags removed)}
FlagDeltas = dict[int | str, tuple[set[str], set[str]]]


class Journal(StorePart):
    """Intents and the journal, on the store's connection (in its transactions)."""

    # ------------------------------------------------------------------ user intents (store + journal)

    def set_flags(self, folder_id: int, ids: Iterable[int], add: Iterable[str] = (),
                  remove: Iterable[str] = ()) -> list[int]:
        """The user changes flags (canonical names, or keywords): the row changes now, the
        journal carries it to the server. Returns the local ids changed."""
        add, remove = tuple(sorted(set(add))), tuple(sorted(set(remove) - set(add)))
        for f in add + remove:  # flags are stored space-separated: one bad one would become several
            if not f or any(c.isspace() or ord(c) < 32 for c in f):
                raise ValueError(f"invalid flag {f!r}")
        changed = []
        now = time.time()
        with self.transaction():
            local = self._local(folder_id)
            for id_ in ids:
                row = self.db.execute(f"SELECT {MASK_SQL}, keywords, message_id, sid FROM messages"
                                      " WHERE id = ? AND folder_id = ?",
                                      (id_, folder_id)).fetchone()
                if row is None:
                    continue
                old = {*flag_set(row[0]), *row[1].split()}
                new = _apply(old, add, remove)
                eff_add = tuple(f for f in add if f not in old)
                eff_remove = tuple(f for f in remove if f in old)
                if not eff_add and not eff_remove:
                    continue
                flags, kw = split_flags(new)
                self.db.execute("UPDATE messages SET seen = ?, flagged = ?, answered = ?, draft = ?, deleted = ?,"
                                " keywords = ? WHERE id = ?", (*flag_cols(flags), kw, id_))
                if not local:
                    self._journal_flags(folder_id, id_, row[3], row[2], eff_add, eff_remove, now)
                changed.append(id_)
        return changed

    def _journal_flags(self, folder_id: int, id_: int, sid: str, message_id: str | None, add: tuple[str, ...],
                       remove: tuple[str, ...], now: float) -> None:
        # Coalesce with the message's latest flags entry (one STORE per intent net), unless it is
        # on the wire (deleted by id once confirmed: whatever was merged into it would go with it)
        # or was refused before (the newer intent should not share its fate).
        prev = self.db.execute("SELECT id, add_flags, remove_flags, state, attempts FROM journal"
                               " WHERE msg_id = ? AND op = 'flags' ORDER BY id DESC LIMIT 1",
                               (id_,)).fetchone()
        later_move = prev and self.db.execute(
            "SELECT 1 FROM journal WHERE msg_id = ? AND op != 'flags' AND id > ?",
            (id_, prev[0])).fetchone()
        if prev and not later_move and prev[3] == "pending" and prev[4] == 0:
            a, r = set(prev[1].split()), set(prev[2].split())
            a = (a - set(remove)) | set(add)
            r = (r - set(add)) | set(remove)
            if not a and not r:
                self.db.execute("DELETE FROM journal WHERE id = ?", (prev[0],))
            else:
                self.db.execute("UPDATE journal SET add_flags = ?, remove_flags = ? WHERE id = ?",
                                (norm_flags(a), norm_flags(r), prev[0]))
            return
        self.db.execute("INSERT INTO journal(created, folder_id, msg_id, sid, message_id, op, add_flags, remove_flags,"
                        " msg_size, msg_date) SELECT ?, ?, ?, ?, ?, 'flags', ?, ?, size, date FROM messages"
                        " WHERE id = ?", (now, folder_id, id_, sid, message_id, norm_flags(add),
                                          norm_flags(remove), id_))

    def move(self, folder_id: int, ids: Iterable[int], dest: str) -> list[int]:
        """Move to folder `dest` (also how delete-to-Trash works). Hidden here at once."""
        return self._hide_with(folder_id, ids, "move", dest)

    def expunge(self, folder_id: int, ids: Iterable[int]) -> list[int]:
        """Delete for good (IMAP: deleted + UID EXPUNGE of just these messages)."""
        return self._hide_with(folder_id, ids, "expunge", None)

    def copy(self, folder_id: int, ids: Iterable[int], dest: str) -> list[int]:
        """Copy to folder `dest`: the row stays here; the copy's row appears in `dest` when the
        server names it (IMAP COPYUID, JMAP: the same id), else with the next sync of `dest`. A
        local folder's (POP3) copy is made at once: a new row (a new local id) with the stored
        message. Returns the local ids copied (here)."""
        done = []
        now = time.time()
        with self.transaction():
            if self._local(folder_id):
                return self._local_copy(folder_id, ids, dest)
            for id_ in ids:
                row = self.db.execute("SELECT message_id, size, date, sid FROM messages WHERE id = ? AND folder_id = ?"
                                      " AND hidden = 0", (id_, folder_id)).fetchone()
                if row is None:
                    continue
                self.db.execute("INSERT INTO journal(created, folder_id, msg_id, sid, message_id, op, dest, msg_size,"
                                " msg_date) VALUES (?, ?, ?, ?, ?, 'copy', ?, ?, ?)",
                                (now, folder_id, id_, row[3], row[0], dest, row[1], row[2]))
                done.append(id_)
        return done

    def _local_copy(self, folder_id: int, ids: Iterable[int], dest: str) -> list[int]:
        row = self.db.execute("SELECT id, local FROM folders WHERE name = ?", (dest,)).fetchone()
        if row is None or not row[1]:
            raise ValueError(f"no local folder {dest!r} to copy to")
        dest_id = row[0]
        done = []
        for id_ in ids:
            # only a downloaded message is copied: one whose body is still to come (headers_first)
            # has no stored copy yet, and its copy would have none to fetch it by (no ledger entry)
            if self.db.execute("SELECT 1 FROM pop3_raw WHERE msg_id = ? AND NOT EXISTS (SELECT 1 FROM pop3_ledger"
                               " WHERE msg_id = ? AND has_body = 0)", (id_, id_)).fetchone() is None:
                continue
            new = copy_row(self.db, id_, folder_id, dest_id, None)
            if new is None:
                continue
            self.db.execute("INSERT INTO pop3_raw(msg_id, raw) SELECT ?, raw FROM pop3_raw WHERE msg_id = ?",
                            (new, id_))
            done.append(id_)
        if done:
            self.db.execute("UPDATE folders SET threads_dirty = 1 WHERE id = ?", (dest_id,))
        return done

    def _local(self, folder_id: int) -> bool:
        """A local folder (a POP3 account's): its changes are made here only, never journalled."""
        row = self.db.execute("SELECT local FROM folders WHERE id = ?", (folder_id,)).fetchone()
        return bool(row and row[0])

    def _local_move(self, folder_id: int, ids, dest: str | None) -> list[int]:
        """A move between local folders, or a delete for good (dest None), done at once: the row
        keeps its local id; a deleted row takes what hangs on it (a POP3 message's stored copy)."""
        dest_id = None
        if dest is not None:
            row = self.db.execute("SELECT id, local FROM folders WHERE name = ?", (dest,)).fetchone()
            if row is None or not row[1]:
                raise ValueError(f"no local folder {dest!r} to move to")
            dest_id = row[0]
            if dest_id == folder_id:
                return []
        done = []
        for id_ in ids:
            row = self.db.execute("SELECT sid FROM messages WHERE id = ? AND folder_id = ? AND hidden = 0",
                                  (id_, folder_id)).fetchone()
            if row is None:
                continue
            if dest_id is None:
                self.db.execute("DELETE FROM messages WHERE id = ?", (id_,))
            else:
                sid = row[0]  # (another row there with the same server id: keep both)
                if self.db.execute("SELECT 1 FROM messages WHERE folder_id = ? AND sid = ?", (dest_id, sid)).fetchone():
                    sid = f"{sid}#{id_}"
                self.db.execute("UPDATE messages SET folder_id = ?, sid = ? WHERE id = ?", (dest_id, sid, id_))
            self.db.execute("DELETE FROM threads WHERE folder_id = ? AND id = ?", (folder_id, id_))
            done.append(id_)
        if done:
            self.db.execute("UPDATE folders SET threads_dirty = 1 WHERE id IN (?, ?)",
                            (folder_id, dest_id or folder_id))
        return done

    def _hide_with(self, folder_id, ids, op, dest) -> list[int]:
        done = []
        now = time.time()
        with self.transaction():
            if self._local(folder_id):
                return self._local_move(folder_id, ids, dest)
            for id_ in ids:
                row = self.db.execute("SELECT message_id, size, date, sid FROM messages WHERE id = ? AND folder_id = ?"
                                      " AND hidden = 0", (id_, folder_id)).fetchone()
                if row is None:
                    continue
                self.db.execute("UPDATE messages SET hidden = 1 WHERE id = ?", (id_,))
                self.db.execute("INSERT INTO journal(created, folder_id, msg_id, sid, message_id, op, dest, msg_size,"
                                " msg_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (now, folder_id, id_, row[3], row[0], op, dest, row[1], row[2]))
                done.append(id_)
        return done

    # ------------------------------------------------------------------ journal

    _ENTRY_SQL = ("SELECT j.id, j.folder_id, f.name, j.msg_id, j.sid, j.message_id, j.op, j.add_flags,"
                  " j.remove_flags, j.dest, j.attempts, j.last_error, j.state FROM journal j"
                  " JOIN folders f ON f.id = j.folder_id")

    def _entries(self, where: str, args: tuple[object, ...]) -> list[JournalEntry]:
        return [JournalEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], tuple(r[7].split()), tuple(r[8].split()),
                             r[9], r[10], r[11], r[12])
                for r in self.db.execute(self._ENTRY_SQL + where + " ORDER BY j.id", args)]

    def pending(self, folder_id: int | None = None) -> list[JournalEntry]:
        """Every entry not yet confirmed by the server (being sent included), oldest first; failed
        ones are not replayed (see failed_entries)."""
        if folder_id is None:
            return self._entries(" WHERE j.state != 'failed'", ())
        return self._entries(" WHERE j.state != 'failed' AND j.folder_id = ?", (folder_id,))

    def journal_claim(self, folder_id: int) -> list[JournalEntry]:
        """The engine takes the folder's entries it is about to send, oldest first, in one
        transaction: from then on they are immutable (newer intents become new entries). Entries
        a crash or a cut connection left 'sending' are taken again: their outcome is unknown and
        sending a flag change, a move or an expunge twice is harmless. Only the syncer holding the
        account lock calls this, so no other 'sending' entry is in flight."""
        with self.transaction():
            self.db.execute("UPDATE journal SET state = 'sending' WHERE folder_id = ? AND msg_id IS NOT NULL"
                            " AND sid IS NOT NULL AND state = 'pending'", (folder_id,))
            return self._entries(" WHERE j.folder_id = ? AND j.msg_id IS NOT NULL AND j.sid IS NOT NULL"
                                 " AND j.state = 'sending'", (folder_id,))

    def journal_release(self, ids: Iterable[int]) -> None:
        """Claimed entries that were not sent after all: back to 'pending' (still immutable if
        tried before: see _journal_flags)."""
        ids = list(ids)
        with self.transaction():
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                self.db.execute(f"UPDATE journal SET state = 'pending' WHERE state = 'sending'"
                                f" AND id IN ({','.join('?' * len(chunk))})", chunk)

    def pending_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM journal WHERE state != 'failed'").fetchone()[0]

    def pending_folders(self) -> set[str]:
        """Names of the folders that have actions waiting to be sent (a folder the server refused
        or that left its LIST is tried again by the next full sync, not at every wake-up)."""
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT f.name FROM journal j JOIN folders f ON f.id = j.folder_id"
            " WHERE j.state != 'failed' AND f.error IS NULL AND f.gone = 0")}

    def journal_done(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        with self.transaction():
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                self.db.execute(f"DELETE FROM journal WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def journal_failed(self, entry_id: int, error: str, *, final: bool = False) -> None:
        """The server refused the entry; final: for good (kept as 'failed' for the user)."""
        with self.transaction():
            # (attempts > 0 also keeps newer intents out of it: see _journal_flags)
            self.db.execute("UPDATE journal SET attempts = attempts + 1, last_error = ?,"
                            " state = CASE WHEN ? THEN 'failed' ELSE 'pending' END WHERE id = ?",
                            (error[:500], int(final), entry_id))

    def pending_flag_deltas(self, folder_id: int, key: str = "msg_id") -> FlagDeltas:
        """Net flag changes per message (by `key`: 'msg_id' or 'sid') of every entry not yet
        confirmed, 'sending' ones included (the server may not have them yet), applied in id
        order. Call it inside the transaction that writes the rows, so that an intent committed
        meanwhile is not painted over."""
        out: FlagDeltas = {}
        col = "sid" if key == "sid" else "msg_id"
        for k, a, r in self.db.execute(f"SELECT {col}, add_flags, remove_flags FROM journal"
                                       " WHERE folder_id = ? AND op = 'flags' AND msg_id IS NOT NULL"
                                       " AND sid IS NOT NULL ORDER BY id",
                                       (folder_id,)):
            add, rem = out.setdefault(k, (set(), set()))
            for f in a.split():
                add.add(f)
                rem.discard(f)
            for f in r.split():
                rem.add(f)
                add.discard(f)
        return out
