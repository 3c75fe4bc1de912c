"""`l` limit and `/` search in the header list (held by MainScreen, whose action_* delegate here).

limit: a pattern (core/pattern.py) asked for on the bottom line; the folder's matches are worked
out in a thread (controllers/finding.py) together with the folder's order, and the list then shows
those ids only (ui/widgets/list_source.py: a limited folder). `l` with `all`, `~A`, `.`, nothing,
or Escape shows the whole folder again. A bad pattern is one line pointing at its token and
changes nothing.

search: `/` (forward) and `\\` (backward) move the cursor to the next message of the list (a
folder, a limited folder, or a virtual folder) that matches; `.` repeats it the same way, `,`
the other way (the mutt keymap: `n`). It wraps with a note; "not found" is one line.
"""

from __future__ import annotations

from collections.abc import Collection

from textual.timer import Timer

from tuimail.core.pattern import Pattern
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.store import Store
from tuimail.trace import trace
from tuimail.ui.controllers.finding import ALL_WORDS, FolderMatch, match_folder, parse_or_say, run_finding
from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.line_prompt import LinePrompt
from tuimail.ui.widgets.list_loading import ListLoader, Order
from tuimail.ui.widgets.list_source import Limit

RELIMIT_DELAY = 1.0  # seconds after new rows before the limit is worked out again


class LimitController:
    def __init__(self, view: MainView) -> None:
        self.view = view
        self._token = 0
        self.last_search = ""
        self.last_backward = False
        self._again: Timer | None = None  # a limit to work out again (new rows came)

    # ------------------------------------------------------------------ limit

    def prompt_limit(self) -> None:
        hl = self.view.hlist
        if hl.source is not None:
            self.view.notify("limit works on a folder: open one first", markup=False)
            return
        hint = f"now {hl.limit.pattern}; Enter alone: every message" if hl.limit is not None else "e.g. ~f haddad ~U"
        self.view.tapp.push_screen(LinePrompt("Limit to messages matching:", placeholder=hint), self.limit)

    def rows_added(self) -> None:
        """New rows in the limited folder: the limit is worked out again a moment later (once for
        a burst), so that new mail matching it shows up (mutt does the same)."""
        if self.view.hlist.limit is not None and self._again is None:
            self._again = self.view.set_timer(RELIMIT_DELAY, self._relimit)

    def _relimit(self) -> None:
        self._again = None
        lim = self.view.hlist.limit
        if lim is not None:
            self.limit(lim.pattern, quiet=True)

    def limit(self, text: str | None, *, quiet: bool = False) -> None:
        view, hl = self.view, self.view.hlist
        text = (text or "").strip()
        if text in ALL_WORDS:
            self._token += 1  # (a limit still being worked out is dropped)
            if hl.limit is not None:
                hl.empty_text = "No messages in this folder"
                hl.set_limit(None)
                view.update_status()
            return
        pattern = parse_or_say(view, text)
        account, folder = view.account, view.folder
        if pattern is None or account is None or folder is None or hl.source is not None:
            return
        trace(f"limit asked: {len(hl.uids)} rows")
        app = view.tapp
        svc, offline = app.services.get(account), app.offline
        order_key = (hl.threaded, hl.sort, hl.reverse)
        # the whole folder's order is on screen already (the usual case): it is filtered on the UI
        # thread (~10 ms at 100k), else the worker reads it with the matches
        reuse = self._whole_list()
        self._token += 1
        token = self._token

        def work(stores: dict[str, Store]) -> tuple[FolderMatch, Order | None]:
            st = stores[account]
            m = match_folder(st, svc, offline, folder.id, folder.name, text, pattern)
            trace(f"limit matched {len(m.ids)}")
            return m, None if reuse else ListLoader._query(st, folder.id, *order_key)

        def done(result: tuple[FolderMatch, Order | None]) -> None:
            if (token != self._token or hl.source is not None or view.account != account
                    or view.folder is None or view.folder.id != folder.id):
                return  # the user moved on
            m, order = result
            if order is None and self._whole_list():
                order = ("list", hl.uids)
            elif order_key != (hl.threaded, hl.sort, hl.reverse):
                order = None  # (read again, in the order now asked for)
            total = len(order[1]) if order is not None else max(0, folder.total)
            hl.empty_text = "No message matches the limit"
            hl.set_limit(Limit(text, frozenset(m.ids), total, m.note), order, keep_row=quiet)
            view.update_status()
            trace("limit applied")
            if m.note and not quiet:
                view.notify(m.note, severity="warning", markup=False, timeout=6)

        run_finding(view, [account], work, done)

    def _whole_list(self) -> bool:
        """The list holds the folder's whole order in list mode (no limit, not a first page)."""
        hl = self.view.hlist
        return hl.limit is None and hl.source is None and not hl.partial and not hl.threaded and hl.store is not None

    def status_text(self) -> str:
        hl = self.view.hlist
        if hl.source is not None:
            n = len(hl.source)
            return f"search: {hl.source.pattern} ({n:,} found)"
        return hl.limit.status() if hl.limit is not None else ""

    # ------------------------------------------------------------------ search in the list

    def prompt_search(self, backward: bool = False) -> None:
        label = "Search backward for:" if backward else "Search for:"
        hint = f"Enter alone: {self.last_search}" if self.last_search else "e.g. ~s invoice"
        self.view.tapp.push_screen(LinePrompt(label, placeholder=hint), lambda text: self.search(text, backward))

    def search(self, text: str | None, backward: bool = False) -> None:
        """Search for `text` (nothing: the last pattern again, this way; Escape: None, nothing)."""
        if text is None:
            return
        text = text.strip() or self.last_search
        if not text:
            return
        pattern = parse_or_say(self.view, text)
        if pattern is None:
            return
        self.last_search, self.last_backward = text, backward
        self._find(text, pattern, backward)

    def search_next(self, reverse: bool = False) -> None:
        if not self.last_search:
            self.view.notify("no search yet: / searches", markup=False, timeout=3)
            return
        pattern = parse_or_say(self.view, self.last_search)
        if pattern is not None:
            self._find(self.last_search, pattern, self.last_backward != reverse)

    def _find(self, text: str, pattern: Pattern, backward: bool) -> None:
        view, hl = self.view, self.view.hlist
        app = view.tapp
        offline = app.offline
        src = hl.source
        # what to search: {account: {folder id: name}} (a virtual folder: its entries' folders)
        where: dict[str, dict[int, str]] = {}
        if src is not None:
            where = src.folders()
        elif view.account is not None and view.folder is not None:
            where = {view.account: {view.folder.id: view.folder.name}}
        if not where or not hl.uids:
            return
        self._token += 1
        token, shown = self._token, (hl.store, hl.folder_id)

        def work(stores: dict[str, Store]) -> tuple[set[tuple[str, int]], list[str]]:
            found: set[tuple[str, int]] = set()
            notes: list[str] = []
            for account, folders in where.items():
                for fid, name in folders.items():
                    m = match_folder(stores[account], app.services.get(account), offline, fid, name, text, pattern)
                    found |= {(account, i) for i in m.ids}
                    if m.note:
                        notes.append(m.note)
            return found, notes

        def done(result: tuple[set[tuple[str, int]], list[str]]) -> None:
            if token != self._token or (hl.store, hl.folder_id) != shown or hl.source is not src:
                return
            found, notes = result
            if src is not None:
                keys: Collection[int] = {k for k in (src.key_of(a, i) for a, i in found) if k is not None}
            else:
                keys = {i for _a, i in found}
            self._move(keys, backward, text, notes)

        run_finding(view, where, work, done)

    def _move(self, keys: Collection[int], backward: bool, text: str, notes: list[str]) -> None:
        view, hl = self.view, self.view.hlist
        hl.ensure_complete()
        uids, n, start = hl.uids, len(hl.uids), hl.cursor
        order = (list(range(start - 1, -1, -1)) + list(range(n - 1, start - 1, -1)) if backward
                 else list(range(start + 1, n)) + list(range(start + 1)))
        at = next((i for i in order if uids[i] in keys), None)
        if at is None:
            note = f"not found: {sanitize_line(text)[:60]}"
            view.notify(note + (f" ({notes[0]})" if notes else ""), severity="warning", markup=False, timeout=4)
            return
        if (at <= start) if not backward else (at >= start):
            view.notify("search wrapped to the bottom" if backward else "search wrapped to the top",
                        markup=False, timeout=2)
        hl.move_cursor(at)
