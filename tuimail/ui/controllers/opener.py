"""Opening messages in the reader: Enter, the preview that follows the list cursor, J/K, "load more".

The fetch runs in a thread worker (the UI never waits); its result comes back as a
MessageOpened message to the screen, which hands it to `opened`. A newer open makes an older
result stale (the generation counter). Opening marks the message read (MessageActions).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.timer import Timer

from tuimail.core.content import Attachment, MessageContent
from tuimail.errors import NotCached
from tuimail.core.service import AccountService
from tuimail.ui.controllers.message_actions import MessageActions
from tuimail.ui.controllers.target import Target, current_target, error_text, list_target, shows
from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.message_view import Line, build_lines

# The preview follows the list cursor once it has rested this long: holding j down (key repeat,
# ~30 ms apart) fetches nothing until the key is let go.
PREVIEW_DELAY = 0.2


@dataclass(frozen=True)
class FetchResult:
    """A fetched message with its lines built (sanitising off the UI thread), or why not."""

    gen: int
    target: Target
    content: MessageContent | None
    lines: list[Line]
    error: BaseException | None


class MessageOpened(Message, bubble=False):
    """A thread worker fetched a message for the reader (or failed to)."""

    def __init__(self, result: FetchResult) -> None:
        super().__init__()
        self.result = result


def _fetch(gen: int, svc: AccountService | None, t: Target, more: bool, section: str | None) -> FetchResult:
    try:
        if svc is None:
            raise NotCached("no sync service for this account")
        if section is not None:
            content = svc.open_attached(t.folder, t.uid, section)
        else:
            content = svc.open_message(t.folder, t.uid, more=more)
        return FetchResult(gen, t, content, build_lines(content), None)
    except Exception as exc:  # shown in the reader, one line
        return FetchResult(gen, t, None, [], exc)


class MessageOpener:
    def __init__(self, view: MainView, actions: MessageActions) -> None:
        self.view, self.actions = view, actions
        self._gen = 0
        self._preview_timer: Timer | None = None
        self._previewing = False  # the reader shows a preview: not marked read until opened
        self.after_open: str | None = None  # an action to run once the message is shown ("attachments")
        self.mode = "message"  # what the reader shows of it: message | headers | raw

    def selected(self, uid: int) -> None:
        """Enter on a row: open it (read it, when its preview is on screen already)."""
        view = self.view
        self._stop_preview()
        r = view.reader
        t = list_target(view, uid)
        if self._previewing and r.content is not None and t is not None and shows(view, t):
            self._previewing = False  # the preview is on screen already: opening it reads it
            r.focus()
            self.actions.schedule_mark_read(t)
            return
        self.open(uid, focus=True)

    def cursor_moved(self) -> None:
        self._stop_preview()
        self._preview_timer = self.view.set_timer(PREVIEW_DELAY, self._preview)

    def _stop_preview(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
            self._preview_timer = None

    def _preview(self) -> None:
        view = self.view
        self._preview_timer = None
        uid = view.hlist.current_uid
        t = list_target(view, uid) if uid is not None else None
        if t is None or view.has_class("fullscreen"):
            return
        if shows(view, t):
            return  # already shown (J / K in the reader moved the cursor with it)
        self.open_target(t, preview=True)

    def folder_left(self) -> None:
        """Another folder is opening: the preview of this one's message goes (and a fetch in
        flight is dropped when it lands)."""
        self._stop_preview()
        self._gen += 1
        self.view.reader.clear()

    def open(self, uid: int, *, focus: bool = False, more: bool = False, preview: bool = False) -> None:
        """Open list id `uid` (controllers/target.py: list_target)."""
        t = list_target(self.view, uid)
        if t is not None:
            self.open_target(t, focus=focus, more=more, preview=preview)

    def open_target(self, t: Target, *, focus: bool = False, more: bool = False, preview: bool = False) -> None:
        view = self.view
        self._gen += 1
        self._previewing = preview
        reader = view.reader
        reader.folder_key, reader.uid = (t.account, t.folder_id), t.uid
        self.mode = "message"
        if not more:
            reader.content = None
            reader.show_status("Loading…")
        self._run(t, more=more)
        if focus:
            reader.focus()

    def open_attached(self, t: Target, att: Attachment) -> None:
        """Show the message attached at att.section in the reader, as a message of its own
        (its attachments are then listed by `v`; only the parts it shows are fetched)."""
        self._gen += 1
        self.mode = "message"
        reader = self.view.reader
        reader.content = None
        reader.show_status("Loading…")
        self._run(t, section=att.section)
        reader.focus()

    def _run(self, t: Target, *, more: bool = False, section: str | None = None) -> None:
        view, gen = self.view, self._gen
        svc = view.tapp.services.get(t.account)
        post = view.post_message

        def work() -> None:
            post(MessageOpened(_fetch(gen, svc, t, more, section)))  # thread-safe, never blocks

        view.run_worker(work, thread=True, group="open", exit_on_error=False)

    def opened(self, msg: MessageOpened) -> str | None:
        """Show a fetched message; returns the action waiting for it (after_open), if any."""
        f = msg.result
        if f.gen != self._gen:
            return None  # the user moved on
        reader = self.view.reader
        if f.error is not None or f.content is None:
            reader.show_status(error_text(f.error) if f.error is not None else "nothing to show", "error")
            return None
        content = f.content
        keep = reader.content is not None and reader.content.uid == content.uid
        reader.show_message(content, keep_scroll=keep, lines=f.lines)
        # (a preview is not read; nor is an attached message: its container is)
        if not keep and not self._previewing and content.section is None:
            self.actions.schedule_mark_read(f.target)  # read once shown, not when the fetch failed
        after, self.after_open = self.after_open, None
        return after

    # ------------------------------------------------------------------ pager keys

    def step(self, delta: int) -> None:
        """J / K: the next or previous message, opened."""
        hl = self.view.hlist
        old = hl.cursor
        hl.move_cursor(hl.cursor + delta)
        if hl.cursor != old and hl.current_uid is not None:
            self.open(hl.current_uid)
        else:
            self.view.tapp.bell()

    def load_more(self) -> None:
        reader = self.view.reader
        c = reader.content
        if c is None or not c.more or reader.uid is None:
            self.view.notify("the whole message is shown", markup=False)
            return
        t = current_target(self.view, prefer_open=True)
        if t is not None:
            self.open_target(t, more=True)

    def at_end(self) -> None:
        c = self.view.reader.content
        if c is not None and c.more:
            self.load_more()

    def reader_shows(self, t: Target) -> bool:
        return shows(self.view, t) and self.view.reader.content is not None
