"""Actions that wait or failed: the list the `failed_actions` key (!) opens (ActionsScreen).
Nothing the user did disappears without a word: an action the server refused for good, whose
folder is gone, or whose message was lost in a UIDVALIDITY reset stays listed until the user
discards it, which puts the row back as the server has it (controllers/failed_actions.py
follows up and keeps the status bar's count of failed ones).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.failures import ActionInfo
from tuimail.store.store import Store
from tuimail.ui.screens.modals import _MODAL_CSS


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


class ActionsScreen(ModalScreen[None]):
    """The pending and failed actions of every account; d discards one, D every failed one."""

    BINDINGS = [
        Binding("d,x,delete", "discard", "Discard"),
        Binding("D", "discard_failed", "Discard every failed"),
        Binding("escape,q,exclamation_mark", "close", "Close"),
    ]
    DEFAULT_CSS = _MODAL_CSS.format(name="ActionsScreen") + """
    ActionsScreen OptionList { height: auto; max-height: 20; border: none; background: $panel; }
    ActionsScreen .empty { color: $text-muted; height: 1; }
    """

    def __init__(self, stores: dict[str, Store]) -> None:
        super().__init__()
        self.stores = stores
        self.items: list[tuple[str, ActionInfo]] = []
        self.changed: dict[str, list[tuple[int, int]]] = {}  # account -> (folder_id, uid) put back
        self.discarded = 0

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content("Actions waiting or failed (discard: back as on the server)"), classes="title")
            yield OptionList()
            yield Static(Content(""), classes="empty")
            yield Static(Content("d: discard   D: discard every failed   Esc: close"), classes="hint")

    def on_mount(self) -> None:
        self._load()
        self.query_one(OptionList).focus()

    def _load(self, keep: int = 0) -> None:
        self.items = [(name, a) for name, st in self.stores.items() for a in st.actions()]
        many = len(self.stores) > 1
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options([Option(action_text(name if many else None, a), id=str(i))
                        for i, (name, a) in enumerate(self.items)])
        self.query_one(".empty", Static).update(Content("" if self.items else "Nothing waiting, nothing failed."))
        if self.items:
            ol.highlighted = min(keep, len(self.items) - 1)

    def _discard(self, picked: list[tuple[str, ActionInfo]]) -> None:
        by_account: dict[str, list[int]] = {}
        for name, a in picked:
            if a.state != "sending":  # on the wire right now: its answer decides
                by_account.setdefault(name, []).append(a.id)
        for name, ids in by_account.items():
            self.changed.setdefault(name, []).extend(self.stores[name].discard(ids))
            self.discarded += len(ids)

    def action_discard(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None or not self.items:
            return
        keep = ol.highlighted
        self._discard([self.items[keep]])
        self._load(keep)

    def action_discard_failed(self) -> None:
        self._discard([it for it in self.items if it[1].state == "failed"])
        self._load()

    def action_close(self) -> None:
        self.dismiss(None)
