"""The actions that wait or failed, for the main screen: the list `!` opens (screens/failed.py,
the Outbox first: controllers/outbox_view.py) and what follows when it closes, and the status
bar's count of failed actions and unsent messages, read in a thread (FailedSummaryRead, posted
to the screen)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING

from textual.message import Message

from tuimail.store.store import Store
from tuimail.ui.controllers.view import MainView, read_stores
from tuimail.ui.widgets.status import AccountState

if TYPE_CHECKING:
    from tuimail.ui.controllers.compose import ComposeController
    from tuimail.ui.controllers.outbox_view import OutboxActions


class FailedSummaryRead(Message, bubble=False):
    """Failed actions per account: {account: [(folder, count)]}; the Outbox: {account: (waiting, failed)}."""

    def __init__(self, failed: dict[str, list[tuple[str, int]]],
                 unsent: dict[str, tuple[int, int]] | None = None) -> None:
        super().__init__()
        self.failed = failed
        self.unsent = unsent or {}


def unsent_counts(store: Store, now: float | None = None) -> tuple[int, int]:
    """(messages waiting past their undo window, of which failed) for the status bar: postponed
    ones not yet in Drafts count as waiting; sent ones whose Sent copy waits do not."""
    from tuimail.store.postponed import Postponed
    now = time.time() if now is None else now
    n, failed = store.db.execute(
        "SELECT count(*), coalesce(sum(state = 'failed'), 0) FROM outbox WHERE state IN ('queued', 'failed', 'sending')"
        " AND NOT (state = 'queued' AND attempts = 0 AND hold_until > ?)", (now,)).fetchone()
    return int(n) + Postponed(store.db).count(), int(failed)


def _summary(stores: dict[str, Store]) -> FailedSummaryRead:
    return FailedSummaryRead({a: st.failed_summary() for a, st in stores.items()},
                             {a: unsent_counts(st) for a, st in stores.items()})


class FailedActions:
    def __init__(self, view: MainView, compose: Callable[[], ComposeController]) -> None:
        self.view = view
        self._compose = compose  # (made on first use, as the main screen makes it: it sets compose.outbox_changed)

    @cached_property
    def outbox(self) -> OutboxActions:
        from tuimail.ui.controllers.outbox_view import OutboxActions
        return OutboxActions(self.view, self._compose())

    def show(self) -> None:
        """The list of waiting and failed actions; discarded ones put their rows back."""
        from tuimail.ui.screens.failed import ActionsScreen
        view = self.view
        app = view.tapp
        screen = ActionsScreen(app.stores, self.outbox)

        def closed(_: None = None) -> None:
            for account, rows in screen.changed.items():
                by_folder: dict[int, list[int]] = {}
                for fid, uid in rows:
                    by_folder.setdefault(fid, []).append(uid)
                for fid, uids in by_folder.items():
                    if account == view.account and view.folder is not None and fid == view.folder.id:
                        view.hlist.invalidate(uids)
                        view.hlist.rows_changed(added=tuple(uids))
                    view.counts_changed(account, fid)
                svc = app.services.get(account)
                if svc is not None:
                    svc.wake()
            if screen.discarded:
                view.notify(f"discarded {screen.discarded} action{'s' if screen.discarded > 1 else ''}",
                            markup=False, timeout=3)
                view.folders_changed(app.stores)  # a gone folder goes with its last action
            if view.folder is not None and view.account is not None:
                # the pending count too (another process may have sent some)
                view.counts_changed(view.account, view.folder.id)
            self.refresh()

        app.push_screen(screen, closed)

    def read_counts(self) -> None:
        """Each account's failed actions, for the status bar (at start, on the UI thread)."""
        view = self.view
        for name, store in view.tapp.stores.items():
            view.status.info.accounts.setdefault(name, AccountState()).failed = store.failed_summary()
        self.refresh()  # the Outbox's count too, in a thread

    def refresh(self, accounts: Iterable[str] | None = None) -> None:
        """The same, read again in a thread (FailedSummaryRead comes back to the screen)."""
        read_stores(self.view, set(accounts or self.view.tapp.stores), _summary, lambda msg: msg)

    def summary_read(self, msg: FailedSummaryRead) -> None:
        view = self.view
        for account, failed in msg.failed.items():
            view.status.info.accounts.setdefault(account, AccountState()).failed = failed
        for account, unsent in msg.unsent.items():
            view.status.info.accounts.setdefault(account, AccountState()).unsent = unsent
        view.update_status()

    def outbox_changed(self, account: str) -> None:
        """A drain reported: the count follows, and the open `!` list."""
        from tuimail.ui.screens.failed import ActionsScreen
        self.refresh([account])
        for screen in self.view.tapp.screen_stack:
            if isinstance(screen, ActionsScreen):
                screen.load_outbox()
