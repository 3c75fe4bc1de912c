"""Actions on messages, mixed into the main screen.

Intents (flags, delete, move) are queued to the account's writer thread (ui/intents.py): the row
changes on screen at once, the writer stores the change with its journal entry, which carries it
to the server, and wakes the sync worker. Everything that needs the
network (open, raw source, parts) runs in a thread worker: the UI never waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.worker import Worker, WorkerState

from tuimail.errors import NotCached, TuimailError
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.writer import Intent
from tuimail.ui.widgets.message_view import build_lines

from tuimail.core.flags import FLAGGED, SEEN
# The preview follows the list cursor once it has rested this long: holding j down (key repeat,
# ~30 ms apart) fetches nothing until the key is let go.
PREVIEW_DELAY = 0.2


@dataclass(frozen=True)
class Target:
    account: str
    folder_id: int
    folder: str
    uid: int


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, NotCached):
        return "not available offline (not in the local cache)"
    if isinstance(exc, TuimailError):
        return sanitize_line(str(exc))
    return sanitize_line(f"{type(exc).__name__}: {exc}")


class MessageActions:
    """Needs: self.tapp, hlist, reader, account, folder, store(), counts_changed(), notify()."""

    def init_actions(self) -> None:
        self._gen = 0
        self._mark_timer = None
        self._after_open: str | None = None
        self._preview_timer = None
        self._previewing = False  # the reader shows a preview: not marked read until opened
        self.reader_mode = "message"  # message | headers | raw

    # ------------------------------------------------------------------ targets

    def target(self, *, prefer_open: bool | None = None) -> Target | None:
        """The message an action applies to: the open one when the reader has the focus (or in
        full screen), else the one under the list cursor."""
        reader = self.reader
        if prefer_open is None:
            prefer_open = reader.has_focus or self.has_class("fullscreen")
        if prefer_open and reader.uid is not None and reader.folder_key is not None:
            account, fid = reader.folder_key
            if self.folder is not None and (account, fid) == (self.account, self.folder.id):
                return Target(account, fid, self.folder.name, reader.uid)
            info = self.tapp.stores[account].folder(fid)
            if info is not None:
                return Target(account, fid, info.name, reader.uid)
        uid = self.hlist.current_uid
        if uid is None or self.folder is None:
            return None
        return Target(self.account, self.folder.id, self.folder.name, uid)

    # ------------------------------------------------------------------ opening

    def on_header_list_selected(self, event) -> None:
        self._stop_preview()
        r = self.reader
        if (self._previewing and r.content is not None and self.folder is not None and r.uid == event.uid
                and r.folder_key == (self.account, self.folder.id)):
            self._previewing = False  # the preview is on screen already: opening it reads it
            r.focus()
            self._schedule_mark_read(self._gen, Target(self.account, self.folder.id, self.folder.name, event.uid))
            return
        self.open_message(event.uid, focus=True)

    def on_header_list_cursor_moved(self, event) -> None:
        self._stop_preview()
        self._preview_timer = self.set_timer(PREVIEW_DELAY, self._preview)

    def _stop_preview(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
            self._preview_timer = None

    def _preview(self) -> None:
        self._preview_timer = None
        uid = self.hlist.current_uid
        if uid is None or self.folder is None or self.has_class("fullscreen"):
            return
        if self.reader.uid == uid and self.reader.folder_key == (self.account, self.folder.id):
            return  # already shown (J / K in the reader moved the cursor with it)
        self.open_message(uid, preview=True)

    def unbound_key(self, key: str) -> None:
        """A key no binding took: say so in the status line for a few seconds (mutt does)."""
        from tuimail.ui.keys import display_key

        help_keys = self.tapp.effective_keys.get("help", ())
        note = f"{display_key(key)}: key not bound" + (f", {display_key(help_keys[0])} for help" if help_keys else "")
        info = self.status.info
        info.flash = note
        self.update_status()

        def restore() -> None:
            if info.flash == note:
                info.flash = ""
                self.update_status()

        self.set_timer(3.0, restore)

    def folder_left(self) -> None:
        """Another folder is opening: the preview of this one's message goes (and a fetch in
        flight is dropped when it lands)."""
        self._stop_preview()
        self._gen += 1
        self.reader.clear()

    def open_message(self, uid: int, *, focus: bool = False, more: bool = False, preview: bool = False) -> None:
        if self.folder is None:
            return
        self._gen += 1
        gen = self._gen
        self._previewing = preview
        reader = self.reader
        t = Target(self.account, self.folder.id, self.folder.name, uid)
        reader.folder_key, reader.uid = (t.account, t.folder_id), uid
        self.reader_mode = "message"
        if not more:
            reader.content = None
            reader.show_status("Loading…")
        svc = self.tapp.services.get(t.account)
        self.run_worker(partial(self._fetch_message, gen, svc, t, more), thread=True, group="open",
                        exit_on_error=False)
        if focus:
            reader.focus()

    @staticmethod
    def _fetch_message(gen, svc, t: Target, more: bool):
        try:
            if svc is None:
                raise NotCached("no sync service for this account")
            content = svc.open_message(t.folder, t.uid, more=more)
            return gen, t, (content, build_lines(content)), None  # sanitising off the UI thread
        except Exception as exc:  # shown in the reader, one line
            return gen, t, None, exc

    def _schedule_mark_read(self, gen: int, t: Target) -> None:
        if self._mark_timer is not None:
            self._mark_timer.stop()
            self._mark_timer = None
        delay = self.tapp.config.ui.mark_read_delay
        if delay is None or delay < 0:
            return
        if delay == 0:
            self.set_flags(t, add=(SEEN,))
            return

        def fire() -> None:
            self._mark_timer = None
            if self.reader.uid == t.uid and self.reader.folder_key == (t.account, t.folder_id):
                self.set_flags(t, add=(SEEN,))  # still on screen after the delay

        self._mark_timer = self.set_timer(delay, fire)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.SUCCESS:
            if event.state == WorkerState.ERROR:
                self.notify(_error_text(worker.error), severity="error", markup=False)
            return
        handler = getattr(self, f"_done_{worker.group}", None)
        if handler is not None:
            handler(worker.result)

    def _done_open(self, result) -> None:
        gen, t, built, exc = result
        if gen != self._gen:
            return  # the user moved on
        reader = self.reader
        if exc is not None:
            reader.show_status(_error_text(exc), "error")
            return
        content, lines = built
        keep = reader.content is not None and reader.content.uid == content.uid
        reader.show_message(content, keep_scroll=keep, lines=lines)
        # (a preview is not read; nor is an attached message: its container is)
        if not keep and not self._previewing and content.section is None:
            self._schedule_mark_read(gen, t)  # read once shown, not when the fetch failed
        after, self._after_open = self._after_open, None
        if after == "attachments":
            self.action_attachments()

    # ------------------------------------------------------------------ pager actions

    def action_close(self) -> None:
        if self.has_class("fullscreen"):
            self.remove_class("fullscreen")
        self.hlist.focus()

    def _step(self, delta: int) -> None:
        hl = self.hlist
        old = hl.cursor
        hl.move_cursor(hl.cursor + delta)
        if hl.cursor != old and hl.current_uid is not None:
            self.open_message(hl.current_uid)
        else:
            self.app.bell()

    def action_next_message(self) -> None:
        self._step(1)

    def action_prev_message(self) -> None:
        self._step(-1)

    def action_load_more(self) -> None:
        c = self.reader.content
        if c is None or not c.more:
            self.notify("the whole message is shown", markup=False)
            return
        self.open_message(self.reader.uid, more=True)

    def on_message_view_at_end(self, event) -> None:
        c = self.reader.content
        if c is not None and c.more:
            self.action_load_more()

    # ------------------------------------------------------------------ intents

    def set_flags(self, t: Target, add=(), remove=()) -> None:
        """Queued to the account's writer (ui/intents.py): the row shows the change at once."""
        self.submit_intent(t.account, Intent("flags", t.folder_id, (t.uid,), tuple(add), tuple(remove)))
        if self.folder is not None and t.folder_id == self.folder.id and t.account == self.account:
            self.hlist.invalidate([t.uid])

    def _wake(self, account: str) -> None:
        svc = self.tapp.services.get(account)
        if svc is not None:
            svc.wake()

    def _row(self, t: Target):
        """The row as the user sees it: the stored one with the queued intents on top (the list's
        cached row when it is the one under the cursor: no SQLite call on the key's path)."""
        if (self.folder is not None and (t.account, t.folder_id) == (self.account, self.folder.id)
                and t.uid == self.hlist.current_uid):
            return self.hlist.current_row()
        store = self.tapp.stores[t.account]
        return self.tapp.overlay.row(store, t.folder_id, store.row(t.folder_id, t.uid))

    def action_toggle_read(self) -> None:
        t = self.target()
        row = t and self._row(t)
        if row is None:
            return
        if row.seen:
            self.set_flags(t, remove=(SEEN,))
            if self._mark_timer is not None:  # a pending mark-read would undo it
                self._mark_timer.stop()
                self._mark_timer = None
        else:
            self.set_flags(t, add=(SEEN,))

    def action_flag(self) -> None:
        t = self.target()
        row = t and self._row(t)
        if row is None:
            return
        if row.flagged:
            self.set_flags(t, remove=(FLAGGED,))
        else:
            self.set_flags(t, add=(FLAGGED,))

    def _hide(self, t: Target, op: str, dest: str | None = None) -> None:
        """A move or delete: queued to the writer, the row leaves the list at once."""
        self.submit_intent(t.account, Intent(op, t.folder_id, (t.uid,), dest=dest))
        if self.folder is not None and t.folder_id == self.folder.id and t.account == self.account:
            self.hlist.remove_uids([t.uid])
        if self.reader.uid == t.uid and self.reader.folder_key == (t.account, t.folder_id):
            self.reader.clear("Message moved.")
            self.hlist.focus()

    def move_to(self, t: Target, dest: str, dest_id: int | None = None) -> None:
        self._hide(t, "move", dest)
        self.notify(f"moved to {sanitize_line(dest)}", markup=False, timeout=2)

    def action_delete(self) -> None:
        t = self.target()
        if t is None:
            return
        store = self.tapp.stores[t.account]
        trash = store.folder_by_role("trash")
        if trash is not None and trash.id != t.folder_id:
            self.move_to(t, trash.name, trash.id)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._hide(t, "expunge")

        from tuimail.ui.screens.modals import ConfirmScreen

        from tuimail.ui.rows import sender_name

        row = self._row(t)
        what = (f"From {sender_name(row.from_)[:60]}: {sanitize_line(row.subject)[:120] or '(no subject)'}"
                if row else f"message {t.uid}")
        self.app.push_screen(ConfirmScreen("Delete this message for good?", what), answer)

    def action_archive(self) -> None:
        t = self.target()
        if t is None:
            return
        arch = self.tapp.stores[t.account].folder_by_role("archive")
        if arch is None:
            self.notify("no Archive folder for this account", markup=False)
        elif arch.id != t.folder_id:
            self.move_to(t, arch.name, arch.id)

    def action_move(self) -> None:
        t = self.target()
        if t is None:
            return

        def chosen(value) -> None:
            if value is not None:
                _account, info = value
                self.move_to(t, info.name, info.id)

        from tuimail.ui.screens.modals import PickerScreen

        choices = self.folder_choices(t.account, exclude=t.folder_id)
        self.app.push_screen(PickerScreen("Move to folder", choices, [v[1].name for _l, v in choices]), chosen)

    def action_sync(self) -> None:
        if self.tapp.offline:
            key = ", ".join(self.tapp.effective_keys.get("toggle_offline", ())) or "the palette"
            self.notify(f"offline: changes are queued; {key} goes online", markup=False)
            return
        for svc in self.tapp.services.values():
            svc.request_sync(None)
        self.notify("sync requested", markup=False, timeout=2)

    def action_toggle_offline(self) -> None:
        app = self.tapp
        app.offline = not app.offline
        for name, svc in app.services.items():
            svc.set_offline(app.offline)
            st = self.status.info.accounts.get(name)
            if st is not None:
                st.state = "offline" if app.offline else "connecting"
        self.update_status()
