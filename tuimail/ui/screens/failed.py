"""Actions that wait or failed: the list the `failed_actions` key (!) opens, and the status bar's
count of failed ones. Nothing the user did disappears without a word: an action the server
refused for good, whose folder is gone, or whose message was lost in a UIDVALIDITY reset stays
listed until the user discards it, which puts the row back as the server has it.

Also here: the reason the server refused a folder, shown in the status bar when that folder is
open or highlighted in the tree (the tree marks it with ⚠).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static, Tree
from textual.widgets.option_list import Option

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.failures import ActionInfo
from tuimail.store.store import Store
from tuimail.ui.screens.modals import _MODAL_CSS
from tuimail.ui.widgets.status import AccountState


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


class FailedActions:
    """Mixin of MainScreen: the actions list, the failed count in the status bar, folder errors."""

    def action_failed_actions(self) -> None:
        screen = ActionsScreen(self.tapp.stores)

        def closed(_=None) -> None:
            for account, rows in screen.changed.items():
                by_folder: dict[int, list[int]] = {}
                for fid, uid in rows:
                    by_folder.setdefault(fid, []).append(uid)
                for fid, uids in by_folder.items():
                    if account == self.account and self.folder is not None and fid == self.folder.id:
                        self.hlist.invalidate(uids)
                        self.hlist.rows_changed(added=tuple(uids))
                    self.counts_changed(account, fid)
                self._wake(account)
            if screen.discarded:
                self.notify(f"discarded {screen.discarded} action{'s' if screen.discarded > 1 else ''}",
                            markup=False, timeout=3)
                self._folders_dirty.update(self.tapp.stores)  # a gone folder goes with its last action
                self._flush_folders()
            if self.folder is not None:  # the pending count too (another process may have sent some)
                self.counts_changed(self.account, self.folder.id)
            self.refresh_failed()

        self.app.push_screen(screen, closed)

    def init_failed(self) -> None:
        for name, store in self.tapp.stores.items():
            self.status.info.accounts.setdefault(name, AccountState()).failed = store.failed_summary()

    def refresh_failed(self, accounts=None) -> None:
        self.read_in_thread("failed", set(accounts or self.tapp.stores),
                            lambda stores: {a: st.failed_summary() for a, st in stores.items()})

    def _done_failed(self, result: dict[str, list[tuple[str, int]]]) -> None:
        for account, failed in result.items():
            self.status.info.accounts.setdefault(account, AccountState()).failed = failed
        self.update_status()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        """A refused folder's reason, in the status bar while it is highlighted."""
        ref = event.node.data
        info = None
        if ref is not None and ref.folder_id is not None and ref.account in self.tapp.stores:
            info = self.tapp.stores[ref.account].folder(ref.folder_id, counts=False)
        self.status.info.folder_error = self._folder_problem(info) if info is not None else ""
        if not self.status.info.folder_error and self.folder is not None:
            self.status.info.folder_error = self._folder_problem(self.folder)
        self.status.show()

    @staticmethod
    def _folder_problem(info) -> str:
        if getattr(info, "gone", False):
            return f"{info.name}: gone from the server"
        error = getattr(info, "error", None)
        return f"{info.name}: {error}" if error else ""
