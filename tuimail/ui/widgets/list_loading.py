"""Loading the header list's ordered uids (ListLoader, held by HeaderList): the first page, the
whole list in a thread, reloads spaced by list size while a sync commits windows, and changes from
outside (flags, new and removed rows, local moves), keeping the cursor on the same message.
A reload read in a thread comes back as a UidsRead message to the list.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.timer import Timer

from tuimail.store.journal import _apply, split_flags
from tuimail.store.store import Store
from tuimail.ui.widgets.virtual import set_virtual_height

if TYPE_CHECKING:
    from tuimail.ui.widgets.header_list import HeaderList

RELOAD_INTERVAL = 0.3  # seconds between uid-list reloads caused by sync events (small folders)
RELOAD_ROWS_PER_SECOND = 25_000  # bigger lists wait longer: 100k rows -> at most one reload per 4 s
THREADS_WRITING_WAIT = 5.0  # seconds a half-written thread order is not shown (store/threads.py)


def uid_array(uids: Iterable[int] = ()) -> array:
    """The folder's ordered uids, 4 bytes each (IMAP uids are 32-bit): 0.4 MB at 100k, where a
    list of Python ints is 3.5 MB."""
    return array("I", uids)


# What a query read: ("list", uids) or ("thread", thread_info, thread_unread, threads_writing).
Order = tuple[Any, ...]


class UidsRead(Message, bubble=False):
    """A reload read in a thread: `result` for `key` (stale when the key changed meanwhile), or
    `error`."""

    def __init__(self, key: tuple[object, ...], result: Order | None, error: BaseException | None) -> None:
        super().__init__()
        self.key, self.result, self.error = key, result, error


class ListLoader:
    def __init__(self, view: HeaderList) -> None:
        self.view = view
        self._loaded_at = 0.0
        self._reload_timer: Timer | None = None
        self._reload_token = 0
        self._reload_inflight = False
        self._writing_since: float | None = None  # the thread order was half written since
        self._stale = False  # a reset came since the last load: the next one redraws every row

    def load(self, store: Store | None, folder_id: int | None, *, keep_uid: int | None = None,
             keep_row: bool = True, first_page: int = 0) -> None:
        """(Re)load the uid list now. The cursor stays on `keep_uid` (default: the current uid) and,
        with keep_row, on the same screen row.

        first_page=N (opening a folder at start-up): read only the first N uids when the order
        has an index (date, arrival), draw them, and read the whole list in a thread after the
        first paint — at 100k the full list is ~80 ms the first screen does not need."""
        same = store is self.view.store and folder_id == self.view.folder_id
        if not same or self.view.source is not None:
            self.view.collapsed.clear()
            self.view.limit = None  # (a limit is of one folder)
            self.view.source = None
            same = False
        self.view.store, self.view.folder_id = store, folder_id
        result: Order | None = None
        partial = False
        if store is not None and folder_id is not None:
            if first_page and not self.view.threaded and self.view.sort in ("date", "arrival"):
                ids = store.id_list(folder_id, self.view.sort, self.view.reverse, limit=first_page, packed=True)
                result = "list", ids
                partial = len(result[1]) >= first_page
            else:
                result = self._query(store, folder_id, self.view.threaded, self.view.sort, self.view.reverse)
        self._apply(result, same, keep_uid, keep_row)
        self.view.partial = partial
        if partial and self.view._painted:
            self._reload()

    def ensure_complete(self) -> None:
        """Before anything that needs the whole list (end, search, next unread): read it now if
        only the first page is here yet."""
        if self.view.partial:
            self.load(self.view.store, self.view.folder_id, keep_row=True)

    @staticmethod
    def _query(store: Store, folder_id: int, threaded: bool, sort: str, reverse: bool) -> Order:
        if threaded:
            return ("thread", *store.thread_view(folder_id))
        return "list", store.id_list(folder_id, sort, reverse, packed=True)

    def _apply(self, result: Order | None, same: bool, keep_uid: int | None = None, keep_row: bool = True,
               *, quiet: bool = False) -> None:
        """quiet: a reload of the same folder in list mode with nothing reset since the last load
        (a sync adding rows): when the rows on screen, the cursor and the scroll offset stay as
        they were, nothing is redrawn but the scrollbar — the rows on screen are the same rows,
        and a flag change that came with the reload's event was applied to them already."""
        writing = result is not None and result[0] == "thread" and result[3]
        if not writing:
            self._writing_since = None
        elif same and self.view.uids:
            # The sync is writing the thread order in several transactions: keep the order on
            # screen (a half-written one splits threads) and read it again in a moment; shown as
            # it is if it stays so (a sync that died between two transactions threads it again).
            now = time.monotonic()
            since = self._writing_since = self._writing_since or now
            if now - since < THREADS_WRITING_WAIT:
                self._loaded_at = now
                if self._reload_timer is None:
                    self._reload_timer = self.view.set_timer(RELOAD_INTERVAL, self._reload)
                return
        if keep_uid is None and same:
            keep_uid = self.view.current_uid
        old_cursor, old_scroll = self.view.cursor, self.view.scroll_offset.y
        height = self.view.size.height
        on_screen = self.view.uids[old_scroll:old_scroll + height]
        if self._reload_timer is not None:
            self._reload_timer.stop()
            self._reload_timer = None
        self._reload_token += 1  # a reload still running in a thread is stale now
        self._loaded_at = time.monotonic()
        self.view.partial = False
        if result is None:
            self.view.uids = uid_array()
        elif result[0] == "thread":
            self._set_threads(result[1], result[2])
        else:
            self.view.uids = result[1]
        hidden = (self.view.overlay.hidden(self.view.store, self.view.folder_id)
                  if self.view.overlay and self.view.store is not None and self.view.folder_id is not None
                  else None)
        if hidden:  # moved or deleted, the writer has not stored it yet
            self.view.uids = array(self.view.uids.typecode, (u for u in self.view.uids if u not in hidden))
        limit = self.view.limit
        if limit is not None:  # a limited folder (list_source.py): its matches only
            ids = limit.ids
            self.view.uids = array(self.view.uids.typecode, (u for u in self.view.uids if u in ids))
        cursor = 0
        if keep_uid is not None:
            at = self.index_of(keep_uid)
            cursor = at if at is not None else min(old_cursor, max(0, len(self.view.uids) - 1)) if same else 0
        self.view.cursor = max(0, min(cursor, len(self.view.uids) - 1))
        set_virtual_height(self.view, len(self.view.uids))
        if same and keep_row and old_scroll == 0 and self.view.cursor < self.view.size.height:
            self.view.scroll_to(y=0, animate=False, immediate=True)  # at the top: new mail shows up there
        elif same and keep_row:
            self.view.scroll_to(y=max(0, self.view.cursor - (old_cursor - old_scroll)), animate=False, immediate=True)
        elif not same:
            self.view.scroll_to(y=0, animate=False, immediate=True)
        self.view._scroll_cursor_into_view()
        top = self.view.scroll_offset.y
        if (quiet and same and self.view.cursor == old_cursor and top == old_scroll
                and self.view.uids[top:top + height] == on_screen):
            return
        self._stale = False
        self.view._rows.clear()
        self.view._strips.clear()
        self.view.refresh()
        if self.view.uids:
            from tuimail.trace import trace
            trace(f"list loaded {len(self.view.uids)} rows")

    def _set_threads(self, info: list[tuple[int, int, int | None]], unread: dict[int, int]) -> None:
        self.view._thread_unread = unread
        self.view._thread_root = {uid: (root if root is not None else uid) for uid, _depth, root in info}
        sizes: dict[int, int] = {}
        for root in self.view._thread_root.values():
            sizes[root] = sizes.get(root, 0) + 1
        self.view._thread_size = sizes
        self.view.collapsed &= set(sizes)
        coll = self.view.collapsed
        self.view.uids = uid_array(uid for uid, _d, _r in info if not coll or self.view._thread_root[uid] == uid
                              or self.view._thread_root[uid] not in coll)

    def index_of(self, uid: int) -> int | None:
        try:
            return self.view.uids.index(uid)
        except ValueError:
            if self.view.partial:
                self.ensure_complete()
                return self.index_of(uid)
            return None

    # ------------------------------------------------------------------ changes from outside

    def rows_changed(self, uids: Iterable[int] = (), added: Iterable[int] = (), removed: Iterable[int] = (),
                     reset: bool = False) -> None:
        """Flags changed for `uids` (only their cached rows/strips go); added/removed/reset reload
        the uid list keeping the cursor on the same message."""
        added, removed = tuple(added), tuple(removed)
        self.invalidate(uids)
        if reset:
            self._stale = True  # (the reload redraws every row: any of them may have changed)
        if added or removed or reset:
            self._schedule_reload()

    def _schedule_reload(self) -> None:
        """Reload the uid list now, or — when the last load was less than RELOAD_INTERVAL ago (a
        cold sync commits window after window) — once, a little later."""
        if self._reload_timer is not None:
            return
        if not self.view.uids and not self._reload_inflight:
            # The first rows of an empty folder (a first run's first window): read them here and
            # now, with no interval and no thread; they are the first screen.
            self.load(self.view.store, self.view.folder_id)
            return
        # A cold sync commits a window every ~0.4 s; reloading a 100k list after each one cost the
        # sync thread a third of its time (the GIL), so the interval grows with the list.
        interval = max(RELOAD_INTERVAL, len(self.view.uids) / RELOAD_ROWS_PER_SECOND)
        wait = self._loaded_at + interval - time.monotonic()
        if wait <= 0:
            self._reload()
        else:
            self._reload_timer = self.view.set_timer(wait, self._reload)

    def _reload(self) -> None:
        """The uid list again, queried in a thread on a connection of its own (a 100k list takes
        ~50 ms to read): the UI keeps answering keys meanwhile, and applies the result when it
        arrives — unless the folder, the order or the rows (a local move) changed in between."""
        self._reload_timer = None
        store, fid = self.view.store, self.view.folder_id
        path = getattr(store, "path", None)
        if store is None or fid is None or path is None:
            self.load(store, fid)
            return
        self._reload_token += 1
        threaded, sort, reverse = self.view.threaded, self.view.sort, self.view.reverse
        key = (self._reload_token, store, fid, threaded, sort, reverse)
        post = self.view.post_message

        def work() -> None:
            try:
                own = Store(path)
                try:
                    result = self._query(own, fid, threaded, sort, reverse)
                finally:
                    own.close()
            except Exception as exc:
                post(UidsRead(key, None, exc))
                return
            post(UidsRead(key, result, None))  # thread-safe, never blocks

        self._loaded_at = time.monotonic()
        self._reload_inflight = True
        self.view.run_worker(work, thread=True, group="header-reload", exit_on_error=False)

    def uids_read(self, msg: UidsRead) -> None:
        self._reload_inflight = False
        view = self.view
        if msg.error is not None:
            self.load(view.store, view.folder_id)  # fall back to reading here
        elif msg.key == (self._reload_token, view.store, view.folder_id, view.threaded, view.sort, view.reverse):
            self._apply(msg.result, True, quiet=not view.threaded and not self._stale)

    def invalidate(self, changed: Iterable[int]) -> None:
        uids = set(changed)
        if not uids:
            return
        for uid in uids:
            self.view._rows.pop(uid, None)
        if (self.view.threaded and self.view.collapsed and self.view.store is not None
                and self.view.folder_id is not None and any(
                self.view._thread_root.get(u, u) in self.view.collapsed for u in uids)):
            # a message inside a collapsed thread changed: its "(5, 2 unread)" is redrawn
            self.view._thread_unread = self.view.store.thread_unread(self.view.folder_id)
            uids |= {self.view._thread_root.get(u, u) for u in uids}
        top = self.view.scroll_offset.y
        for y in range(top, min(len(self.view.uids), top + self.view.size.height)):
            if self.view.uids[y] in uids:
                self.view.refresh_line(y)

    def flags_stored(self, stored: Iterable[int], add: Iterable[str], remove: Iterable[str]) -> None:
        """A queued flag change is in the store now (and out of the overlay): the cached rows
        take it as the store did, instead of being read again on the UI thread."""
        uids = set(stored)
        for uid in uids:
            row = self.view._rows.get(uid)
            if row is not None:
                flags, kw = split_flags(_apply({*row.flags, *row.keywords.split()}, add, remove))
                self.view._rows[uid] = row._replace(flags=flags, keywords=kw)
        if self.view.threaded and self.view.collapsed:
            self.invalidate(uids)  # (the collapsed thread's unread count is read again)
            return
        self.refresh_uids(uids)

    def refresh_uids(self, uids: set[int]) -> None:
        top = self.view.scroll_offset.y
        for y in range(top, min(len(self.view.uids), top + self.view.size.height)):
            if self.view.uids[y] in uids:
                self.view.refresh_line(y)

    def hidden_stored(self) -> None:
        """A queued move or delete is in the store now (and out of the overlay): a uid list read
        before it would bring the rows back, so it is read again."""
        if self._reload_inflight:
            self._reload_token += 1
            self._schedule_reload()

    def remove_uids(self, uids: Iterable[int]) -> None:
        """Rows hidden by a local intent (move/delete): the cursor stays at the same index."""
        gone = set(uids)
        if not gone:
            return
        if self._reload_inflight:  # read before this intent: it would bring the rows back
            self._reload_token += 1
            self._schedule_reload()
        before = self.view.uids[:self.view.cursor]
        shift = sum(1 for u in before if u in gone)
        self.view.uids = array(self.view.uids.typecode, (u for u in self.view.uids if u not in gone))
        self.view.cursor = max(0, min(self.view.cursor - shift, len(self.view.uids) - 1))
        set_virtual_height(self.view, len(self.view.uids))
        self.view._scroll_cursor_into_view()
        self.view.refresh()
        self.view.post_message(self.view.CursorMoved(self.view))

    def set_order(self, *, sort: str | None = None, reverse: bool | None = None,
                  threaded: bool | None = None) -> None:
        if sort is not None:
            self.view.sort = sort
        if reverse is not None:
            self.view.reverse = reverse
        if threaded is not None:
            self.view.threaded = threaded
        self.load(self.view.store, self.view.folder_id, keep_uid=self.view.current_uid, keep_row=False)
        self.view.post_message(self.view.OrderChanged())
