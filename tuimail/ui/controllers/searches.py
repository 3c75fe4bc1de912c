"""Searches across every folder of every account, shown as virtual folders (held by MainScreen).

The folder tree has a `[searches]` node: the config's `[searches]` table (name = pattern) and the
last ad-hoc search (`S`, "search all folders"). Each shows its count, worked out from the stores
in a thread (controllers/finding.py) after the first paint and again when a store changes (a
flag, new mail, a move): at most once a second, or ten times as long as the last count took.
Opening one evaluates it across every folder — online, asking the servers about bodies the stores
do not hold — and shows the results in the header list as a virtual folder (ui/widgets/
list_source.py): each entry is (account, folder, local id), and open, flag, move and delete act on
the message in its own folder (controllers/target.py).
"""

from __future__ import annotations

import time

from textual.timer import Timer

from tuimail.core.pattern import PatternError, parse
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.store import Store
from tuimail.ui.controllers.finding import AllMatch, match_all, parse_or_say, run_finding
from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.line_prompt import LinePrompt
from tuimail.ui.widgets.list_source import VirtualSource

COUNTS_INTERVAL = 1.0  # seconds between recounts caused by store changes
ADHOC_PREFIX = "/ "  # the ad-hoc search's name in the tree: "/ PATTERN"


class SearchesController:
    def __init__(self, view: MainView) -> None:
        self.view = view
        self.adhoc: str | None = None  # the last "search all folders" pattern
        self.open_name: str | None = None  # the virtual folder on screen
        self._timer: Timer | None = None
        self._counting = False
        self._again = False
        self._started = False
        self._token = 0
        self._interval = COUNTS_INTERVAL

    def all(self) -> dict[str, str]:
        """name -> pattern, in tree order."""
        out = dict(self.view.tapp.config.searches)
        if self.adhoc is not None:
            out[ADHOC_PREFIX + self.adhoc] = self.adhoc
        return out

    # ------------------------------------------------------------------ counts

    def start(self) -> None:
        """After the first paint: the [searches] node, then its counts."""
        self._started = True
        self._show({})
        self.refresh_counts()

    def stores_changed(self) -> None:
        """A store changed: the counts (and an open virtual folder's rows) are read again soon."""
        if not self._started:
            return
        hl = self.view.hlist
        if hl.source is not None:  # the rows on screen are read again (flags changed elsewhere)
            top = hl.scroll_offset.y
            hl.invalidate(hl.uids[top:top + hl.size.height])
        if self._timer is None and self.all():
            self._timer = self.view.set_timer(self._interval, self.refresh_counts)

    def refresh_counts(self) -> None:
        self._timer = None
        searches = self.all()
        if not searches:
            return
        if self._counting:
            self._again = True
            return
        patterns = {}
        for name, text in searches.items():
            try:
                patterns[name] = (text, parse(text))
            except PatternError:
                continue  # (config validation catches these; an ad-hoc one was checked)
        self._counting = True

        def work(stores: dict[str, Store]) -> tuple[dict[str, int], float]:
            t0 = time.monotonic()
            counts = {name: len(match_all(stores, {}, True, text, p, ask_servers=False).hits)
                      for name, (text, p) in patterns.items()}
            return counts, time.monotonic() - t0

        def done(result: tuple[dict[str, int], float]) -> None:
            counts, took = result
            # (counting big stores while a sync fills them: a recount waits 10x as long as the
            # last one took, so that it never takes more than a tenth of the time)
            self._interval = max(COUNTS_INTERVAL, 10 * took)
            self._counting = False
            self._show(counts)
            if self._again:
                self._again = False
                self.refresh_counts()

        def failed(exc: BaseException) -> None:
            self._counting = False

        run_finding(self.view, self.view.tapp.stores, work, done, failed)

    def _show(self, counts: dict[str, int]) -> None:
        self.view.folder_tree.set_searches([(name, counts.get(name)) for name in self.all()])

    # ------------------------------------------------------------------ opening

    def prompt_all(self) -> None:
        hint = f"Enter alone: {self.adhoc}" if self.adhoc else "e.g. ~b invoice"
        self.view.tapp.push_screen(LinePrompt("Search all folders for:", placeholder=hint), self.search_all)

    def search_all(self, text: str | None) -> None:
        if text is None:
            return
        text = text.strip() or self.adhoc or ""
        if not text or parse_or_say(self.view, text) is None:
            return
        self.adhoc = text
        self._show({})
        self.open(ADHOC_PREFIX + text)
        self.refresh_counts()

    def open(self, name: str) -> None:
        """Evaluate search `name` across every folder and show its results as a virtual folder."""
        view = self.view
        text = self.all().get(name)
        if text is None:
            return
        pattern = parse_or_say(view, text)
        if pattern is None:
            return
        app = view.tapp
        services, offline = dict(app.services), app.offline
        self._token += 1
        token = self._token
        view.notify(f"searching every folder for {sanitize_line(text)[:40]}…", markup=False, timeout=2)

        def work(stores: dict[str, Store]) -> AllMatch:
            return match_all(stores, services, offline, text, pattern)

        def done(m: AllMatch) -> None:
            if token != self._token:
                return
            source = VirtualSource.build(name, text, app.stores, m.hits, overlay=app.overlay,
                                         note="; ".join(m.notes))
            self.open_name = name
            view.reader.clear()
            view.account, view.folder = None, None
            info = view.status.info
            info.folder, info.total, info.unread, info.folder_error = f"[searches] {name}", len(source), 0, ""
            view.hlist.show_source(source)
            view.hlist.focus()
            view.folder_tree.select_search(name)
            view.update_status()
            for note in m.notes[:2]:
                view.notify(note, severity="warning", markup=False, timeout=6)

        def failed(exc: BaseException) -> None:
            view.notify(sanitize_line(f"search failed: {exc}"), severity="error", markup=False)

        run_finding(view, app.stores, work, done, failed)
