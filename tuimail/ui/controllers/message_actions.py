"""Actions on messages: read/unread, flag, delete, archive, move, and marking read once opened.

They are intents, queued to the account's writer thread (controllers/intents.py): the row
changes on screen at once, the writer stores the change with its journal entry, which carries it
to the server, and wakes the sync worker.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.timer import Timer

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.store import FolderInfo, MessageRow
from tuimail.store.writer import Intent
from tuimail.ui.controllers.intents import IntentQueue
from tuimail.ui.controllers.target import Target, current_target, shows
from tuimail.ui.controllers.view import MainView

from tuimail.core.flags import FLAGGED, SEEN


class MessageActions:
    def __init__(self, view: MainView, intents: IntentQueue) -> None:
        self.view, self.intents = view, intents
        self._mark_timer: Timer | None = None

    def _here(self, t: Target) -> bool:
        """t is in the open folder."""
        view = self.view
        return view.folder is not None and t.folder_id == view.folder.id and t.account == view.account

    def _listed(self, t: Target) -> list[int]:
        """t's list ids when the list is a virtual folder (a search across folders) that holds it."""
        hl = self.view.hlist
        return hl.source_keys(t.account, [t.uid]) if hl.source is not None else []

    def set_flags(self, t: Target, add: Iterable[str] = (), remove: Iterable[str] = (), *,
                  record: bool = True) -> None:
        """Queued to the account's writer (controllers/intents.py): the row shows the change at once.
        record: kept in the undo history (not a mark-read by opening)."""
        self.intents.submit(t.account, Intent("flags", t.folder_id, (t.uid,), tuple(add), tuple(remove),
                                              record=record))
        if self._here(t):
            self.view.hlist.intent_queued([t.uid])  # drawn from the cached row + the overlay
        elif keys := self._listed(t):
            self.view.hlist.intent_queued(keys)

    def schedule_mark_read(self, t: Target) -> None:
        """The message was opened: read after [ui] mark_read_delay, if still on screen then."""
        self._stop_mark_read()
        delay = self.view.tapp.config.ui.mark_read_delay
        if delay is None or delay < 0:
            return
        if delay == 0:
            self.set_flags(t, add=(SEEN,), record=False)
            return

        def fire() -> None:
            self._mark_timer = None
            if shows(self.view, t):
                self.set_flags(t, add=(SEEN,), record=False)  # still on screen after the delay

        self._mark_timer = self.view.set_timer(delay, fire)

    def _stop_mark_read(self) -> None:
        if self._mark_timer is not None:
            self._mark_timer.stop()
            self._mark_timer = None

    def row(self, t: Target) -> MessageRow | None:
        """The row as the user sees it: the stored one with the queued intents on top (the list's
        cached row when it is the one under the cursor: no SQLite call on the key's path)."""
        view = self.view
        if (self._here(t) and t.uid == view.hlist.current_uid) or (
                view.hlist.current_uid is not None and self._listed(t) == [view.hlist.current_uid]):
            return view.hlist.current_row()
        store = view.tapp.stores[t.account]
        return view.tapp.overlay.row(store, t.folder_id, store.row(t.folder_id, t.uid))

    def toggle_read(self) -> None:
        t = current_target(self.view)
        row = self.row(t) if t is not None else None
        if t is None or row is None:
            return
        if row.seen:
            self.set_flags(t, remove=(SEEN,))
            self._stop_mark_read()  # a pending mark-read would undo it
        else:
            self.set_flags(t, add=(SEEN,))

    def flag(self) -> None:
        t = current_target(self.view)
        row = self.row(t) if t is not None else None
        if t is None or row is None:
            return
        if row.flagged:
            self.set_flags(t, remove=(FLAGGED,))
        else:
            self.set_flags(t, add=(FLAGGED,))

    def _hide(self, t: Target, op: str, dest: str | None = None) -> None:
        """A move or delete: queued to the writer, the row leaves the list at once."""
        view = self.view
        self.intents.submit(t.account, Intent(op, t.folder_id, (t.uid,), dest=dest))
        if self._here(t):
            view.hlist.remove_uids([t.uid])
        elif keys := self._listed(t):
            view.hlist.remove_uids(keys)
        if shows(view, t):
            view.reader.clear("Message moved.")
            view.hlist.focus()

    def move_to(self, t: Target, dest: str) -> None:
        self._hide(t, "move", dest)
        self.view.notify(f"moved to {sanitize_line(dest)}", markup=False, timeout=2)

    def delete(self) -> None:
        """To the account's Trash; in the Trash (or with none), for good once confirmed."""
        view = self.view
        t = current_target(view)
        if t is None:
            return
        store = view.tapp.stores[t.account]
        trash = store.folder_by_role("trash")
        if trash is not None and trash.id != t.folder_id:
            self.move_to(t, trash.name)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._hide(t, "expunge")

        from tuimail.ui.rows import sender_name
        from tuimail.ui.screens.modals import ConfirmScreen

        row = self.row(t)
        what = (f"From {sender_name(row.from_)[:60]}: {sanitize_line(row.subject)[:120] or '(no subject)'}"
                if row else f"message {t.uid}")
        view.tapp.push_screen(ConfirmScreen("Delete this message for good?", what), answer)

    def archive(self) -> None:
        view = self.view
        t = current_target(view)
        if t is None:
            return
        arch = view.tapp.stores[t.account].folder_by_role("archive")
        if arch is None:
            view.notify("no Archive folder for this account", markup=False)
        elif arch.id != t.folder_id:
            self.move_to(t, arch.name)

    def move(self) -> None:
        view = self.view
        t = current_target(view)
        if t is None:
            return

        def chosen(value: tuple[str, FolderInfo] | None) -> None:
            if value is not None:
                _account, info = value
                self.move_to(t, info.name)

        from tuimail.ui.screens.modals import PickerScreen

        choices = view.folder_choices(t.account, exclude=t.folder_id)
        view.tapp.push_screen(PickerScreen("Move to folder", choices, [v[1].name for _l, v in choices]), chosen)
