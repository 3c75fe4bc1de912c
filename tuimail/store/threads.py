"""Thread order, stored by the sync side so the UI never needs every header (a part of Store:
Store.threads).

The order is derived data in a narrow table of its own, (folder_id, id) -> (pos, sub, depth,
root, prefix): pos = the thread's latest date << 32 | its root id (threads shown in descending
order), sub = the row's place inside its thread. Store deletes a row's entry with the row.

folders.threads_dirty says what is out of date: THREADS_ALL after anything that removed rows
(their threads must be drawn again), THREADS_NEW when rows were only added. New rows are the ones
without an entry; `thread_closure` finds every row they are linked to, so new mail in a 100k
folder is threaded with the few threads it joins instead of the whole folder.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence

from tuimail.store.conn import StorePart
from tuimail.store.db import key_order
from tuimail.store.writer import yield_to_intents

THREADS_CLEAN, THREADS_ALL, THREADS_NEW = 0, 1, 2
# Being written in several transactions (set_threads): readers keep the order they have. Left
# behind by a crash, it reads as THREADS_ALL (threads_state): the whole folder is threaded again.
THREADS_WRITING = 3
# Thread entries written per transaction: a first fill of 100k rows held the write lock for
# ~240 ms in one; a user's flag waited behind it. A few thousand rows take a few ms.
ROWS_PER_TX = 4000

# A message row with its place in the thread order (none until the sync side has threaded it).
_WITH_THREADS = "messages LEFT JOIN threads USING (folder_id, id)"
_root_of_entry = operator.itemgetter(2)  # thread_order's (id, depth, root, prefix)
_CHUNK = 500  # SQL variables per query
_IDS_PER_SCAN = 50  # Message-IDs looked for in one scan of the folder (one instr() each per row)
_THREADING_COLS = "id, message_id, in_reply_to, refs, date"


def _chunks(items: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class ThreadOrder(StorePart):
    """The thread order of the store's folders, on the store's connection."""

    def headers_for_threading(self, folder_id: int, uids: Iterable[int] | None = None) -> list[tuple]:
        """(id, message_id, in_reply_to, refs, date) of every row, or of `uids`, in id order
        (the order threading reads them in, so a part is threaded as it is in the whole)."""
        if uids is None:
            return self.db.execute(f"SELECT {_THREADING_COLS} FROM messages WHERE folder_id = ? ORDER BY id",
                                   (folder_id,)).fetchall()
        out: list[tuple] = []
        for chunk in _chunks(sorted(set(uids)), _CHUNK):
            out += self.db.execute(f"SELECT {_THREADING_COLS} FROM messages WHERE folder_id = ?"
                                   f" AND id IN ({','.join('?' * len(chunk))}) ORDER BY id", (folder_id, *chunk))
        return out

    def thread_members(self, folder_id: int, id: int, limit: int = 5000) -> list[int]:
        """The visible rows of the thread `id` is in (a thread-wide action): its group in the
        stored order (what the threaded view draws), with the rows linked to it by Message-ID,
        In-Reply-To or References that are not threaded yet (new mail)."""
        root = self.db.execute("SELECT coalesce(root, id) FROM threads WHERE folder_id = ? AND id = ?",
                               (folder_id, id)).fetchone()
        found = {id}
        if root is not None:
            found.update(r[0] for r in self.db.execute(
                "SELECT id FROM threads WHERE folder_id = ? AND coalesce(root, id) = ?", (folder_id, root[0])))
        found.update(self.thread_closure(folder_id, [id], limit) or ())
        out: list[int] = []
        for chunk in _chunks(sorted(found), _CHUNK):
            out += [r[0] for r in self.db.execute(f"SELECT id FROM messages WHERE folder_id = ? AND hidden = 0"
                                                  f" AND id IN ({','.join('?' * len(chunk))})", (folder_id, *chunk))]
        return out

    def thread_info(self, folder_id: int) -> list[tuple[int, int, int | None]]:
        """(id, depth, root id) in thread order, for collapse/expand in the UI."""
        return self.db.execute(
            f"SELECT id, coalesce(depth, 0), root FROM {_WITH_THREADS} WHERE folder_id = ? AND hidden = 0"
            " ORDER BY pos DESC, sub, id DESC", (folder_id,)).fetchall()

    def thread_unread(self, folder_id: int) -> dict[int, int]:
        """{thread root id: unread messages in that thread}, threads without unread left out
        (what a collapsed thread shows: "(5, 2 unread)"). Uses the partial index of unseen rows."""
        return dict(self.db.execute(
            f"SELECT coalesce(root, id), count(*) FROM {_WITH_THREADS} WHERE folder_id = ? AND seen = 0"
            " AND hidden = 0 GROUP BY 1", (folder_id,)))

    def threads_state(self, folder_id: int) -> int:
        """THREADS_CLEAN, THREADS_NEW (rows were added since the last threading) or THREADS_ALL."""
        row = self.db.execute("SELECT threads_dirty FROM folders WHERE id = ?", (folder_id,)).fetchone()
        return row[0] if row and row[0] in (THREADS_NEW, THREADS_CLEAN) else THREADS_ALL

    def thread_view(self, folder_id: int) -> tuple[list, dict[int, int], bool]:
        """(thread_info, thread_unread, threads_writing) read in one snapshot: whether the order
        is half written is true of the order read with it."""
        if self._conn.in_transaction:
            return self.thread_info(folder_id), self.thread_unread(folder_id), self.threads_writing(folder_id)
        self.db.execute("BEGIN")
        try:
            return self.thread_info(folder_id), self.thread_unread(folder_id), self.threads_writing(folder_id)
        finally:
            self.db.execute("COMMIT")

    def threads_writing(self, folder_id: int) -> bool:
        """The thread order is half written (set_threads between two transactions)."""
        row = self.db.execute("SELECT threads_dirty FROM folders WHERE id = ?", (folder_id,)).fetchone()
        return bool(row) and row[0] == THREADS_WRITING

    def unthreaded_ids(self, folder_id: int) -> list[int]:
        """Rows without a thread entry: the ones added since the last threading."""
        return [u for u, in self.db.execute(
            "SELECT id FROM messages m WHERE folder_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM threads t WHERE t.folder_id = m.folder_id AND t.id = m.id)", (folder_id,))]

    def thread_closure(self, folder_id: int, seeds: Sequence[int], limit: int) -> list[int] | None:
        """`seeds` and every row linked to them, transitively: two rows are linked when one's
        Message-ID, In-Reply-To or References names an id the other names too. That is every
        row whose threading can depend on the seeds, in whole groups, so threading just these
        rows gives what threading the folder would give them. None past `limit` rows or
        ids (threading the whole folder is as cheap then)."""
        if len(seeds) > limit:
            return None
        members: set[int] = set()
        ids: set[str] = set()
        frontier = self.headers_for_threading(folder_id, seeds)
        while frontier:
            fresh: set[str] = set()
            for uid, mid, irt, refs, _date in frontier:
                members.add(uid)
                fresh.update(i for i in (mid, irt, *(refs or "").split()) if i and i not in ids)
            ids |= fresh
            if len(members) > limit or len(ids) > limit:
                return None
            frontier = [r for r in self._rows_naming(folder_id, sorted(fresh)) if r[0] not in members]
        return sorted(members)

    def _rows_naming(self, folder_id: int, ids: list[str]) -> list[tuple]:
        """Rows whose Message-ID, In-Reply-To or References contains one of `ids` (a superset is
        harmless: a row taken in brings its whole group)."""
        out: list[tuple] = []
        for chunk in _chunks(ids, _IDS_PER_SCAN):
            marks = ",".join("?" * len(chunk))
            refs = " OR ".join(["instr(refs, ?) > 0"] * len(chunk))
            out += self.db.execute(f"SELECT {_THREADING_COLS} FROM messages WHERE folder_id = ? AND"
                                   f" (message_id IN ({marks}) OR in_reply_to IN ({marks}) OR {refs})",
                                   (folder_id, *chunk, *chunk, *chunk))
        return out

    def set_threads(self, folder_id: int, order: Iterable[tuple[int, int, int, str]],
                    uids: Sequence[int] | None = None) -> None:
        """order: (uid, depth, root_uid, prefix) in display order (mail.thread.thread_order), whose
        rows of one thread are contiguous; of every row, or of `uids` (a thread_closure).

        Written sparse: new mail changes only the rows of the threads it joins, so only entries
        whose values changed are written (new mail in a 100k folder rewrites a handful of rows)."""
        if uids is None:
            dates = dict(self.db.execute("SELECT id, coalesce(date, 0) FROM messages WHERE folder_id = ?",
                                         (folder_id,)))
            old = {r[0]: r[1:] for r in self.db.execute("SELECT id, pos, sub, depth, root, prefix FROM threads"
                                                         " WHERE folder_id = ?", (folder_id,))}
        else:
            dates, old = {}, {}
            for chunk in _chunks(list(uids), _CHUNK):
                ph = ",".join("?" * len(chunk))
                dates.update(self.db.execute(f"SELECT id, coalesce(date, 0) FROM messages WHERE folder_id = ?"
                                             f" AND id IN ({ph})", (folder_id, *chunk)))
                old.update((r[0], r[1:]) for r in self.db.execute(
                    f"SELECT id, pos, sub, depth, root, prefix FROM threads WHERE folder_id = ? AND id IN ({ph})",
                    (folder_id, *chunk)))
        data = []
        for root, group in itertools.groupby(order, key=_root_of_entry):
            rows = list(group)
            latest = dates.get(rows[0][0], 0) if len(rows) == 1 else max(dates.get(u, 0) for u, _, _, _ in rows)
            key = (max(0, min(latest, (1 << 31) - 1)) << 32) | ((root or rows[0][0]) & 0xFFFFFFFF)
            for sub, (uid, depth, r, prefix) in enumerate(rows):
                if uid in dates and old.get(uid) != (key, sub, depth, r, prefix):
                    data.append((folder_id, uid, key, sub, depth, r, prefix))
        data.sort(key=key_order)
        # In transactions of ROWS_PER_TX rows, so that a user's intent waits a few ms for the lock,
        # not the whole order; the folder reads THREADS_WRITING until the last one commits.
        chunks = list(_chunks(data, ROWS_PER_TX)) or [[]]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if i:
                yield_to_intents(self.path)
            with self.transaction():
                self.db.executemany("INSERT OR REPLACE INTO threads(folder_id, id, pos, sub, depth, root, prefix)"
                                    " VALUES (?, ?, ?, ?, ?, ?, ?)", chunk)
                self.db.execute("UPDATE folders SET threads_dirty = ? WHERE id = ?",
                                (THREADS_CLEAN if last else THREADS_WRITING, folder_id))
