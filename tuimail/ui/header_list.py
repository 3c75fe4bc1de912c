"""The header list: a Line-API ScrollView over one folder of the store (DESIGN.md §3).

It holds the folder's ordered uid list (the one query that returns every row, as bare ints), a
small cache of the rows near the viewport, and an LRU cache of rendered strips keyed by
(uid, flags, width, cursor state). `render_line(y)` draws row y; rows are read with
`Store.rows(folder_id, uids)` for the uids around the viewport only — never LIMIT/OFFSET, never
every row. A cursor move refreshes the old and the new line only.
"""

from __future__ import annotations

import time
from array import array
from collections import OrderedDict
from collections.abc import Iterable

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState

from ..mail.sanitize import sanitize_line
from ..store.store import MessageRow, Store
from . import keys
from .rows import DateFormatter, columns, format_size, sender_name


def uid_array(uids: Iterable[int] = ()) -> array:
    """The folder's ordered uids, 4 bytes each (IMAP uids are 32-bit): 0.4 MB at 100k, where a
    list of Python ints is 3.5 MB."""
    return array("I", uids)

SORT_ORDER = ("date", "arrival", "from", "subject", "size")
STRIP_CACHE = 1024
ROW_CACHE = 4096
RELOAD_INTERVAL = 0.3  # seconds between uid-list reloads caused by sync events (small folders)
RELOAD_ROWS_PER_SECOND = 25_000  # bigger lists wait longer: 100k rows -> at most one reload per 4 s


class HeaderList(ScrollView, can_focus=True):
    """Virtual list of one folder's messages."""

    BINDINGS = keys.bindings("list")

    COMPONENT_CLASSES = {
        "header-list--unread",
        "header-list--flagged",
        "header-list--deleted",
        "header-list--cursor",
        "header-list--cursor-blurred",
        "header-list--dim",
        "header-list--empty",
    }

    DEFAULT_CSS = """
    HeaderList {
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
    }
    HeaderList > .header-list--unread { text-style: bold; }
    HeaderList > .header-list--flagged { color: $warning; }
    HeaderList > .header-list--deleted { color: $text-disabled; text-style: strike; }
    HeaderList > .header-list--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    HeaderList > .header-list--cursor-blurred { background: $block-cursor-blurred-background; }
    HeaderList > .header-list--dim { color: $text-muted; }
    HeaderList > .header-list--empty { color: $text-muted; text-style: italic; }
    """

    class Selected(Message):
        """Enter on a row (or a double click): open that message."""

        def __init__(self, header_list: HeaderList, uid: int) -> None:
            super().__init__()
            self.header_list = header_list
            self.uid = uid

    class OrderChanged(Message):
        """Sort order or threading changed (the status bar shows it)."""

    class Painted(Message):
        """The list drew its first screen (rows, or the empty text): work that would only have
        delayed it (the folder tree, the rest of the uid list, the network) can start now.
        Sent again with rows=True the first time rows are drawn."""

        def __init__(self, rows: bool) -> None:
            super().__init__()
            self.rows = rows

    class CursorMoved(Message):
        def __init__(self, header_list: HeaderList) -> None:
            super().__init__()
            self.header_list = header_list

    def __init__(self, *, dates: DateFormatter | None = None, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self.store: Store | None = None
        self.folder_id: int | None = None
        self.uids: array = uid_array()
        self.cursor = 0
        self.sort = "date"
        self.reverse = False
        self.threaded = False
        self.collapsed: set[int] = set()  # thread roots whose replies are hidden
        self._thread_root: dict[int, int] = {}
        self._thread_size: dict[int, int] = {}
        self._rows: dict[int, MessageRow] = {}
        self._strips: OrderedDict[tuple, Strip] = OrderedDict()
        self.dates = dates or DateFormatter()
        self.empty_text = "No folder open"
        self._loaded_at = 0.0
        self._reload_timer = None
        self._reload_token = 0
        self._reload_inflight = False
        self.partial = False  # uids holds only the first page; the rest is being read
        self._painted = False
        self._rows_painted = False

    # ------------------------------------------------------------------ loading

    def load(self, store: Store | None, folder_id: int | None, *, keep_uid: int | None = None,
             keep_row: bool = True, first_page: int = 0) -> None:
        """(Re)load the uid list now. The cursor stays on `keep_uid` (default: the current uid) and,
        with keep_row, on the same screen row.

        first_page=N (opening a folder at start-up): read only the first N uids when the order
        has an index (date, arrival), draw them, and read the whole list in a thread after the
        first paint — at 100k the full list is ~80 ms the first screen does not need."""
        same = store is self.store and folder_id == self.folder_id
        if not same:
            self.collapsed.clear()
        self.store, self.folder_id = store, folder_id
        result = None
        partial = False
        if store is not None and folder_id is not None:
            if first_page and not self.threaded and self.sort in ("date", "arrival"):
                result = "list", uid_array(store.uid_list(folder_id, self.sort, self.reverse, limit=first_page))
                partial = len(result[1]) >= first_page
            else:
                result = self._query(store, folder_id, self.threaded, self.sort, self.reverse)
        self._apply(result, same, keep_uid, keep_row)
        self.partial = partial
        if partial and self._painted:
            self._reload()

    def ensure_complete(self) -> None:
        """Before anything that needs the whole list (end, search, next unread): read it now if
        only the first page is here yet."""
        if self.partial:
            self.load(self.store, self.folder_id, keep_row=True)

    @staticmethod
    def _query(store: Store, folder_id: int, threaded: bool, sort: str, reverse: bool):
        if threaded:
            return "thread", store.thread_info(folder_id)
        return "list", uid_array(store.uid_list(folder_id, sort, reverse))

    def _apply(self, result, same: bool, keep_uid: int | None = None, keep_row: bool = True) -> None:
        if keep_uid is None and same:
            keep_uid = self.current_uid
        old_cursor, old_scroll = self.cursor, self.scroll_offset.y
        if self._reload_timer is not None:
            self._reload_timer.stop()
            self._reload_timer = None
        self._reload_token += 1  # a reload still running in a thread is stale now
        self._loaded_at = time.monotonic()
        self.partial = False
        self._rows.clear()
        self._strips.clear()
        if result is None:
            self.uids = uid_array()
        elif result[0] == "thread":
            self._set_threads(result[1])
        else:
            self.uids = result[1]
        cursor = 0
        if keep_uid is not None:
            cursor = self._index_of(keep_uid)
            if cursor is None:
                cursor = min(old_cursor, max(0, len(self.uids) - 1)) if same else 0
        self.cursor = max(0, min(cursor, len(self.uids) - 1))
        self.virtual_size = Size(0, len(self.uids))
        if same and keep_row and old_scroll == 0 and self.cursor < self.size.height:
            self.scroll_to(y=0, animate=False, immediate=True)  # at the top: new mail shows up there
        elif same and keep_row:
            self.scroll_to(y=max(0, self.cursor - (old_cursor - old_scroll)), animate=False, immediate=True)
        elif not same:
            self.scroll_to(y=0, animate=False, immediate=True)
        self._scroll_cursor_into_view()
        self.refresh()
        if self.uids:
            from ..trace import trace
            trace(f"list loaded {len(self.uids)} rows")

    def _set_threads(self, info) -> None:
        self._thread_root = {uid: (root if root is not None else uid) for uid, _depth, root in info}
        sizes: dict[int, int] = {}
        for root in self._thread_root.values():
            sizes[root] = sizes.get(root, 0) + 1
        self._thread_size = sizes
        self.collapsed &= set(sizes)
        coll = self.collapsed
        self.uids = uid_array(uid for uid, _d, _r in info if not coll or self._thread_root[uid] == uid
                              or self._thread_root[uid] not in coll)

    def _index_of(self, uid: int) -> int | None:
        try:
            return self.uids.index(uid)
        except ValueError:
            if self.partial:
                self.ensure_complete()
                return self._index_of(uid)
            return None

    @property
    def current_uid(self) -> int | None:
        if 0 <= self.cursor < len(self.uids):
            return self.uids[self.cursor]
        return None

    def current_row(self) -> MessageRow | None:
        uid = self.current_uid
        if uid is None or self.store is None:
            return None
        row = self._rows.get(uid)
        if row is None:
            row = self.store.row(self.folder_id, uid)
            if row is not None:
                self._rows[uid] = row
        return row

    # ------------------------------------------------------------------ changes from outside

    def rows_changed(self, uids: Iterable[int] = (), added: Iterable[int] = (), removed: Iterable[int] = (),
                     reset: bool = False) -> None:
        """Flags changed for `uids` (only their cached rows/strips go); added/removed/reset reload
        the uid list keeping the cursor on the same message."""
        added, removed = tuple(added), tuple(removed)
        if added or removed or reset:
            self._schedule_reload()
            return
        self.invalidate(uids)

    def _schedule_reload(self) -> None:
        """Reload the uid list now, or — when the last load was less than RELOAD_INTERVAL ago (a
        cold sync commits window after window) — once, a little later."""
        if self._reload_timer is not None:
            return
        if not self.uids and not self._reload_inflight:
            # The first rows of an empty folder (a first run's first window): read them here and
            # now, with no interval and no thread; they are the first screen.
            self.load(self.store, self.folder_id)
            return
        # A cold sync commits a window every ~0.4 s; reloading a 100k list after each one cost the
        # sync thread a third of its time (the GIL), so the interval grows with the list.
        interval = max(RELOAD_INTERVAL, len(self.uids) / RELOAD_ROWS_PER_SECOND)
        wait = self._loaded_at + interval - time.monotonic()
        if wait <= 0:
            self._reload()
        else:
            self._reload_timer = self.set_timer(wait, self._reload)

    def _reload(self) -> None:
        """The uid list again, queried in a thread on a connection of its own (a 100k list takes
        ~50 ms to read): the UI keeps answering keys meanwhile, and applies the result when it
        arrives — unless the folder, the order or the rows (a local move) changed in between."""
        self._reload_timer = None
        store, fid = self.store, self.folder_id
        path = getattr(store, "path", None)
        if store is None or fid is None or path is None:
            self.load(store, fid)
            return
        self._reload_token += 1
        key = (self._reload_token, store, fid, self.threaded, self.sort, self.reverse)

        def work():
            own = Store(path)
            try:
                return key, self._query(own, fid, key[3], key[4], key[5])
            finally:
                own.close()

        self._loaded_at = time.monotonic()
        self._reload_inflight = True
        self.run_worker(work, thread=True, group="header-reload", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "header-reload":
            return
        event.stop()
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._reload_inflight = False
        if event.state == WorkerState.ERROR:
            self.load(self.store, self.folder_id)  # fall back to reading here
        elif event.state == WorkerState.SUCCESS:
            key, result = event.worker.result
            if key == (self._reload_token, self.store, self.folder_id, self.threaded, self.sort, self.reverse):
                self._apply(result, True)

    def invalidate(self, uids: Iterable[int]) -> None:
        uids = set(uids)
        if not uids:
            return
        for uid in uids:
            self._rows.pop(uid, None)
        top = self.scroll_offset.y
        for y in range(top, min(len(self.uids), top + self.size.height)):
            if self.uids[y] in uids:
                self.refresh_line(y)

    def remove_uids(self, uids: Iterable[int]) -> None:
        """Rows hidden by a local intent (move/delete): the cursor stays at the same index."""
        gone = set(uids)
        if not gone:
            return
        if self._reload_inflight:  # read before this intent: it would bring the rows back
            self._reload_token += 1
            self._schedule_reload()
        before = self.uids[:self.cursor]
        shift = sum(1 for u in before if u in gone)
        self.uids = uid_array(u for u in self.uids if u not in gone)
        self.cursor = max(0, min(self.cursor - shift, len(self.uids) - 1))
        self.virtual_size = Size(0, len(self.uids))
        self._scroll_cursor_into_view()
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def set_order(self, *, sort: str | None = None, reverse: bool | None = None,
                  threaded: bool | None = None) -> None:
        if sort is not None:
            self.sort = sort
        if reverse is not None:
            self.reverse = reverse
        if threaded is not None:
            self.threaded = threaded
        self.load(self.store, self.folder_id, keep_uid=self.current_uid, keep_row=False)
        self.post_message(self.OrderChanged())

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.__dict__.pop("_base_style_cache", None)
        self._strips.clear()

    # ------------------------------------------------------------------ rendering

    def _window(self) -> tuple[int, int]:
        h = max(1, self.size.height)
        top = self.scroll_offset.y
        margin = h // 2
        return max(0, top - margin), min(len(self.uids), top + h + margin)

    def _load_window(self) -> None:
        lo, hi = self._window()
        missing = [u for u in self.uids[lo:hi] if u not in self._rows]
        if not missing or self.store is None:
            return
        if len(self._rows) + len(missing) > ROW_CACHE:
            keep = set(self.uids[lo:hi])
            self._rows = {u: r for u, r in self._rows.items() if u in keep}
        self._rows.update(self.store.rows(self.folder_id, missing))

    @property
    def _base_style(self) -> Style:
        """self.rich_style, computed once per style change: Textual derives it from the CSS of
        every ancestor on each call, which was a third of the first paint's render time."""
        base = self.__dict__.get("_base_style_cache")
        if base is None:
            base = self.__dict__["_base_style_cache"] = self.rich_style
        return base

    def render_line(self, y: int) -> Strip:
        idx = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        base = self._base_style
        if not self._rows_painted and width:
            rows = idx < len(self.uids)
            if not self._painted or rows:
                # Posted during the compositor's pass: handled once this frame is written.
                self.post_message(self.Painted(rows))
                self._rows_painted = rows
            if not self._painted and self.partial:
                self.call_later(self._reload)
            self._painted = True
        if idx >= len(self.uids):
            if idx == 0 and width:
                style = base + self.get_component_rich_style("header-list--empty")
                return Strip([Segment(set_cell_size("  " + self.empty_text, width), style)], width)
            return Strip.blank(width, base)
        uid = self.uids[idx]
        row = self._rows.get(uid)
        if row is None:
            self._load_window()
            row = self._rows.get(uid)
            if row is None:
                return Strip.blank(width, base)
        state = 0
        if idx == self.cursor:
            state = 1 if self.has_focus else 2
        key = (uid, row.flags, width, state)
        strip = self._strips.get(key)
        if strip is not None:
            self._strips.move_to_end(key)
            return strip
        strip = self._render_row(row, width, state, base)
        self._strips[key] = strip
        if len(self._strips) > STRIP_CACHE:
            self._strips.popitem(last=False)
        return strip

    def _render_row(self, row: MessageRow, width: int, state: int, base: Style) -> Strip:
        fl = row.flag_set
        style = base
        if "\\Seen" not in fl:
            style += self.get_component_rich_style("header-list--unread")
        if "\\Flagged" in fl:
            style += self.get_component_rich_style("header-list--flagged")
        if "\\Deleted" in fl:
            style += self.get_component_rich_style("header-list--deleted")
        if state == 1:
            style += self.get_component_rich_style("header-list--cursor")
        elif state == 2:
            style += self.get_component_rich_style("header-list--cursor-blurred")
        dim = style + self.get_component_rich_style("header-list--dim") if state == 0 else style
        compact = width < 90 and not self.dates.fmt
        w_flags, w_date, w_from, w_subj, w_size = columns(width, 6 if compact else self.dates.width)
        marks = ("N" if "\\Seen" not in fl else " ") + ("!" if "\\Flagged" in fl else
                                                        "D" if "\\Deleted" in fl else " ")
        marks += "r" if "\\Answered" in fl else "@" if row.has_attachment else " "
        subject = sanitize_line(row.subject) or "(no subject)"
        if self.threaded:
            prefix = sanitize_line(row.thread_prefix)
            if row.uid in self.collapsed:
                subject = f"{prefix}[+{self._thread_size.get(row.uid, 1) - 1}] {subject}"
            elif prefix:
                subject = f"{prefix}{subject}"
        segs = [
            Segment(set_cell_size(marks, w_flags) + " ", style),
            Segment(set_cell_size(self.dates(row.date, compact), w_date) + " ", dim),
            Segment(set_cell_size(sender_name(row.from_), w_from) + " ", style),
            Segment(set_cell_size(subject, w_subj), style),
        ]
        if w_size:
            segs.append(Segment(" " + format_size(row.size).rjust(w_size)[-w_size:], dim))
        strip = Strip(segs)
        return strip.adjust_cell_length(width, style)

    # ------------------------------------------------------------------ cursor

    def _scroll_cursor_into_view(self) -> None:
        h = self.size.height
        if not h:
            return
        top = self.scroll_offset.y
        if top <= self.cursor < top + h:
            return
        # Off screen: bring the cursor to the middle (like mutt's page jumps, half as far), so a run
        # of j/k repaints two lines most of the time instead of the whole list on every step.
        new_top = self.cursor - h // 2
        new_top = max(0, min(new_top, len(self.uids) - h))
        self.scroll_to(y=new_top, animate=False, immediate=True)

    def move_cursor(self, index: int, *, scroll_by: int = 0) -> None:
        if not self.uids:
            return
        if self.partial and index + max(0, scroll_by) + self.size.height >= len(self.uids):
            self.ensure_complete()
        index = max(0, min(index, len(self.uids) - 1))
        old = self.cursor
        if index == old and not scroll_by:
            return
        self.cursor = index
        top = self.scroll_offset.y
        if scroll_by:
            self.scroll_to(y=max(0, min(top + scroll_by, len(self.uids) - self.size.height)),
                           animate=False, immediate=True)
        self._scroll_cursor_into_view()
        if self.scroll_offset.y == top:
            self.refresh_line(old)
            self.refresh_line(index)
        self.post_message(self.CursorMoved(self))

    def select_uid(self, uid: int) -> bool:
        idx = self._index_of(uid)
        if idx is None:
            return False
        self.move_cursor(idx)
        return True

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        self.refresh_line(self.cursor)

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self.refresh_line(self.cursor)

    def on_resize(self, event: events.Resize) -> None:
        self._scroll_cursor_into_view()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        idx = self.scroll_offset.y + offset.y
        if idx < len(self.uids):
            self.move_cursor(idx)
            if event.chain >= 2:
                self.post_message(self.Selected(self, self.uids[idx]))

    # ------------------------------------------------------------------ actions

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
        i = SORT_ORDER.index(self.sort) if self.sort in SORT_ORDER else -1
        self.set_order(sort=SORT_ORDER[(i + 1) % len(SORT_ORDER)], threaded=False)

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

