"""What the main screen's controllers use of it: `MainView`, implemented by MainScreen.

The controllers (folders, sync events, panes, status line, message actions, opening, reader
extras, alerts, intents, failed actions...) are plain objects the screen holds; each gets this
view and, where it needs one, another controller, in its constructor. The screen keeps the
Textual side: bindings, `action_*` methods (Textual looks them up on the DOM node) and `on_*`
handlers, which delegate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from textual.message import Message
from textual.timer import Timer, TimerCallback
from textual.worker import Worker

from tuimail.store.store import FolderInfo, Store

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from textual.widget import Widget

    from tuimail.ui.app import TuimailApp
    from tuimail.ui.widgets.folder_tree import FolderTree
    from tuimail.ui.widgets.header_list import HeaderList
    from tuimail.ui.widgets.message_view import MessageView
    from tuimail.ui.widgets.status import StatusBar

R = TypeVar("R")
W = TypeVar("W", bound="Widget")


class MainView(Protocol):
    account: str | None  # the open folder's account
    folder: FolderInfo | None  # the open folder

    @property
    def tapp(self) -> TuimailApp: ...

    @property
    def hlist(self) -> HeaderList: ...

    @property
    def reader(self) -> MessageView: ...

    @property
    def status(self) -> StatusBar: ...

    @property
    def folder_tree(self) -> FolderTree: ...

    def update_status(self) -> None: ...

    def show_problem(self) -> None: ...

    def counts_changed(self, account: str, folder_id: int) -> None: ...

    def folders_changed(self, accounts: Iterable[str]) -> None: ...

    def folder_choices(self, account: str | None = None, *,
                       exclude: int | None = None) -> list[tuple[str, tuple[str, FolderInfo]]]: ...

    # Textual's, of the screen
    @property
    def focused(self) -> Widget | None: ...

    @overload
    def query_one(self, selector: str) -> Widget: ...

    @overload
    def query_one(self, selector: str, expect_type: type[W]) -> W: ...

    def has_class(self, *class_names: str) -> bool: ...

    def set_class(self, add: bool, *class_names: str, update: bool = True) -> object: ...

    def toggle_class(self, *class_names: str) -> object: ...

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...

    def set_timer(self, delay: float, callback: TimerCallback | None = None, *, name: str | None = None,
                  pause: bool = False) -> Timer: ...

    def run_worker(self, work: Callable[[], Any], name: str | None = "", group: str = "default",
                   description: str = "", exit_on_error: bool = True, start: bool = True,
                   exclusive: bool = False, thread: bool = False) -> Worker[Any]: ...

    def post_message(self, message: Message) -> bool: ...


def read_stores(view: MainView, accounts: Iterable[str], query: Callable[[dict[str, Store]], R],
                done: Callable[[R], Message]) -> None:
    """Run query({account: Store}) in a thread worker of the screen, on connections of its own
    (counts scan every row of a folder: ~20 ms per 100k, more while the sync writes);
    done(result), a message, is posted to the screen."""
    paths = {a: view.tapp.stores[a].path for a in accounts if a in view.tapp.stores}
    post = view.post_message

    def work() -> None:
        own = {a: Store(p) for a, p in paths.items()}
        try:
            result = query(own)
        finally:
            for st in own.values():
                st.close()
        post(done(result))  # thread-safe, never blocks

    view.run_worker(work, thread=True, exit_on_error=False)
