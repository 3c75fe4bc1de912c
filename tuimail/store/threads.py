"""Thread order, stored by the sync side so the UI never needs every header (a mixin of Store).

The order is derived data in a narrow table of its own, (folder_id, uid) -> (pos, sub, depth,
root, prefix): pos = the thread's latest date << 32 | its root uid (threads shown in descending
order), sub = the row's place inside its thread. Store deletes a row's entry with the row.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable

from .db import key_order

# A message row with its place in the thread order (none until the sync side has threaded it).
_WITH_THREADS = "messages LEFT JOIN threads USING (folder_id, uid)"
_root_of_entry = operator.itemgetter(2)  # thread_order's (uid, depth, root, prefix)


class ThreadsMixin:
    def headers_for_threading(self, folder_id: int) -> list[tuple]:
        return self.db.execute("SELECT uid, message_id, in_reply_to, refs, date FROM messages WHERE folder_id = ?",
                               (folder_id,)).fetchall()

    def thread_info(self, folder_id: int) -> list[tuple[int, int, int | None]]:
        """(uid, depth, root uid) in thread order, for collapse/expand in the UI."""
        return self.db.execute(
            f"SELECT uid, coalesce(depth, 0), root FROM {_WITH_THREADS} WHERE folder_id = ? AND hidden = 0"
            " ORDER BY pos DESC, sub, uid DESC", (folder_id,)).fetchall()

    def set_threads(self, folder_id: int, order: Iterable[tuple[int, int, int, str]]) -> None:
        """order: (uid, depth, root_uid, prefix) in display order (mail.thread.thread_order), whose
        rows of one thread are contiguous.

        Written sparse: new mail changes only the rows of the threads it joins, so only entries
        whose values changed are written (new mail in a 100k folder rewrites a handful of rows)."""
        dates = dict(self.db.execute("SELECT uid, coalesce(date, 0) FROM messages WHERE folder_id = ?", (folder_id,)))
        old = {r[0]: r[1:] for r in self.db.execute("SELECT uid, pos, sub, depth, root, prefix FROM threads"
                                                     " WHERE folder_id = ?", (folder_id,))}
        data = []
        for root, group in itertools.groupby(order, key=_root_of_entry):
            rows = list(group)
            latest = dates.get(rows[0][0], 0) if len(rows) == 1 else max(dates.get(u, 0) for u, _, _, _ in rows)
            key = (max(0, min(latest, (1 << 31) - 1)) << 32) | ((root or rows[0][0]) & 0xFFFFFFFF)
            for sub, (uid, depth, r, prefix) in enumerate(rows):
                if uid in dates and old.get(uid) != (key, sub, depth, r, prefix):
                    data.append((folder_id, uid, key, sub, depth, r, prefix))
        data.sort(key=key_order)
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO threads(folder_id, uid, pos, sub, depth, root, prefix)"
                                " VALUES (?, ?, ?, ?, ?, ?, ?)", data)
            self.db.execute("UPDATE folders SET threads_dirty = 0 WHERE id = ?", (folder_id,))

    def threads_dirty(self, folder_id: int) -> bool:
        row = self.db.execute("SELECT threads_dirty FROM folders WHERE id = ?", (folder_id,)).fetchone()
        return bool(row and row[0])
