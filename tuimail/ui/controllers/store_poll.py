"""Changes another process (a `tuimail sync` from cron) wrote to the store: `PRAGMA data_version`
is polled every STORE_POLL seconds on the UI's connection (a few microseconds) and a change
reloads the list, the folder counts and the pending count (Folders.store_changed, folders.py)."""

from __future__ import annotations

from collections.abc import Callable

from tuimail.ui.controllers.view import MainView

STORE_POLL = 1.0  # seconds between PRAGMA data_version checks


class StorePoll:
    def __init__(self, view: MainView, changed: Callable[[str], None]) -> None:
        """changed(account): what another connection committed is to be shown."""
        self.view, self.changed = view, changed
        self._versions: dict[str, int] = {}

    def start(self) -> None:
        for name, store in self.view.tapp.stores.items():
            try:
                self._versions[name] = store.data_version()
            except Exception:  # a damaged store is reported elsewhere; the poll tries again
                pass

    def poll(self) -> None:
        """Reload what another connection committed since the last poll (our sync thread's commits
        come with events too; both paths are coalesced by the list's and the tree's timers)."""
        accounts = self.view.status.info.accounts  # (a syncing account's commits come with events)
        for name, store in self.view.tapp.stores.items():
            if name in accounts and accounts[name].state == "syncing":
                continue  # our own sync reports its commits; what others wrote meanwhile is seen after it
            try:
                now = store.data_version()
            except Exception:  # a damaged or vanished store is reported elsewhere
                continue
            if self._versions.get(name) == now:
                continue
            self._versions[name] = now
            self.changed(name)

    def own_commit(self, account: str) -> None:
        """Our intent writer committed (on a connection of its own): not a reason to reload everything."""
        store = self.view.tapp.stores.get(account)
        if store is None or account not in self._versions:
            return
        try:
            self._versions[account] = store.data_version()
        except Exception:
            pass
