"""The three-pane main screen: folder tree, header list, message view, status bar.

This module holds the layout, folder switching, the folder counts and the handling of sync
events. What the keys do to messages, the reader's extras, the alerts, the intents and the
failed actions live in controllers (ui/controllers/), plain objects this screen holds; its
action_* and on_* methods (Textual finds them on the screen) delegate to them.
"""

from __future__ import annotations

import time
from functools import cached_property
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar, cast

from textual import events
from textual.app import ComposeResult
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Tree
from textual.worker import Worker, WorkerState

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.store import FolderInfo, Store
from tuimail.core.events import FoldersChanged, NewMail, RowsChanged, SyncState
from tuimail.ui import keys
from tuimail.ui.collector import TICK as COLLECT_TICK
from tuimail.ui.controllers.alerts import Alerts, ProblemPanel
from tuimail.ui.controllers.failed_actions import FailedActions, FailedSummaryRead
from tuimail.ui.controllers.intents import IntentDone, IntentQueue
from tuimail.ui.controllers.message_actions import MessageActions
from tuimail.ui.controllers.opener import MessageOpened, MessageOpener
from tuimail.ui.controllers.store_poll import STORE_POLL, StorePoll
from tuimail.ui.controllers.target import error_text
from tuimail.ui.widgets.folder_tree import FolderRef, FolderTree
from tuimail.ui.widgets.header_list import HeaderList
from tuimail.ui.widgets.message_view import MessageView
from tuimail.ui.widgets.status import AccountState, StatusBar

if TYPE_CHECKING:
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.controllers.bulk import BulkActions
    from tuimail.ui.controllers.command_runner import CommandFinished, CommandRunner
    from tuimail.ui.controllers.compose import (
        ComposeController,
        DraftMade,
        DraftsFiled,
        DrainReported,
        Postponed,
        SendCancelled,
        SendQueued,
    )
    from tuimail.ui.controllers.finding import Found
    from tuimail.ui.controllers.limit import LimitController
    from tuimail.ui.controllers.reader_extras import BytesFetched, ReaderExtras
    from tuimail.ui.controllers.searches import SearchesController
    from tuimail.ui.controllers.undo import UndoController

FOLDERS_INTERVAL = 1.0  # seconds between folder-list refreshes caused by sync events
NARROW = 160  # below this width a "right" preview goes below the list

R = TypeVar("R")


class CountsRead(Message, bubble=False):
    """Folder counts and each account's pending and failed actions, read in a thread."""

    def __init__(self, infos: dict[tuple[str, int], FolderInfo | None],
                 pending: dict[str, tuple[int, list[tuple[str, int]]]]) -> None:
        super().__init__()
        self.infos, self.pending = infos, pending


class FoldersRead(Message, bubble=False):
    """Folder lists (with their counts) of some accounts, read in a thread."""

    def __init__(self, folders: dict[str, list[FolderInfo]]) -> None:
        super().__init__()
        self.folders = folders


def folder_problem(info: FolderInfo) -> str:
    """A refused or vanished folder's reason, for the status bar ("" for a good one)."""
    if info.gone:
        return f"{info.name}: gone from the server"
    return f"{info.name}: {info.error}" if info.error else ""


class MainScreen(Screen[None]):
    BINDINGS = keys.bindings("global")

    DEFAULT_CSS = """
    MainScreen { layout: vertical; }
    MainScreen #main { height: 1fr; }
    MainScreen #folders { width: 27; border-left: blank; }
    MainScreen.narrow #folders { width: 21; }
    MainScreen #panes { width: 1fr; }
    MainScreen #panes.right { layout: horizontal; }
    MainScreen #panes.below { layout: vertical; }
    MainScreen #list { border-left: vkey $tuimail-rule; }
    MainScreen #panes.right #list, MainScreen #panes.right #problem { width: 1fr; }
    MainScreen #panes.right #reader { width: 1fr; min-width: 80; border-left: vkey $tuimail-rule; }
    MainScreen #panes.below #list, MainScreen #panes.below #problem { height: 1fr; }
    MainScreen #panes.below #reader { height: 1fr; border-top: hkey $tuimail-rule; }
    MainScreen.problem #list, MainScreen.problem #reader { display: none; }
    MainScreen.problem #problem { display: block; }
    /* the focused pane: a bar in the accent colour on its edge, in every theme (11.7) */
    MainScreen #folders:focus, MainScreen #list:focus, MainScreen #panes.right #reader:focus {
        border-left: outer $accent;
    }
    MainScreen #panes.below #reader:focus { border-top: outer $accent; }
    MainScreen.fullscreen #folders { display: none; }
    MainScreen.fullscreen #list { display: none; }
    MainScreen.fullscreen #panes #reader { border: none; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.account: str | None = None
        self.folder: FolderInfo | None = None
        self.layout_choice: str | None = None  # set by toggle_layout; None = config + width
        self._wanted_start: str | None = None  # -f FOLDER not in the store yet (first sync)
        self._folders_dirty: set[str] = set()
        self._folders_timer: Timer | None = None
        self._folders_at = 0.0
        self._dirty_counts: set[tuple[str, int]] = set()
        self._counts_timer: Timer | None = None
        self._after_paint_done = False
        self._frames_skipped = 0  # _compositor_refresh: first frames a layout already waits to replace
        # the controllers (controllers/): plain objects; the action_* and on_* methods below delegate
        self.alerts = Alerts(self)
        self.store_poll = StorePoll(self, self.store_changed)
        self.intents = IntentQueue(self, self.store_poll)
        self.actions = MessageActions(self, self.intents)
        self.opener = MessageOpener(self, self.actions)
        self.failed = FailedActions(self, lambda: self.compose_ctl)  # (the Outbox section of `!`)
        # the others are made on first use (the properties below): their modules (patterns,
        # composing, the outbox...) are not imported before the first screen is drawn
        self._sync_states: dict[str, SyncState] = {}  # the last one per account before compose_ctl is made

    def made(self, controller: str) -> bool:
        """Whether the controller of this name (a property below) has been made yet."""
        return controller in self.__dict__

    @cached_property
    def commands(self) -> CommandRunner:
        from tuimail.ui.controllers.command_runner import CommandRunner
        return CommandRunner(self)

    @cached_property
    def extras(self) -> ReaderExtras:
        from tuimail.ui.controllers.reader_extras import ReaderExtras
        return ReaderExtras(self, self.opener, self.commands)

    @cached_property
    def compose_ctl(self) -> ComposeController:
        from tuimail.ui.controllers.compose import ComposeController
        ctl = ComposeController(self)
        ctl.outbox_changed = self.failed.outbox_changed
        for ev in self._sync_states.values():
            ctl.sync_state(ev)
        self._sync_states.clear()
        return ctl

    @cached_property
    def undo(self) -> UndoController:
        from tuimail.ui.controllers.undo import UndoController
        return UndoController(self, self.intents, self.compose_ctl)

    @cached_property
    def limiter(self) -> LimitController:  # l, / and the other search keys
        from tuimail.ui.controllers.limit import LimitController
        return LimitController(self)

    @cached_property
    def searches(self) -> SearchesController:  # [searches]: virtual folders across every folder
        from tuimail.ui.controllers.searches import SearchesController
        return SearchesController(self)

    @cached_property
    def bulk(self) -> BulkActions:
        from tuimail.ui.controllers.bulk import BulkActions
        return BulkActions(self, self.intents)

    @property
    def tapp(self) -> TuimailApp:
        return cast("TuimailApp", self.app)

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        from tuimail.trace import trace
        trace("ui: compose main")
        with Horizontal(id="main"):
            yield FolderTree(id="folders")
            with Container(id="panes", classes="right"):
                yield HeaderList(id="list", dates=self.tapp.dates, overlay=self.tapp.overlay)
                yield ProblemPanel(id="problem")
                yield MessageView(id="reader")
        yield StatusBar(id="status")

    @property
    def hlist(self) -> HeaderList:
        return self.query_one("#list", HeaderList)

    @property
    def reader(self) -> MessageView:
        return self.query_one("#reader", MessageView)

    @property
    def folder_tree(self) -> FolderTree:
        return self.query_one("#folders", FolderTree)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    def on_mount(self) -> None:
        from tuimail.trace import trace
        trace("ui: mount main")
        app = self.tapp
        hl = self.hlist
        hl.threaded = bool(app.config.ui.threaded)
        hl.sort, hl.reverse = app.config.ui.sort.removeprefix("reverse-"), app.config.ui.sort.startswith("reverse-")
        for name, store in app.stores.items():
            # (a first run's sync may have reported already: keep what it said)
            st = self.status.info.accounts.setdefault(name, AccountState(state="offline" if app.offline else "idle"))
            st.pending = store.pending_count()
        self.failed.read_counts()
        for name in app.stores:  # their threads start now, not on the first key (Thread.start waits)
            self.intents.intent_writer(name).start()
        self._apply_layout()
        target = None
        if app.start_folder:
            target = self._find_folder(app.start_folder)
            if target is None:  # perhaps not synced yet: opened when it appears
                self._wanted_start = app.start_folder
        target = target or self._default_folder()
        if target is not None:
            self.open_folder(*target, first=True)
        else:
            self.update_status()
        hl.focus()
        # The tree (every folder's counts), the rest of the uid list and the sync threads wait
        # for the list's first paint (HeaderList.Painted); this timer is the fallback should the
        # list not be drawn at all.
        self.set_timer(1.0, self._after_first_paint)
        self.store_poll.start()
        self.set_interval(STORE_POLL, self.store_poll.poll)
        for problem in app.problems:
            self.notify(problem, severity="warning", markup=False, timeout=8)

    def on_unmount(self) -> None:
        self.tapp.collector.stop()
        if self.made("compose_ctl"):
            self.compose_ctl.stop()

    def _compositor_refresh(self) -> None:
        # Textual lays the screen out and renders it once while the app's start-up batch is
        # still open, then drops that frame (App._display returns during a batch) and renders
        # again afterwards: ~60 ms of a 100k first screen. Keep the repaint pending instead; the
        # idle handler after the batch does it once, and that frame is the one written.
        app = self.app
        if app._batch_count and hasattr(self, "_repaint_required"):
            self._repaint_required = True
            return
        # The first layout gives every widget its size, and each widget whose size changed asks
        # for another layout (Widget._size_updated): the frame rendered now would be replaced at
        # once, 15-30 ms of the first screen spent on a frame no one sees. Render after that
        # layout instead (at most twice: a widget that keeps asking does not hold the screen).
        if not self._after_paint_done and self._frames_skipped < 2 and any(
                w._layout_required for w in self.walk_children(Widget, with_self=False)):
            self._frames_skipped += 1
            self._repaint_required = True
            self.check_idle()
            return
        super()._compositor_refresh()

    def on_header_list_painted(self, event: HeaderList.Painted) -> None:
        event.stop()
        from tuimail.trace import trace
        trace("ui: list painted")
        self._after_first_paint()
        if event.rows:  # a first run's sync holds its next windows until these rows are drawn
            for svc in self.tapp.services.values():
                svc.ui_painted()

    def _after_first_paint(self) -> None:
        if self._after_paint_done:
            return
        self._after_paint_done = True
        self._build_tree()
        # full garbage collections from now on wait for a pause in the user's typing (collector.py)
        self.tapp.collector.start()
        self.set_interval(COLLECT_TICK, self.tapp.collector.tick)
        if self.folder is not None and self.account is not None and self.folder.total < 0:
            self._dirty_counts.add((self.account, self.folder.id))
            self._flush_counts()
        self.tapp.start_services()
        self.compose_ctl.start_drainers()
        self.searches.start()

    def _build_tree(self) -> None:
        any_folders = False
        for name, store in self.tapp.stores.items():
            folders = store.folders()
            any_folders = any_folders or bool(folders)
            self.folder_tree.set_account(name, folders)
        if self.folder is not None and self.account is not None:
            self.folder_tree.select_folder(self.account, self.folder.id)
        if self._wanted_start and any_folders:
            self.notify(f"no folder named {sanitize_line(self._wanted_start)} (yet)", severity="warning",
                        markup=False)

    def _find_folder(self, name: str) -> tuple[str, int] | None:
        """A folder by name in any account ("account/name" picks the account)."""
        for account, store in self.tapp.stores.items():
            fid = store.folder_id(name)
            if fid is None and name.startswith(account + "/"):
                fid = store.folder_id(name[len(account) + 1:])
            if fid is not None:
                return account, fid
        return None

    def _default_folder(self) -> tuple[str, int] | None:
        for account, store in self.tapp.stores.items():
            fid = store.folder_id("INBOX")  # cheap; the role lookup counts rows
            if fid is None:
                f = store.folder_by_role("inbox") or next((f for f in store.folders() if f.selectable), None)
                fid = f.id if f is not None else None
            if fid is not None:
                return account, fid
        return None

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout()

    def _apply_layout(self) -> None:
        width = self.app.size.width
        choice = self.layout_choice or self.tapp.config.ui.preview
        if self.layout_choice is None and choice == "right" and width < NARROW:
            choice = "below"
        panes = self.query_one("#panes")
        panes.set_class(choice == "right", "right")
        panes.set_class(choice == "below", "below")
        self.set_class(width < 100, "narrow")

    def action_toggle_layout(self) -> None:
        panes = self.query_one("#panes")
        self.layout_choice = "below" if panes.has_class("right") else "right"
        self._apply_layout()

    def action_fullscreen(self) -> None:
        self.toggle_class("fullscreen")
        if self.has_class("fullscreen"):
            self.reader.focus()
        else:
            self.hlist.focus()

    def action_help(self) -> None:
        from tuimail.ui.screens.modals import HelpScreen

        self.app.push_screen(HelpScreen(self.tapp.effective_keys))

    def action_quit(self) -> None:
        self.intents.flush()  # what the user did is in the store before the app ends
        self.app.exit()

    # ------------------------------------------------------------------ folders

    def open_folder(self, account: str, folder_id: int, *, first: bool = False) -> None:
        """Show a folder. first=True (at start-up) draws the first screenful before anything
        that scans the whole folder: its counts and the full uid list follow the first paint."""
        store = self.tapp.stores.get(account)
        info = store.folder(folder_id, counts=not first) if store is not None else None
        if info is None:
            return
        if not info.selectable:
            self.notify("this folder holds only other folders", markup=False)
            return
        if self.folder is not None and (account, folder_id) != (self.account, self.folder.id):
            self.opener.folder_left()
        self.account, self.folder = account, info
        hl = self.hlist
        hl.empty_text = "No messages in this folder"
        hl.load(store, folder_id, first_page=max(100, 2 * self.app.size.height) if first else 0)
        self.folder_tree.select_folder(account, folder_id)
        svc = self.tapp.services.get(account)
        if svc is not None and not self.tapp.offline:
            svc.watch_folder(info.name)
        self.alerts.folder_opened(account, info.name)
        self.update_status()
        self.show_problem()

    def on_header_list_order_changed(self, event: HeaderList.OrderChanged) -> None:
        self.update_status()

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        ref: FolderRef | None = event.node.data
        if ref is not None and ref.search is not None:
            event.stop()
            self.searches.open(ref.search)
            return
        if ref is None or ref.folder_id is None:
            return
        event.stop()
        if (self.hlist.source is not None or ref.account != self.account or self.folder is None
                or ref.folder_id != self.folder.id):
            self.open_folder(ref.account, ref.folder_id)
        self.hlist.focus()

    def folder_choices(self, account: str | None = None, *,
                       exclude: int | None = None) -> list[tuple[str, tuple[str, FolderInfo]]]:
        """(label, (account, folder)) of every selectable folder (of one account)."""
        out = []
        for name, store in self.tapp.stores.items():
            if account is not None and name != account:
                continue
            for f in store.folders():
                if not f.selectable or f.id == exclude:
                    continue
                label = f.name if account is not None else f"{name}: {f.name}"
                if f.unread:
                    label += f"  ({f.unread})"
                out.append((label, (name, f)))
        return out

    def action_change_folder(self) -> None:
        def chosen(value: tuple[str, FolderInfo] | None) -> None:
            if value is not None:
                account, info = value
                self.open_folder(account, info.id)
                self.hlist.focus()

        from tuimail.ui.screens.modals import PickerScreen

        choices = self.folder_choices()
        self.app.push_screen(PickerScreen("Open folder", choices, [v[1].name for _l, v in choices]), chosen)

    # ------------------------------------------------------------------ status and counts

    def update_status(self) -> None:
        info = self.status.info
        info.account = self.account or ""
        if self.folder is not None:
            info.folder = self.folder.name
            info.total, info.unread = self.folder.total, self.folder.unread
            info.folder_error = folder_problem(self.folder)
        hl = self.hlist
        info.sort = ("thread" if hl.threaded else hl.sort) + (" ↑" if hl.reverse else "")
        info.limit = self.limiter.status_text() if hl.limit is not None or hl.source is not None else ""
        info.tagged = len(hl.tagged)
        self.status.show()

    def counts_changed(self, account: str, folder_id: int) -> None:
        """Counts are recomputed a moment later, once for a burst of changes."""
        self._dirty_counts.add((account, folder_id))
        if self.made("searches"):
            self.searches.stores_changed()
        if self._counts_timer is None:
            self._counts_timer = self.set_timer(0.3, self._flush_counts)

    def _flush_counts(self) -> None:
        self._counts_timer = None
        dirty, self._dirty_counts = self._dirty_counts, set()

        def query(stores: dict[str, Store]) -> tuple[dict[tuple[str, int], FolderInfo | None],
                                                      dict[str, tuple[int, list[tuple[str, int]]]]]:
            infos = {(a, fid): stores[a].folder(fid) for a, fid in dirty}
            pending = {a: (stores[a].pending_count(), stores[a].failed_summary()) for a in stores}
            return infos, pending

        self.read_stores({a for a, _ in dirty}, query, lambda result: CountsRead(*result))

    def on_counts_read(self, msg: CountsRead) -> None:
        for (account, fid), info in msg.infos.items():
            if info is None:
                continue
            self.folder_tree.update_counts(account, fid, info)
            if account == self.account and self.folder is not None and fid == self.folder.id:
                self.folder = info
        for account, (n, failed) in msg.pending.items():
            st = self.status.info.accounts.setdefault(account, AccountState())
            st.pending, st.failed = n, failed
        self.update_status()

    def read_stores(self, accounts: Iterable[str], query: Callable[[dict[str, Store]], R],
                    done: Callable[[R], Message]) -> None:
        """Run query({account: Store}) in a thread on connections of its own (counts scan every row
        of a folder: ~20 ms per 100k, more while the sync writes); done(result), a message, is
        posted to this screen."""
        paths = {a: self.tapp.stores[a].path for a in accounts if a in self.tapp.stores}
        post = self.post_message

        def work() -> None:
            own = {a: Store(p) for a, p in paths.items()}
            try:
                result = query(own)
            finally:
                for st in own.values():
                    st.close()
            post(done(result))  # thread-safe, never blocks

        self.run_worker(work, thread=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed (their results come as messages: MessageOpened, BytesFetched...)."""
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            self.notify(error_text(worker.error), severity="error", markup=False)

    # ------------------------------------------------------------------ sync events

    def handle_events(self, evs: list[object]) -> None:
        app = self.tapp
        status_dirty = False
        for ev in evs:
            if isinstance(ev, SyncState):
                st = self.status.info.accounts.setdefault(ev.account, AccountState())
                st.state = "offline" if app.offline else ev.state
                st.folder, st.done, st.total, st.pending = ev.folder, ev.done, ev.total, ev.pending
                st.error = sanitize_line(ev.error) if ev.error else (None if ev.state != "error" else st.error)
                self.alerts.sync_state_changed(ev, st)
                if self.made("compose_ctl"):
                    self.compose_ctl.sync_state(ev)
                else:
                    self._sync_states[ev.account] = ev
                self.show_problem()
                status_dirty = True
            elif isinstance(ev, NewMail):
                self.alerts.new_mail(ev)
            elif isinstance(ev, FoldersChanged):
                self._folders_dirty.add(ev.account)
            elif isinstance(ev, RowsChanged):
                if ev.account == self.account and self.folder is not None and ev.folder_id == self.folder.id:
                    self.hlist.rows_changed(ev.ids, ev.added, ev.removed, ev.reset)
                    if ev.added and self.hlist.limit is not None:
                        self.limiter.rows_added()  # new mail that matches the limit joins it
                self.counts_changed(ev.account, ev.folder_id)
        if self._folders_dirty and self._folders_timer is None:
            wait = self._folders_at + FOLDERS_INTERVAL - time.monotonic()
            if wait <= 0:
                self._flush_folders()
            else:
                self._folders_timer = self.set_timer(wait, self._flush_folders)
        if status_dirty:
            self.update_status()

    def _flush_folders(self) -> None:
        """Folder lists and counts (Store.folders() scans every row): at most once a second, read
        in a thread."""
        self._folders_timer = None
        self._folders_at = time.monotonic()
        dirty, self._folders_dirty = self._folders_dirty, set()
        self.read_stores(dirty, lambda stores: {a: st.folders() for a, st in stores.items()}, FoldersRead)
        self.failed.refresh(dirty)

    def on_folders_read(self, msg: FoldersRead) -> None:
        for account, folders in msg.folders.items():
            self.folder_tree.set_account(account, folders)
            wanted = self._wanted_start and self._find_folder(self._wanted_start)
            if wanted:
                self._wanted_start = None
                self.open_folder(*wanted)
            elif self.folder is None and self.hlist.source is None:  # the first sync brought the folders
                target = self._default_folder()
                if target is not None:
                    self.open_folder(*target)
            elif account == self.account and self.folder is not None:
                cur = next((f for f in folders if f.id == self.folder.id), None)
                if cur is not None:
                    self.folder = cur
                else:  # the open folder is gone from the server
                    target = self._default_folder()
                    if target is not None:
                        self.open_folder(*target)
        self.update_status()
        self.show_problem()

    def folders_changed(self, accounts: Iterable[str]) -> None:
        """Read these accounts' folder lists again, now."""
        self._folders_dirty.update(accounts)
        self._flush_folders()

    def store_changed(self, account: str) -> None:
        """Another process committed to this account's store (controllers/store_poll.py)."""
        self._folders_dirty.add(account)
        if self.made("searches"):
            self.searches.stores_changed()
        if self._folders_timer is None:
            self._flush_folders()
        if account == self.account and self.folder is not None:
            self.hlist.rows_changed(reset=True)
            self.counts_changed(account, self.folder.id)

    def show_problem(self) -> None:
        """A sync problem, in a panel where the list would be when there is no list to show."""
        text = self.alerts.problem_text()
        show = text is not None
        if text is not None:
            self.query_one("#problem", ProblemPanel).update(text)
        if self.has_class("problem") != show:
            # (the list and the reader make way: nothing to read, the panel takes the whole pane)
            self.set_class(show, "problem")
            if not show and self.focused is None:
                self.hlist.focus()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[FolderRef]) -> None:
        """A refused folder's reason, in the status bar while it is highlighted."""
        ref = event.node.data
        info = None
        if ref is not None and ref.folder_id is not None and ref.account in self.tapp.stores:
            info = self.tapp.stores[ref.account].folder(ref.folder_id, counts=False)
        info_line = self.status.info
        info_line.folder_error = folder_problem(info) if info is not None else ""
        if not info_line.folder_error and self.folder is not None:
            info_line.folder_error = folder_problem(self.folder)
        self.status.show()

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

    # ------------------------------------------------------------------ accounts

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
        if not app.offline:
            self.compose_ctl.went_online()
        self.compose_ctl.offline_changed()
        self.update_status()

    # ------------------------------------------------------------------ delegated to the controllers

    def on_found(self, msg: Found) -> None:
        msg.apply()  # a limit, a search, a virtual folder or the searches' counts (controllers/finding.py)

    def action_limit(self) -> None:
        self.limiter.prompt_limit()

    def action_search(self) -> None:
        self.limiter.prompt_search()

    def action_search_backward(self) -> None:
        self.limiter.prompt_search(backward=True)

    def action_search_next(self) -> None:
        self.limiter.search_next()

    def action_search_prev(self) -> None:
        self.limiter.search_next(reverse=True)

    def action_search_all(self) -> None:
        self.searches.prompt_all()

    def on_intent_done(self, msg: IntentDone) -> None:
        msg.stop()
        self.intents.done(msg)
        self.bulk.done(msg)

    def on_header_list_selected(self, event: HeaderList.Selected) -> None:
        self.opener.selected(event.uid)

    def on_header_list_cursor_moved(self, event: HeaderList.CursorMoved) -> None:
        self.opener.cursor_moved()

    def on_message_view_at_end(self, event: MessageView.AtEnd) -> None:
        self.opener.at_end()

    def on_message_opened(self, msg: MessageOpened) -> None:
        if self.opener.opened(msg) == "attachments":
            self.extras.attachments()

    def on_bytes_fetched(self, msg: BytesFetched) -> None:
        self.extras.bytes_fetched(msg)

    def on_command_finished(self, msg: CommandFinished) -> None:
        self.commands.finished(msg)

    def on_failed_summary_read(self, msg: FailedSummaryRead) -> None:
        self.failed.summary_read(msg)

    def action_close(self) -> None:
        if self.has_class("fullscreen"):
            self.remove_class("fullscreen")
        self.hlist.focus()

    def action_next_message(self) -> None:
        self.opener.step(1)

    def action_prev_message(self) -> None:
        self.opener.step(-1)

    def action_load_more(self) -> None:
        self.opener.load_more()

    def action_toggle_read(self) -> None:
        self.actions.toggle_read()

    def action_flag(self) -> None:
        self.actions.flag()

    def action_delete(self) -> None:
        self.actions.delete()

    def action_archive(self) -> None:
        self.actions.archive()

    def action_move(self) -> None:
        self.actions.move()

    def action_copy_link(self) -> None:
        self.extras.copy_link()

    def action_open_link(self) -> None:
        self.extras.open_link()

    def action_raw(self) -> None:
        self.extras.raw()

    def action_full_headers(self) -> None:
        self.extras.full_headers()

    def action_pipe(self) -> None:
        self.extras.pipe()

    def action_attachments(self) -> None:
        self.extras.attachments()

    def action_failed_actions(self) -> None:
        self.failed.show()

    # ------------------------------------------------------------------ many at once (controllers/bulk.py, save.py)

    def action_tag(self) -> None:
        self.bulk.tag()

    def action_tag_thread(self) -> None:
        self.bulk.tag_thread()

    def action_tag_pattern(self) -> None:
        self.bulk.tag_pattern()

    def action_untag_pattern(self) -> None:
        self.bulk.tag_pattern(untag=True)

    def action_tag_prefix(self) -> None:
        self.bulk.prefix()

    def action_copy(self) -> None:
        self.bulk.copy_one()

    def action_save_file(self) -> None:
        self.bulk.saver.save_one()

    def action_read_thread(self) -> None:
        self.bulk.read_thread()

    def action_delete_thread(self) -> None:
        self.bulk.delete_thread()

    def action_move_thread(self) -> None:
        self.bulk.move_thread()

    def action_mark_all_read(self) -> None:
        self.bulk.mark_all_read()

    # ------------------------------------------------------------------ writing mail (controllers/compose.py)

    def action_compose(self) -> None:
        self.compose_ctl.start("compose")

    def action_reply(self) -> None:
        self.compose_ctl.start("reply")

    def action_reply_all(self) -> None:
        self.compose_ctl.start("reply_all")

    def action_reply_list(self) -> None:
        self.compose_ctl.start("reply_list")

    def action_forward(self) -> None:
        self.compose_ctl.start("forward")

    def action_forward_attached(self) -> None:
        self.compose_ctl.start("forward_attached")

    def action_resume_draft(self) -> None:
        self.compose_ctl.start("resume_draft")

    def action_undo_send(self) -> None:
        self.compose_ctl.undo()

    def action_undo(self) -> None:
        self.undo.undo_last()

    def action_undo_history(self) -> None:
        self.undo.history()

    def on_draft_made(self, msg: DraftMade) -> None:
        self.compose_ctl.draft_made(msg)

    def on_send_queued(self, msg: SendQueued) -> None:
        self.compose_ctl.queued(msg)

    def on_send_cancelled(self, msg: SendCancelled) -> None:
        self.compose_ctl.cancelled(msg)

    def on_postponed(self, msg: Postponed) -> None:
        self.compose_ctl.postponed(msg)

    def on_drain_reported(self, msg: DrainReported) -> None:
        self.compose_ctl.drain_reported(msg)

    def on_drafts_filed(self, msg: DraftsFiled) -> None:
        self.compose_ctl.drafts_filed(msg)
