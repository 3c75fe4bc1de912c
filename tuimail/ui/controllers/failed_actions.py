"""The actions that wait or failed, for the main screen: the list `!` opens (screens/failed.py)
and what follows when it closes, and the status bar's count of failed ones, read in a thread
(FailedSummaryRead, posted to the screen)."""

from __future__ import annotations

from collections.abc import Iterable

from textual.message import Message

from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.status import AccountState


class FailedSummaryRead(Message, bubble=False):
    """Failed actions per account: {account: [(folder, count)]}."""

    def __init__(self, failed: dict[str, list[tuple[str, int]]]) -> None:
        super().__init__()
        self.failed = failed


class FailedActions:
    def __init__(self, view: MainView) -> None:
        self.view = view

    def show(self) -> None:
        """The list of waiting and failed actions; discarded ones put their rows back."""
        from tuimail.ui.screens.failed import ActionsScreen
        view = self.view
        app = view.tapp
        screen = ActionsScreen(app.stores)

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

    def refresh(self, accounts: Iterable[str] | None = None) -> None:
        """The same, read again in a thread (FailedSummaryRead comes back to the screen)."""
        self.view.read_stores(set(accounts or self.view.tapp.stores),
                              lambda stores: {a: st.failed_summary() for a, st in stores.items()}, FailedSummaryRead)

    def summary_read(self, msg: FailedSummaryRead) -> None:
        view = self.view
        for account, failed in msg.failed.items():
            view.status.info.accounts.setdefault(account, AccountState()).failed = failed
        view.update_status()
