"""The header list's key actions (ListActions, held by HeaderList, whose action_* methods
delegate here): cursor moves, next unread, sort order, threading and collapsing threads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Callable, Sequence
from functools import partial

from tuimail.store.store import SORTS, MessageRow

if TYPE_CHECKING:
    from tuimail.ui.widgets.header_list import HeaderList


class ListActions:
    def __init__(self, view: HeaderList) -> None:
        self.view = view

    def cursor_down(self) -> None:
        self.view.move_cursor(self.view.cursor + 1)

    def cursor_up(self) -> None:
        self.view.move_cursor(self.view.cursor - 1)

    def page_down(self) -> None:
        h = max(1, self.view.size.height)
        self.view.move_cursor(self.view.cursor + h, scroll_by=h)

    def page_up(self) -> None:
        h = max(1, self.view.size.height)
        self.view.move_cursor(self.view.cursor - h, scroll_by=-h)

    def first(self) -> None:
        self.view.move_cursor(0)

    def last(self) -> None:
        self.view.ensure_complete()
        self.view.move_cursor(len(self.view.uids) - 1)

    def open(self) -> None:
        uid = self.view.current_uid
        if uid is not None:
            self.view.post_message(self.view.Selected(self.view, uid))

    def next_unread(self) -> None:
        """Next unread below the cursor, reading rows a window at a time (wraps once)."""
        view = self.view
        read: Callable[[Sequence[int]], dict[int, MessageRow]]
        if view.source is not None:  # a virtual folder (list_source.py): its entries' rows
            read = view.source.rows
        elif view.store is not None and view.folder_id is not None:
            read = partial(view.store.rows, view.folder_id)
        else:
            return
        if not view.uids:
            return
        self.view.ensure_complete()
        n = len(self.view.uids)
        step = max(50, self.view.size.height * 2)
        start = self.view.cursor + 1
        for lo in list(range(start, n, step)) + list(range(0, start, step)):
            hi = min(lo + step, n if lo >= start else start)
            chunk = self.view.uids[lo:hi]
            rows = read(chunk)
            for i, uid in enumerate(chunk):
                r = rows.get(uid)
                if r is not None and not r.seen:
                    self.view.move_cursor(lo + i)
                    return
        self.view.app.bell()

    def sort(self) -> None:
        i = SORTS.index(self.view.sort) if self.view.sort in SORTS else -1  # `o` cycles through the store's orders
        self.view.set_order(sort=SORTS[(i + 1) % len(SORTS)], threaded=False)

    def sort_reverse(self) -> None:
        self.view.set_order(reverse=not self.view.reverse)

    def threaded(self) -> None:
        self.view.set_order(threaded=not self.view.threaded)

    def collapse_thread(self) -> None:
        uid = self.view.current_uid
        if not self.view.threaded or uid is None:
            return
        root = self.view._thread_root.get(uid, uid)
        if root in self.view.collapsed:
            self.view.collapsed.discard(root)
        elif self.view._thread_size.get(root, 1) > 1:
            self.view.collapsed.add(root)
        self.view.load(self.view.store, self.view.folder_id, keep_uid=root)

    def collapse_all(self) -> None:
        if not self.view.threaded:
            return
        uid = self.view.current_uid
        root = self.view._thread_root.get(uid, uid) if uid is not None else None
        if self.view.collapsed:
            self.view.collapsed.clear()
        else:
            self.view.collapsed = {r for r, n in self.view._thread_size.items() if n > 1}
        self.view.load(self.view.store, self.view.folder_id, keep_uid=root)
