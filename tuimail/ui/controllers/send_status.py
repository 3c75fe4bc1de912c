"""The status bar while a message leaves: "sending in 5 s — u to undo", counting down each second,
then "sending…", then the drain's outcome ("sent: Subject" or the one-line failure).

Plain object over the main view's status line (view.status.info.flash); the compose controller
starts a countdown when a message is queued, stops it on undo, and hands it the drain's report
line for the account (controllers/outbox_drain.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tuimail.mail.sanitize import sanitize_line
from tuimail.ui.controllers.view import MainView

RESULT_SECONDS = 6.0  # how long "sent" / the failure keeps the status line


OFFLINE_LINE = "offline: in the outbox, sent when back online"


class SendStatus:
    def __init__(self, view: MainView, clock: Callable[[], float]) -> None:
        self.view = view
        self.clock = clock
        self.ends: dict[int, float] = {}  # outbox id -> end of its undo window
        self.accounts: dict[int, str] = {}
        self.waiting: set[str] = set()  # accounts with a message past its window, outcome not shown yet
        self._timer: Any = None
        self._shown = ""

    def _undo_hint(self) -> str:
        eff = self.view.tapp.effective_keys
        keys = eff.get("undo_send") or eff.get("undo", ())  # (u is the general undo, H3)
        return f" — {keys[0]} to undo" if keys else ""

    def start(self, entry_id: int, account: str, hold: float) -> None:
        self.ends[entry_id] = self.clock() + hold
        self.accounts[entry_id] = account
        self._tick()
        if self._timer is None:
            self._timer = self.view.set_timer(0.25, self._next)

    def _next(self) -> None:
        self._timer = None
        self._tick()
        if self.ends:
            self._timer = self.view.set_timer(0.25, self._next)

    def over(self, entry_id: int, account: str) -> None:
        """The window ended (or there was none): the message is on its way."""
        self.ends.pop(entry_id, None)
        self.accounts.pop(entry_id, None)
        self.waiting.add(account)
        self._tick()

    def undone(self, entry_id: int) -> None:
        self.ends.pop(entry_id, None)
        self.accounts.pop(entry_id, None)
        self._tick()

    def outcome(self, account: str, line: str) -> bool:
        """The drain's report for `account`: shown in the status line if a message of ours waited
        for it (True)."""
        if account not in self.waiting:
            return False
        self.waiting.discard(account)
        self._show(sanitize_line(line), RESULT_SECONDS)
        return True

    def _tick(self) -> None:
        now = self.clock()
        if self.ends:
            entry_id = min(self.ends, key=lambda k: self.ends[k])
            left = max(1, math.ceil(self.ends[entry_id] - now - 1e-6))
            more = f" (+{len(self.ends) - 1} more)" if len(self.ends) > 1 else ""
            self._show(f"sending in {left} s{self._undo_hint()}{more}")
            return
        if self.waiting:
            self._show(OFFLINE_LINE if self.view.tapp.offline else "sending…")
        elif self._shown.startswith(("sending in", "sending…", OFFLINE_LINE)):
            self._show("")

    def refresh(self) -> None:
        """The app went offline or online: the line follows."""
        self._tick()

    def _show(self, text: str, seconds: float = 0.0) -> None:
        info = self.view.status.info
        if info.flash == self._shown or not info.flash:
            info.flash = text
            self.view.update_status()
        self._shown = text
        if text and seconds > 0:
            def restore() -> None:
                if info.flash == text:
                    info.flash = ""
                    self.view.update_status()

            self.view.set_timer(seconds, restore)

    def flash(self, text: str, seconds: float) -> None:
        """Any short line in the status bar for `seconds` (undo's "undone: ..."), over the countdown."""
        info = self.view.status.info
        info.flash = text
        self.view.update_status()
        if text and seconds > 0:
            def restore() -> None:
                if info.flash == text:
                    info.flash = ""
                    self.view.update_status()

            self.view.set_timer(seconds, restore)
