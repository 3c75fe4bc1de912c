"""The main screen and the sync side (SyncEvents, held by MainScreen): the events the sync
threads or processes report (the app hands them over in batches: SyncState, NewMail,
FoldersChanged, RowsChanged), and what the user asks of the sync (s: sync now; going offline
and online).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tuimail.core.events import FoldersChanged, NewMail, RowsChanged, SyncState
from tuimail.mail.sanitize import sanitize_line
from tuimail.ui.controllers.alerts import Alerts
from tuimail.ui.controllers.folders import Folders
from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.status import AccountState

if TYPE_CHECKING:
    from tuimail.ui.controllers.compose import ComposeController
    from tuimail.ui.controllers.limit import LimitController


class SyncEvents:
    def __init__(self, view: MainView, alerts: Alerts, folders: Folders,
                 compose: Callable[[], ComposeController], limiter: Callable[[], LimitController]) -> None:
        """compose() and limiter() make those controllers on first use (the screen's properties)."""
        self.view, self.alerts, self.folders = view, alerts, folders
        self._compose, self._limiter = compose, limiter
        self._made_compose: ComposeController | None = None
        self._sync_states: dict[str, SyncState] = {}  # the last one per account before compose is made

    def compose_made(self, ctl: ComposeController) -> None:
        """The compose controller exists now: it hears the sync states from here on, and the last
        one of each account until now."""
        for ev in self._sync_states.values():
            ctl.sync_state(ev)
        self._sync_states.clear()
        self._made_compose = ctl

    def handle(self, evs: list[object]) -> None:
        view = self.view
        app = view.tapp
        status_dirty = False
        for ev in evs:
            if isinstance(ev, SyncState):
                st = view.status.info.accounts.setdefault(ev.account, AccountState())
                st.state = "offline" if app.offline else ev.state
                st.folder, st.done, st.total, st.pending = ev.folder, ev.done, ev.total, ev.pending
                st.error = sanitize_line(ev.error) if ev.error else (None if ev.state != "error" else st.error)
                self.alerts.sync_state_changed(ev, st)
                if self._made_compose is not None:
                    self._made_compose.sync_state(ev)
                else:
                    self._sync_states[ev.account] = ev
                view.show_problem()
                status_dirty = True
            elif isinstance(ev, NewMail):
                self.alerts.new_mail(ev)
            elif isinstance(ev, FoldersChanged):
                self.folders.folders_dirty(ev.account)
            elif isinstance(ev, RowsChanged):
                if ev.account == view.account and view.folder is not None and ev.folder_id == view.folder.id:
                    view.hlist.rows_changed(ev.ids, ev.added, ev.removed, ev.reset)
                    if ev.added and view.hlist.limit is not None:
                        self._limiter().rows_added()  # new mail that matches the limit joins it
                self.folders.counts_changed(ev.account, ev.folder_id)
        self.folders.flush_soon()
        if status_dirty:
            view.update_status()

    def sync_now(self) -> None:
        view = self.view
        if view.tapp.offline:
            key = ", ".join(view.tapp.effective_keys.get("toggle_offline", ())) or "the palette"
            view.notify(f"offline: changes are queued; {key} goes online", markup=False)
            return
        for svc in view.tapp.services.values():
            svc.request_sync(None)
        view.notify("sync requested", markup=False, timeout=2)

    def toggle_offline(self) -> None:
        view = self.view
        app = view.tapp
        app.offline = not app.offline
        for name, svc in app.services.items():
            svc.set_offline(app.offline)
            st = view.status.info.accounts.get(name)
            if st is not None:
                st.state = "offline" if app.offline else "connecting"
        compose = self._compose()
        if not app.offline:
            compose.went_online()
        compose.offline_changed()
        view.update_status()
