"""Actions that wait or failed: the list the `failed_actions` key (!) opens (ActionsScreen).
First the Outbox: the messages not sent yet (waiting for the network or a retry, failed with the
server's line, postponed on their way to Drafts), with their own keys (e edit, r retry,
d discard, Enter show: controllers/outbox_view.py); then the flag / move / delete actions.
Nothing the user did disappears without a word: an action the server refused for good, whose
folder is gone, or whose message was lost in a UIDVALIDITY reset stays listed until the user
discards it, which puts the row back as the server has it (controllers/failed_actions.py
follows up and keeps the status bar's count of failed ones).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.failures import ActionInfo
from tuimail.store.store import Store
from tuimail.ui.controllers.outbox_view import OutboxActions, OutboxDone, OutboxItem, OutboxRead, message_lines
from tuimail.ui.screens.modals import _MODAL_CSS, ConfirmScreen, TextScreen
from tuimail.ui.widgets.message_view import Line


def action_text(account: str | None, a: ActionInfo) -> Text:
    t = Text()
    t.append(f"{a.state:<8}", style="bold red" if a.state == "failed" else "")
    if account:
        t.append(f"{sanitize_line(account)}: ")
    t.append(f"{sanitize_line(a.folder)}  ", style="bold")
    t.append(f"{sanitize_line(a.describe())}  ")
    what = a.subject if a.subject is not None else (a.message_id or "(message unknown)")
    t.append(sanitize_line(what)[:80], style="dim" if a.subject is None else "")
    if a.error:
        t.append("\n        " + sanitize_line(a.error)[:160], style="italic")
    return t


def outbox_text(many: bool, it: OutboxItem) -> Text:
    t = Text()
    t.append(f"{it.state:<8}", style="bold red" if it.state == "failed" else "")
    if many:
        t.append(f"{sanitize_line(it.account)}: ")
    t.append(f"to {it.to[:50] or '(nobody)'}  ", style="bold")
    t.append(it.subject[:80] or "(no subject)")
    t.append("\n        " + it.line[:200], style="italic")
    return t


class OutboxShown(Message, bubble=False):
    def __init__(self, title: str, lines: list[Line]) -> None:
        super().__init__()
        self.title, self.lines = title, lines


class ActionsScreen(ModalScreen[None]):
    """The Outbox and the pending and failed actions of every account. On a message of the Outbox:
    e edit, r retry, d discard (asks), Enter show; on an action: d discards it, D every failed one."""

    BINDINGS = [
        Binding("e", "edit", "Edit"),
        Binding("r", "retry", "Retry now"),
        Binding("d,x,delete", "discard", "Discard"),
        Binding("D", "discard_failed", "Discard every failed action"),
        Binding("escape,q,exclamation_mark", "close", "Close"),
    ]
    DEFAULT_CSS = _MODAL_CSS.format(name="ActionsScreen") + """
    ActionsScreen OptionList { height: auto; max-height: 20; border: none; background: $panel; }
    ActionsScreen .empty { color: $text-muted; height: 1; }
    ActionsScreen .note { height: auto; max-height: 3; }
    """

    def __init__(self, stores: dict[str, Store], outbox: OutboxActions | None = None) -> None:
        super().__init__()
        self.stores = stores
        self.outbox = outbox
        self.items: list[tuple[str, ActionInfo]] = []
        self.messages: list[OutboxItem] = []  # the Outbox section (read in a thread)
        self.changed: dict[str, list[tuple[int, int]]] = {}  # account -> (folder_id, uid) put back
        self.discarded = 0

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content("Outbox, and actions waiting or failed"), classes="title")
            yield OptionList()
            yield Static(Content(""), classes="empty")
            yield Static(Content(""), classes="note")
            yield Static(Content("Outbox: e edit  r retry  d discard  Enter show · actions: d discard"
                                 "  D discard every failed · Esc close"), classes="hint")

    def on_mount(self) -> None:
        self._load()
        self.load_outbox()
        self.query_one(OptionList).focus()

    # ------------------------------------------------------------------ the list

    def load_outbox(self) -> None:
        """Read the Outbox again, in a thread (OutboxRead comes back)."""
        outbox = self.outbox
        if outbox is None:
            return
        post = self.post_message
        self.run_worker(lambda: post(OutboxRead(outbox.read())), thread=True, group="outbox", exit_on_error=False)

    def on_outbox_read(self, msg: OutboxRead) -> None:
        self.messages = msg.items
        self._fill(self._key())

    def _key(self) -> str | None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None or not ol.option_count:
            return None
        return ol.get_option_at_index(ol.highlighted).id

    def _load(self, keep: int = 0) -> None:
        self.items = [(name, a) for name, st in self.stores.items() for a in st.actions()]
        self._fill(None, keep)

    def _fill(self, key: str | None, keep: int = 0) -> None:
        """The options: the Outbox's messages ("o<account>:<kind><id>"), then the actions ("a<i>")."""
        many = len(self.stores) > 1
        ol = self.query_one(OptionList)
        options: list[Option] = []
        if self.messages:
            options.append(Option(Text(f"Outbox ({len(self.messages)})", style="bold underline"), disabled=True))
            options += [Option(outbox_text(many, it), id=f"o{it.account}:{it.kind}{it.id}") for it in self.messages]
            if self.items:
                options.append(Option(Text("Actions", style="bold underline"), disabled=True))
        options += [Option(action_text(name if many else None, a), id=f"a{i}")
                    for i, (name, a) in enumerate(self.items)]
        ol.clear_options()
        ol.add_options(options)
        empty = not self.items and not self.messages
        self.query_one(".empty", Static).update(Content("Nothing waiting, nothing failed." if empty else ""))
        if empty:
            return
        ids = [o.id for o in options]
        if key is not None and key in ids:
            ol.highlighted = ids.index(key)
            return
        first_action = next((n for n, o in enumerate(options) if o.id and o.id.startswith("a")), None)
        if key is None and first_action is not None and not self.messages:
            ol.highlighted = first_action + min(keep, len(self.items) - 1)
        else:
            ol.highlighted = next(n for n, o in enumerate(options) if not o.disabled)

    def _current(self) -> tuple[OutboxItem | None, int | None]:
        """(the Outbox message, or the action's index) under the cursor."""
        key = self._key()
        if key is None:
            return None, None
        if key.startswith("a"):
            return None, int(key[1:])
        return next((it for it in self.messages if f"o{it.account}:{it.kind}{it.id}" == key), None), None

    def _note(self, line: str) -> None:
        self.query_one(".note", Static).update(Content(sanitize_line(line)))

    # ------------------------------------------------------------------ the Outbox's keys

    def action_edit(self) -> None:
        item, _ = self._current()
        if item is None or self.outbox is None:
            self._note("e edits a message of the Outbox")
            return
        if not item.editable:
            self._note(f"cannot edit it now: {item.line}" + (" (u takes it back)" if item.state == "held" else ""))
            return
        outbox = self.outbox
        self.dismiss(None)
        self.app.call_later(outbox.edit, item)

    def action_retry(self) -> None:
        item, _ = self._current()
        outbox = self.outbox
        if item is None or outbox is None:
            self._note("r retries a message of the Outbox")
            return
        post = self.post_message
        self.run_worker(lambda: post(outbox.retry(item)), thread=True, group="outbox-act", exit_on_error=False)

    def _discard_message(self, item: OutboxItem) -> None:
        outbox = self.outbox
        if outbox is None:
            return
        if not item.editable:
            self._note(f"cannot discard it now: {item.line}" + (" (u takes it back)" if item.state == "held" else ""))
            return

        def answered(yes: bool | None) -> None:
            if yes:
                post = self.post_message
                self.run_worker(lambda: post(outbox.discard(item)), thread=True, group="outbox-act",
                                exit_on_error=False)

        self.app.push_screen(ConfirmScreen("Discard this message? It is not sent; its text is kept in a file.",
                                           f"to {item.to}: {item.subject or '(no subject)'}"), answered)

    def on_outbox_done(self, msg: OutboxDone) -> None:
        self._note(msg.line)
        severity: Any = msg.severity
        self.app.notify(sanitize_line(msg.line), severity=severity, markup=False, timeout=8)
        self.load_outbox()

    @on(OptionList.OptionSelected)
    def show_message(self, event: OptionList.OptionSelected) -> None:
        item, _ = self._current()
        if item is None:
            return
        post = self.post_message
        title = f"Outbox: {item.subject or '(no subject)'}"
        self.run_worker(lambda: post(OutboxShown(title, message_lines(item))), thread=True, group="outbox-show",
                        exit_on_error=False)

    def on_outbox_shown(self, msg: OutboxShown) -> None:
        self.app.push_screen(TextScreen(msg.title, msg.lines))

    # ------------------------------------------------------------------ the actions

    def _discard(self, picked: list[tuple[str, ActionInfo]]) -> None:
        by_account: dict[str, list[int]] = {}
        for name, a in picked:
            if a.state != "sending":  # on the wire right now: its answer decides
                by_account.setdefault(name, []).append(a.id)
        for name, ids in by_account.items():
            self.changed.setdefault(name, []).extend(self.stores[name].discard(ids))
            self.discarded += len(ids)

    def action_discard(self) -> None:
        item, index = self._current()
        if item is not None:
            self._discard_message(item)
            return
        if index is None or not self.items:
            return
        self._discard([self.items[index]])
        self._load(index)

    def action_discard_failed(self) -> None:
        self._discard([it for it in self.items if it[1].state == "failed"])
        self._load()

    def action_close(self) -> None:
        self.dismiss(None)
