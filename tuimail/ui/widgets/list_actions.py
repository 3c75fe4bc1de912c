"""The header list's key actions (a mixin of HeaderList): cursor moves, next unread, sort
order, threading and collapsing threads."""

from __future__ import annotations

from tuimail.store.store import SORTS


class ListActions:
    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_page_down(self) -> None:
        h = max(1, self.size.height)
        self.move_cursor(self.cursor + h, scroll_by=h)

    def action_page_up(self) -> None:
        h = max(1, self.size.height)
        self.move_cursor(self.cursor - h, scroll_by=-h)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.ensure_complete()
        self.move_cursor(len(self.uids) - 1)

    def action_open(self) -> None:
        uid = self.current_uid
        if uid is not None:
            self.post_message(self.Selected(self, uid))

    def action_next_unread(self) -> None:
        """Next unread below the cursor, reading rows a window at a time (wraps once)."""
        if self.store is None or not self.uids:
            return
        self.ensure_complete()
        n = len(self.uids)
        step = max(50, self.size.height * 2)
        start = self.cursor + 1
        for lo in list(range(start, n, step)) + list(range(0, start, step)):
            hi = min(lo + step, n if lo >= start else start)
            chunk = self.uids[lo:hi]
            rows = self.store.rows(self.folder_id, chunk)
            for i, uid in enumerate(chunk):
                r = rows.get(uid)
                if r is not None and not r.seen:
                    self.move_cursor(lo + i)
                    return
        self.app.bell()

    def action_sort(self) -> None:
        i = SORTS.index(self.sort) if self.sort in SORTS else -1  # `o` cycles through the store's orders
        self.set_order(sort=SORTS[(i + 1) % len(SORTS)], threaded=False)

    def action_sort_reverse(self) -> None:
        self.set_order(reverse=not self.reverse)

    def action_threaded(self) -> None:
        self.set_order(threaded=not self.threaded)

    def action_collapse_thread(self) -> None:
        uid = self.current_uid
        if not self.threaded or uid is None:
            return
        root = self._thread_root.get(uid, uid)
        if root in self.collapsed:
            self.collapsed.discard(root)
        elif self._thread_size.get(root, 1) > 1:
            self.collapsed.add(root)
        self.load(self.store, self.folder_id, keep_uid=root)

    def action_collapse_all(self) -> None:
        if not self.threaded:
            return
        uid = self.current_uid
        root = self._thread_root.get(uid, uid) if uid is not None else None
        if self.collapsed:
            self.collapsed.clear()
        else:
            self.collapsed = {r for r, n in self._thread_size.items() if n > 1}
        self.load(self.store, self.folder_id, keep_uid=root)
