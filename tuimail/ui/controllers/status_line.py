"""The main screen's status bar (StatusLine, held by MainScreen): the open folder, its counts and
its problem, the sort, the limit and the tagged count; a note for a few seconds ("x: key not
bound"). What the sync reports goes into the same bar's per-account states (sync_events.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tuimail.ui.controllers.folders import folder_problem
from tuimail.ui.controllers.view import MainView

if TYPE_CHECKING:
    from tuimail.ui.controllers.limit import LimitController

FLASH = 3.0  # seconds a note stays in the status line


class StatusLine:
    def __init__(self, view: MainView, limiter: Callable[[], LimitController]) -> None:
        """limiter() makes the limit controller on first use (the screen's property)."""
        self.view, self._limiter = view, limiter

    def update(self) -> None:
        view = self.view
        info = view.status.info
        info.account = view.account or ""
        if view.folder is not None:
            info.folder = view.folder.name
            info.total, info.unread = view.folder.total, view.folder.unread
            info.folder_error = folder_problem(view.folder)
        hl = view.hlist
        info.sort = ("thread" if hl.threaded else hl.sort) + (" ↑" if hl.reverse else "")
        info.limit = self._limiter().status_text() if hl.limit is not None or hl.source is not None else ""
        info.tagged = len(hl.tagged)
        view.status.show()

    def flash(self, note: str) -> None:
        """A note in the status line for a few seconds (until another replaces it)."""
        info = self.view.status.info
        info.flash = note
        self.update()

        def restore() -> None:
            if info.flash == note:
                info.flash = ""
                self.update()

        self.view.set_timer(FLASH, restore)

    def unbound_key(self, key: str) -> None:
        """A key no binding took: say so in the status line (mutt does)."""
        from tuimail.ui.keys import display_key

        help_keys = self.view.tapp.effective_keys.get("help", ())
        help_note = f", {display_key(help_keys[0])} for help" if help_keys else ""
        self.flash(f"{display_key(key)}: key not bound{help_note}")
