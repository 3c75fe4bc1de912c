"""The undo history (`U`, and the palette): recent actions, newest first (UndoScreen).

Enter undoes the highlighted action, together with the later actions that touched the same
messages (undone first, newest first: nothing is put back onto a state the user never saw);
later actions on other messages stay. Undone actions stay listed, dimmed.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.undo import UndoEntry
from tuimail.ui.screens.modals import _MODAL_CSS


def _when(t: float, now: float) -> str:
    if now - t < 86400:
        return time.strftime("%H:%M:%S", time.localtime(t))
    return time.strftime("%b %d %H:%M", time.localtime(t))


def entry_text(account: str | None, e: UndoEntry, now: float) -> Text:
    t = Text()
    t.append(f"{_when(e.created, now)}  ", style="dim")
    if account:
        t.append(f"{sanitize_line(account)}: ")
    t.append(sanitize_line(e.what), style="" if e.undoable else "dim strike")
    if e.subject:
        t.append(f"  {sanitize_line(e.subject)[:60]}", style="dim italic")
    if not e.undoable:
        t.append("  (undone)", style="dim")
    return t


class UndoScreen(ModalScreen["tuple[str, UndoEntry] | None"]):
    """Returns the (account, entry) to undo, or None."""

    BINDINGS = [
        Binding("escape,q,U", "close", "Close"),
    ]
    DEFAULT_CSS = _MODAL_CSS.format(name="UndoScreen") + """
    UndoScreen OptionList { height: auto; max-height: 20; border: none; background: $panel; }
    UndoScreen .empty { color: $text-muted; height: 1; }
    """

    def __init__(self, items: list[tuple[str, UndoEntry]], *, many: bool = False) -> None:
        super().__init__()
        self.items = items
        self.many = many

    def compose(self) -> ComposeResult:
        now = time.time()
        with Vertical():
            yield Static(Content("Undo history (newest first)"), classes="title")
            yield OptionList(*[Option(entry_text(acc if self.many else None, e, now), id=str(i))
                               for i, (acc, e) in enumerate(self.items)])
            yield Static(Content("" if self.items else "Nothing to undo yet."), classes="empty")
            yield Static(Content("Enter: undo it (and the later actions on the same messages)   Esc: close"),
                         classes="hint")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.focus()
        first = next((i for i, (_a, e) in enumerate(self.items) if e.undoable), None)
        if first is not None:
            ol.highlighted = first

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        account, entry = self.items[int(event.option.id or 0)]
        if not entry.undoable:
            self.notify("undone already", markup=False)
            return
        self.dismiss((account, entry))

    def action_close(self) -> None:
        self.dismiss(None)
