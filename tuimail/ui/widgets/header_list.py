"""The header list: a Line-API ScrollView over one folder of the store (DESIGN.md §3).

It holds the folder's ordered uid list (the one query that returns every row, as bare ints), a
small cache of the rows near the viewport, and an LRU cache of rendered strips keyed by
(uid, flags, width, cursor state). `render_line(y)` draws row y; rows are read with
`Store.rows(folder_id, uids)` for the uids around the viewport only — never LIMIT/OFFSET, never
every row. A cursor move refreshes the old and the new line only.

Loading the uid list and following the store's changes live in list_loading.py (ListLoader),
the key actions in list_actions.py (ListActions): plain objects the list holds, its methods and
action_* methods delegate to them.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Iterable

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from tuimail.core.flags import ANSWERED, DELETED, FLAGGED, SEEN
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.store import MessageRow, Store
from tuimail.ui import keys
from tuimail.ui.widgets.list_actions import ListActions
from tuimail.ui.widgets.list_loading import ListLoader, UidsRead, uid_array
from tuimail.ui.widgets.list_source import Limit, VirtualSource
from tuimail.ui.widgets.virtual import set_virtual_height
from tuimail.ui.overlay import Overlay
from tuimail.ui.widgets.virtual import thumb_scrollbar
from tuimail.ui.rows import COMPACT, DateFormatter, columns, format_size, sender_name

STRIP_CACHE = 1024
_TREE_CHARS = frozenset(" │├└┌─>")


def tree_prefix(prefix: str) -> str:
    """A stored thread prefix ("│ └─>"), kept only when it is made of tree characters (it is
    computed by mail/thread.py, but it comes from the store file: nothing else is drawn)."""
    if not prefix or not _TREE_CHARS.issuperset(prefix):
        return ""
    return prefix

ROW_CACHE = 4096


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
        "header-list--tagged",
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
    HeaderList > .header-list--tagged { text-style: underline; }
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

    def __init__(self, *, dates: DateFormatter | None = None, overlay: Overlay | None = None,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.overlay = overlay  # queued intents drawn before the store has them (ui/overlay.py)
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
        self._thread_unread: dict[int, int] = {}  # root -> unread messages in its thread
        self._rows: dict[int, MessageRow] = {}
        self._strips: OrderedDict[tuple[object, ...], Strip] = OrderedDict()
        self._rich_components: dict[str, Style] = {}
        self.dates = dates or DateFormatter()
        self.empty_text = "No folder open"
        self.partial = False  # uids holds only the first page; the rest is being read
        self._painted = False
        self._rows_painted = False
        # the source of the ids (list_source.py): the folder, the folder limited to `limit`, or a
        # virtual folder across stores (`source`; the ids are then its entry numbers)
        self.limit: Limit | None = None
        self.source: VirtualSource | None = None
        self.loader = ListLoader(self)
        self.actions = ListActions(self)
        # tagged messages (local ids) of each folder shown, kept while the app runs (ui/controllers/bulk.py)
        self.tags: dict[tuple[str, int], set[int]] = {}
        self._tags_here: tuple[Store | None, int | None, set[int]] = (None, None, set())

    @property
    def tagged(self) -> set[int]:
        """The open folder's tagged local ids (the set itself: bulk.py changes it, then repaints).
        Asked for each line drawn: the open folder's set is kept at hand. A virtual folder (its
        ids are entry numbers, not local ids) has none."""
        if self.source is not None:
            return set()
        store, fid, tags = self._tags_here
        if store is self.store and fid == self.folder_id:
            return tags
        if self.store is None or self.folder_id is None:
            return set()
        tags = self.tags.setdefault((str(self.store.path), self.folder_id), set())
        self._tags_here = (self.store, self.folder_id, tags)
        return tags

    @property
    def current_uid(self) -> int | None:
        if 0 <= self.cursor < len(self.uids):
            return self.uids[self.cursor]
        return None

    def current_row(self) -> MessageRow | None:
        uid = self.current_uid
        if uid is not None and self.source is not None:
            row = self._rows.get(uid) or self.source.rows([uid]).get(uid)
            return self._shown(row, uid)
        if uid is None or self.store is None:
            return None
        row = self._rows.get(uid)
        if row is None and self.folder_id is not None:
            row = self.store.row(self.folder_id, uid)
            if row is not None:
                self._rows[uid] = row
        return self._shown(row)

    def _shown(self, row: MessageRow | None, key: int | None = None) -> MessageRow | None:
        """The row with the queued intents on top (its flags as the user set them)."""
        if self.source is not None:
            return self.source.shown(key, row) if row is not None and key is not None else row
        ov = self.overlay
        if not ov or row is None or self.store is None or self.folder_id is None:
            return row
        return ov.row(self.store, self.folder_id, row) or row

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        return thumb_scrollbar(self)  # (drawn again only when its thumb moves)

    def _on_mount(self, event: events.Mount) -> None:
        # The scrollbar is made now, with the other widgets, not when the first rows overflow
        # the list: made then, its styles arrive after the first frame and the whole screen is
        # laid out and rendered a second time (~20 ms of a first screen).
        super()._on_mount(event)
        self.app.update_styles(thumb_scrollbar(self), animate=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.__dict__.pop("_base_style_cache", None)
        self._rich_components.clear()
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
        if not missing or ((self.store is None or self.folder_id is None) and self.source is None):
            return
        if len(self._rows) + len(missing) > ROW_CACHE:
            keep = set(self.uids[lo:hi])
            self._rows = {u: r for u, r in self._rows.items() if u in keep}
        if self.source is not None:
            self._rows.update(self.source.rows(missing))
        elif self.store is not None and self.folder_id is not None:
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
                self.call_later(self.loader._reload)
            self._painted = True
        if idx >= len(self.uids):
            if idx == 0 and width:
                style = base + self._component("header-list--empty")
                return Strip([Segment(set_cell_size("  " + self.empty_text, width), style)], width)
            return Strip.blank(width, base)
        uid = self.uids[idx]
        row = self._rows.get(uid)
        if row is None:
            self._load_window()
            row = self._rows.get(uid)
            if row is None:
                return Strip.blank(width, base)
        if self.overlay:
            row = self._shown(row, uid) or row
        state = 0
        if idx == self.cursor:
            state = 1 if self.has_focus else 2
        tagged = uid in self.tagged
        key = (uid, row.flags, width, state, self._collapsed_label(uid) if self.threaded else None, tagged)
        strip = self._strips.get(key)
        if strip is not None:
            self._strips.move_to_end(key)
            return strip
        strip = self._render_row(row, width, state, base, tagged)
        self._strips[key] = strip
        if len(self._strips) > STRIP_CACHE:
            self._strips.popitem(last=False)
        return strip

    def _component(self, name: str) -> Style:
        """get_component_rich_style(name), kept until the next style change: Textual forgets its
        own copy on every refresh (each cursor move, each reload), after which each row worked
        it out from the CSS again (up to five of them a row)."""
        style = self._rich_components.get(name)
        if style is None:
            style = self._rich_components[name] = self.get_component_rich_style(name)
        return style

    def _render_row(self, row: MessageRow, width: int, state: int, base: Style, tagged: bool = False) -> Strip:
        fl = row.flags
        style = base
        if SEEN not in fl or (row.id in self.collapsed and self._thread_unread.get(row.id)):
            style += self._component("header-list--unread")  # (a collapsed thread: bold if unread)
        if FLAGGED in fl:
            style += self._component("header-list--flagged")
        if DELETED in fl:
            style += self._component("header-list--deleted")
        if tagged:
            style += self._component("header-list--tagged")
        if state == 1:
            style += self._component("header-list--cursor")
        elif state == 2:
            style += self._component("header-list--cursor-blurred")
        dim = style + self._component("header-list--dim") if state == 0 else style
        compact = width < 90 and not self.dates.fmt
        w_flags, w_date, w_from, w_subj, w_size = columns(width, COMPACT if compact else self.dates.width)
        # mutt's %Z: a tag's "*" before the flag's "!" (a flagged row keeps its colour)
        marks = ("N" if SEEN not in fl else " ") + ("*" if tagged else "!" if FLAGGED in fl else
                                                  "D" if DELETED in fl else " ")
        marks += "r" if ANSWERED in fl else "@" if row.has_attachment else " "
        subject = sanitize_line(row.subject) or "(no subject)"
        if self.threaded:
            # The tree prefix is drawn as stored: its leading spaces ARE the indentation (a
            # sanitize_line here once collapsed them and drew every reply as a sibling).
            prefix = tree_prefix(row.thread_prefix)
            label = self._collapsed_label(row.id)
            subject = f"{prefix}{label} {subject}" if label else f"{prefix}{subject}"
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

    def _collapsed_label(self, uid: int) -> str:
        """"(5, 2 unread)" on the root of a collapsed thread of 5 messages, "(5)" when all are read."""
        if uid not in self.collapsed:
            return ""
        n = self._thread_size.get(uid, 1)
        unread = self._thread_unread.get(uid, 0)
        return f"({n}, {unread} unread)" if unread else f"({n})"

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
        idx = self.loader.index_of(uid)
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

    # ------------------------------------------------------------------ loading (list_loading.py)

    def load(self, store: Store | None, folder_id: int | None, *, keep_uid: int | None = None,
             keep_row: bool = True, first_page: int = 0) -> None:
        self.loader.load(store, folder_id, keep_uid=keep_uid, keep_row=keep_row, first_page=first_page)

    def ensure_complete(self) -> None:
        self.loader.ensure_complete()

    def set_limit(self, limit: Limit | None, order: tuple[object, ...] | None = None, *,
                  keep_row: bool = False) -> None:
        """Show only the limit's ids (None: the whole folder again). `order` is the folder's order
        read with the limit's evaluation (off the UI thread); without it the list is read again in
        a thread (list_loading.py), the cursor staying on its message."""
        self.limit = limit
        if order is not None:
            self.loader._apply(order, True, self.current_uid, keep_row=keep_row)
        else:
            self.loader._reload()

    def show_source(self, source: VirtualSource, empty_text: str = "No message matches") -> None:
        """Show a virtual folder (list_source.py): its entries, in its order."""
        self.loader.load(None, None)  # (the folder's reloads stop: its token moves on)
        self.source = source
        self.empty_text = empty_text
        self.uids = source.keys()
        self.cursor = 0
        self._rows.clear()
        self._strips.clear()
        set_virtual_height(self, len(self.uids))
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def entries_changed(self, account: str, ids: Iterable[int]) -> None:
        """Rows of a virtual folder changed in their store (an intent stored, a sync): read again."""
        if self.source is None:
            return
        keys = {k for k in (self.source.key_of(account, i) for i in ids) if k is not None}
        self.loader.invalidate(keys)

    def source_keys(self, account: str, ids: Iterable[int]) -> list[int]:
        """The list ids of these local ids of `account` (themselves, but in a virtual folder)."""
        if self.source is None:
            return list(ids)
        return [k for k in (self.source.key_of(account, i) for i in ids) if k is not None]

    def rows_changed(self, uids: Iterable[int] = (), added: Iterable[int] = (), removed: Iterable[int] = (),
                     reset: bool = False) -> None:
        removed = tuple(removed)
        if removed and self.tagged:
            self.tagged.difference_update(removed)  # (gone from the folder: its tag with it)
        self.loader.rows_changed(uids, added, removed, reset)

    def invalidate(self, uids: Iterable[int]) -> None:
        self.loader.invalidate(uids)

    def intent_queued(self, uids: Iterable[int]) -> None:
        """A flag change was queued (ui/overlay.py): the cached rows stay, drawn with the overlay on
        top, and only their lines are repainted, so the key's path reads nothing from the store.
        A collapsed thread's unread count is read again (invalidate)."""
        uids = set(uids)
        if self.threaded and self.collapsed:
            self.loader.invalidate(uids)
        else:
            self.loader.refresh_uids(uids)

    def flags_stored(self, uids: Iterable[int], add: Iterable[str], remove: Iterable[str]) -> None:
        self.loader.flags_stored(uids, add, remove)

    def hidden_stored(self) -> None:
        self.loader.hidden_stored()

    def remove_uids(self, uids: Iterable[int]) -> None:
        uids = tuple(uids)
        if self.tagged:
            self.tagged.difference_update(uids)
        self.loader.remove_uids(uids)

    def set_order(self, *, sort: str | None = None, reverse: bool | None = None,
                  threaded: bool | None = None) -> None:
        if self.source is not None:
            self.notify("search results are in date order", markup=False, timeout=2)
            return
        self.loader.set_order(sort=sort, reverse=reverse, threaded=threaded)

    def on_uids_read(self, msg: UidsRead) -> None:
        msg.stop()
        self.loader.uids_read(msg)

    # ------------------------------------------------------------------ keys (list_actions.py)

    def action_cursor_down(self) -> None:
        self.actions.cursor_down()

    def action_cursor_up(self) -> None:
        self.actions.cursor_up()

    def action_page_down(self) -> None:
        self.actions.page_down()

    def action_page_up(self) -> None:
        self.actions.page_up()

    def action_first(self) -> None:
        self.actions.first()

    def action_last(self) -> None:
        self.actions.last()

    def action_open(self) -> None:
        self.actions.open()

    def action_next_unread(self) -> None:
        self.actions.next_unread()

    def action_sort(self) -> None:
        self.actions.sort()

    def action_sort_reverse(self) -> None:
        self.actions.sort_reverse()

    def action_threaded(self) -> None:
        self.actions.threaded()

    def action_collapse_thread(self) -> None:
        self.actions.collapse_thread()

    def action_collapse_all(self) -> None:
        self.actions.collapse_all()
