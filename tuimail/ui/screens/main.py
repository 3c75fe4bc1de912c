"""The three-pane main screen: folder tree, header list, message view, status bar.

This module holds the widgets, the CSS and the start-up (the first paint, then the tree, the
sync and the collector). What the screen does lives in controllers (ui/controllers/), plain
objects this screen holds: the folders and their counts (folders.py), the sync's events
(sync_events.py), the panes' arrangement (panes.py), the status bar (status_line.py), what the
keys do to messages, the reader's extras, the alerts, the intents and the failed actions. Its
action_* and on_* methods (Textual finds them on the screen) delegate to them.
"""

from __future__ import annotations

from functools import cached_property
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from textual import events
from textual.app import ComposeResult
from textual.containers import Container, Horizontal
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Tree
from textual.worker import Worker, WorkerState

from tuimail.backends.registry import drained_accounts
from tuimail.store.store import FolderInfo
from tuimail.ui import keys
from tuimail.ui.collector import TICK as COLLECT_TICK
from tuimail.ui.controllers.alerts import Alerts, ProblemPanel
from tuimail.ui.controllers.failed_actions import FailedActions, FailedSummaryRead
from tuimail.ui.controllers.folders import CountsRead, Folders, FoldersRead
from tuimail.ui.controllers.intents import IntentDone, IntentQueue
from tuimail.ui.controllers.message_actions import MessageActions
from tuimail.ui.controllers.opener import MessageOpened, MessageOpener
from tuimail.ui.controllers.panes import Panes
from tuimail.ui.controllers.status_line import StatusLine
from tuimail.ui.controllers.store_poll import STORE_POLL, StorePoll
from tuimail.ui.controllers.sync_events import SyncEvents
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


class MainScreen(Screen[None]):
    BINDINGS = keys.bindings("global")
    # The list has the focus from the start (on_mount asks for it too, but Widget.focus() waits
    # for the next turn of the loop: Textual's default "*" gave it first to the folder tree,
    # which then lost it, two style passes over the screen before the first paint)
    AUTO_FOCUS = "#list"

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
        self._after_paint_done = False
        self._frames_skipped = 0  # _compositor_refresh: first frames a layout already waits to replace
        # the controllers (controllers/): plain objects; the action_* and on_* methods below delegate
        self.alerts = Alerts(self)
        self.store_poll = StorePoll(self, lambda account: self.folders.store_changed(account))
        self.intents = IntentQueue(self, self.store_poll)
        self.actions = MessageActions(self, self.intents)
        self.opener = MessageOpener(self, self.actions)
        self.failed = FailedActions(self, lambda: self.compose_ctl)  # (the Outbox section of `!`)
        self.folders = Folders(self, self.opener, self.alerts, self.failed)
        self.panes = Panes(self, self.alerts)
        self.status_line = StatusLine(self, lambda: self.limiter)
        self.sync = SyncEvents(self, self.alerts, self.folders, lambda: self.compose_ctl, lambda: self.limiter)
        # the others are made on first use (the properties below): their modules (patterns,
        # composing, the outbox...) are not imported before the first screen is drawn

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
        self.sync.compose_made(ctl)  # (it hears the sync states from now on)
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
        ctl = self.folders.searches = SearchesController(self)  # (counts follow the stores' changes)
        if self._after_paint_done:  # (its node in the tree, its counts; before: _after_first_paint)
            ctl.start()
        return ctl

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
        self.panes.apply()
        target = self.folders.start_target(app.start_folder)
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
        full = self._compositor.size.region in self._compositor._dirty_regions
        super()._compositor_refresh()
        if full and self is app.screen:
            # a whole-screen frame was written: the repaint a skipped frame asked for (above) is
            # in it. Left set, the same timer tick rendered and wrote the screen once more (~5 ms
            # and a screenful of output, just before the first paint).
            self._repaint_required = False

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
        self.folders.build_tree()
        # full garbage collections from now on wait for a pause in the user's typing (collector.py)
        self.tapp.collector.start()
        self.set_interval(COLLECT_TICK, self.tapp.collector.tick)
        if self.folder is not None and self.account is not None and self.folder.total < 0:
            self.folders.count_now(self.account, self.folder.id)
        self.tapp.start_services()
        # The compose controller (for the outbox drains) and the saved searches' controller cost
        # ~20 ms each of this thread (their modules' imports): made here only where an account has
        # a drain (it can send, or its server keeps drafts) and where the config names searches
        # (their node in the tree shows counts), else at their first use. (Made later, or their
        # modules imported in a thread, they were a 20-30 ms stall of keys typed meanwhile.)
        tapp = self.tapp
        if drained_accounts(tapp.config, tapp.stores, tapp.services):
            self.compose_ctl.start_drainers()
        if tapp.config.searches:
            _ = self.searches  # (made after the first paint: started at once)

    # ------------------------------------------------------------------ the panes (controllers/panes.py)

    def on_resize(self, event: events.Resize) -> None:
        self.panes.apply()

    def action_toggle_layout(self) -> None:
        self.panes.toggle()

    def action_fullscreen(self) -> None:
        self.panes.fullscreen()

    def action_close(self) -> None:
        self.panes.close()

    def show_problem(self) -> None:
        self.panes.show_problem()

    def action_help(self) -> None:
        from tuimail.ui.screens.modals import HelpScreen

        self.app.push_screen(HelpScreen(self.tapp.effective_keys))

    def action_quit(self) -> None:
        self.intents.flush()  # what the user did is in the store before the app ends
        self.app.exit()

    # ------------------------------------------------------------------ folders (controllers/folders.py)

    def open_folder(self, account: str, folder_id: int, *, first: bool = False) -> None:
        self.folders.open(account, folder_id, first=first)

    def folder_choices(self, account: str | None = None, *,
                       exclude: int | None = None) -> list[tuple[str, tuple[str, FolderInfo]]]:
        return self.folders.choices(account, exclude=exclude)

    def counts_changed(self, account: str, folder_id: int) -> None:
        self.folders.counts_changed(account, folder_id)

    def folders_changed(self, accounts: Iterable[str]) -> None:
        self.folders.folders_changed(accounts)

    def on_counts_read(self, msg: CountsRead) -> None:
        self.folders.counts_read(msg)

    def on_folders_read(self, msg: FoldersRead) -> None:
        self.folders.folders_read(msg)

    def action_change_folder(self) -> None:
        self.folders.change()

    def on_tree_node_selected(self, event: Tree.NodeSelected[FolderRef]) -> None:
        ref = event.node.data
        if ref is not None and ref.search is not None:
            event.stop()
            self.searches.open(ref.search)
        elif ref is not None and ref.folder_id is not None:
            event.stop()
            self.folders.selected(ref.account, ref.folder_id)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[FolderRef]) -> None:
        self.folders.highlighted(event.node.data)

    def on_header_list_order_changed(self, event: HeaderList.OrderChanged) -> None:
        self.update_status()

    # ------------------------------------------------------------------ the sync (controllers/sync_events.py)

    def handle_events(self, evs: list[object]) -> None:
        self.sync.handle(evs)  # (from the app, a batch at a time)

    def action_sync(self) -> None:
        self.sync.sync_now()

    def action_toggle_offline(self) -> None:
        self.sync.toggle_offline()

    # ------------------------------------------------------------------ the status bar (status_line.py), workers

    def update_status(self) -> None:
        self.status_line.update()

    def unbound_key(self, key: str) -> None:
        self.status_line.unbound_key(key)  # (from the app)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed (their results come as messages: MessageOpened, BytesFetched...)."""
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            self.notify(error_text(worker.error), severity="error", markup=False)

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
        if self.made("bulk"):  # (its own intents only: never made, it has none; making it costs ~30 ms)
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
