"""The main screen's folders (Folders, held by MainScreen): which folder is open and opening
another, the folder to start in (-f FOLDER, perhaps not synced yet), the folder tree and its
counts.

Counts and folder lists scan every row of a folder, so they are read in a thread
(view.py's read_stores) and come back as messages posted to the screen (CountsRead, FoldersRead):
counts a moment after a burst of changes, folder lists at most once a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.message import Message

from tuimail.mail.sanitize import sanitize_line
from tuimail.store.store import FolderInfo, Store
from tuimail.ui.controllers.alerts import Alerts
from tuimail.ui.controllers.failed_actions import FailedActions
from tuimail.ui.controllers.opener import MessageOpener
from tuimail.ui.controllers.view import MainView, read_stores
from tuimail.ui.widgets.folder_tree import FolderRef
from tuimail.ui.widgets.status import AccountState

if TYPE_CHECKING:
    from textual.timer import Timer

    from tuimail.ui.controllers.searches import SearchesController

FOLDERS_INTERVAL = 1.0  # seconds between folder-list refreshes caused by sync events
COUNTS_DELAY = 0.3  # seconds a burst of changes has to arrive in before the counts are read again

FolderKey = tuple[str, int]  # (account, folder id)


class CountsRead(Message, bubble=False):
    """Folder counts and each account's pending and failed actions, read in a thread."""

    def __init__(self, infos: dict[FolderKey, FolderInfo | None],
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


class Folders:
    def __init__(self, view: MainView, opener: MessageOpener, alerts: Alerts, failed: FailedActions) -> None:
        self.view, self.opener, self.alerts, self.failed = view, opener, alerts, failed
        # set by the screen when it makes the searches (on first use): their counts follow the stores'
        self.searches: SearchesController | None = None
        self.wanted_start: str | None = None  # -f FOLDER not in the store yet (first sync)
        self._folders_dirty: set[str] = set()
        self._folders_timer: Timer | None = None
        self._folders_at = 0.0
        self._dirty_counts: set[FolderKey] = set()
        self._counts_timer: Timer | None = None

    # ------------------------------------------------------------------ which folder

    def start_target(self, name: str | None) -> FolderKey | None:
        """The folder to open at start-up: -f FOLDER (remembered to be opened when it appears if
        it is not in the store yet), else the default one."""
        target = None
        if name:
            target = self.find(name)
            if target is None:  # perhaps not synced yet: opened when it appears
                self.wanted_start = name
        return target or self.default()

    def find(self, name: str) -> FolderKey | None:
        """A folder by name in any account ("account/name" picks the account)."""
        for account, store in self.view.tapp.stores.items():
            fid = store.folder_id(name)
            if fid is None and name.startswith(account + "/"):
                fid = store.folder_id(name[len(account) + 1:])
            if fid is not None:
                return account, fid
        return None

    def default(self) -> FolderKey | None:
        for account, store in self.view.tapp.stores.items():
            fid = store.folder_id("INBOX")  # cheap; the role lookup counts rows
            if fid is None:
                f = store.folder_by_role("inbox") or next((f for f in store.folders() if f.selectable), None)
                fid = f.id if f is not None else None
            if fid is not None:
                return account, fid
        return None

    def open(self, account: str, folder_id: int, *, first: bool = False) -> None:
        """Show a folder. first=True (at start-up) draws the first screenful before anything
        that scans the whole folder: its counts and the full uid list follow the first paint."""
        view = self.view
        store = view.tapp.stores.get(account)
        info = store.folder(folder_id, counts=not first) if store is not None else None
        if info is None:
            return
        if not info.selectable:
            view.notify("this folder holds only other folders", markup=False)
            return
        if view.folder is not None and (account, folder_id) != (view.account, view.folder.id):
            self.opener.folder_left()
        view.account, view.folder = account, info
        hl = view.hlist
        hl.empty_text = "No messages in this folder"
        hl.load(store, folder_id, first_page=max(100, 2 * view.tapp.size.height) if first else 0)
        view.folder_tree.select_folder(account, folder_id)
        svc = view.tapp.services.get(account)
        if svc is not None and not view.tapp.offline:
            svc.watch_folder(info.name)
        self.alerts.folder_opened(account, info.name)
        view.update_status()
        view.show_problem()

    def selected(self, account: str, folder_id: int) -> None:
        """A folder chosen in the tree: opened unless it is the one shown."""
        view = self.view
        if (view.hlist.source is not None or account != view.account or view.folder is None
                or folder_id != view.folder.id):
            self.open(account, folder_id)
        view.hlist.focus()

    def highlighted(self, ref: FolderRef | None) -> None:
        """A refused folder's reason, in the status bar while it is highlighted in the tree."""
        view = self.view
        info = None
        if ref is not None and ref.folder_id is not None and ref.account in view.tapp.stores:
            info = view.tapp.stores[ref.account].folder(ref.folder_id, counts=False)
        info_line = view.status.info
        info_line.folder_error = folder_problem(info) if info is not None else ""
        if not info_line.folder_error and view.folder is not None:
            info_line.folder_error = folder_problem(view.folder)
        view.status.show()

    def choices(self, account: str | None = None, *,
                exclude: int | None = None) -> list[tuple[str, tuple[str, FolderInfo]]]:
        """(label, (account, folder)) of every selectable folder (of one account)."""
        out = []
        for name, store in self.view.tapp.stores.items():
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

    def change(self) -> None:
        """The folder picker (c)."""
        def chosen(value: tuple[str, FolderInfo] | None) -> None:
            if value is not None:
                account, info = value
                self.open(account, info.id)
                self.view.hlist.focus()

        from tuimail.ui.screens.modals import PickerScreen

        choices = self.choices()
        self.view.tapp.push_screen(PickerScreen("Open folder", choices, [v[1].name for _l, v in choices]), chosen)

    # ------------------------------------------------------------------ the tree and its counts

    def build_tree(self) -> None:
        """Every account's folders, with their counts (after the first paint)."""
        view = self.view
        any_folders = False
        for name, store in view.tapp.stores.items():
            folders = store.folders()
            any_folders = any_folders or bool(folders)
            view.folder_tree.set_account(name, folders)
        if view.folder is not None and view.account is not None:
            view.folder_tree.select_folder(view.account, view.folder.id)
        if self.wanted_start and any_folders:
            view.notify(f"no folder named {sanitize_line(self.wanted_start)} (yet)", severity="warning",
                        markup=False)

    def counts_changed(self, account: str, folder_id: int) -> None:
        """Counts are recomputed a moment later, once for a burst of changes."""
        self._dirty_counts.add((account, folder_id))
        if self.searches is not None:
            self.searches.stores_changed()
        if self._counts_timer is None:
            self._counts_timer = self.view.set_timer(COUNTS_DELAY, self.flush_counts)

    def count_now(self, account: str, folder_id: int) -> None:
        """This folder's counts (with any others waiting), read now."""
        self._dirty_counts.add((account, folder_id))
        self.flush_counts()

    def flush_counts(self) -> None:
        self._counts_timer = None
        dirty, self._dirty_counts = self._dirty_counts, set()

        def query(stores: dict[str, Store]) -> tuple[dict[FolderKey, FolderInfo | None],
                                                      dict[str, tuple[int, list[tuple[str, int]]]]]:
            infos = {(a, fid): stores[a].folder(fid) for a, fid in dirty}
            pending = {a: (stores[a].pending_count(), stores[a].failed_summary()) for a in stores}
            return infos, pending

        read_stores(self.view, {a for a, _ in dirty}, query, lambda result: CountsRead(*result))

    def counts_read(self, msg: CountsRead) -> None:
        view = self.view
        for (account, fid), info in msg.infos.items():
            if info is None:
                continue
            view.folder_tree.update_counts(account, fid, info)
            if account == view.account and view.folder is not None and fid == view.folder.id:
                view.folder = info
        for account, (n, failed) in msg.pending.items():
            st = view.status.info.accounts.setdefault(account, AccountState())
            st.pending, st.failed = n, failed
        view.update_status()

    # ------------------------------------------------------------------ folder lists

    def folders_dirty(self, account: str) -> None:
        """This account's folder list is to be read again (flush_soon)."""
        self._folders_dirty.add(account)

    def flush_soon(self) -> None:
        """Read the folder lists marked dirty: now, or a second after the last time."""
        if self._folders_dirty and self._folders_timer is None:
            wait = self._folders_at + FOLDERS_INTERVAL - time.monotonic()
            if wait <= 0:
                self.flush_folders()
            else:
                self._folders_timer = self.view.set_timer(wait, self.flush_folders)

    def flush_folders(self) -> None:
        """Folder lists and counts (Store.folders() scans every row): at most once a second, read
        in a thread."""
        self._folders_timer = None
        self._folders_at = time.monotonic()
        dirty, self._folders_dirty = self._folders_dirty, set()
        read_stores(self.view, dirty, lambda stores: {a: st.folders() for a, st in stores.items()}, FoldersRead)
        self.failed.refresh(dirty)

    def folders_read(self, msg: FoldersRead) -> None:
        view = self.view
        for account, folders in msg.folders.items():
            view.folder_tree.set_account(account, folders)
            wanted = self.wanted_start and self.find(self.wanted_start)
            if wanted:
                self.wanted_start = None
                self.open(*wanted)
            elif view.folder is None and view.hlist.source is None:  # the first sync brought the folders
                target = self.default()
                if target is not None:
                    self.open(*target)
            elif account == view.account and view.folder is not None:
                cur = next((f for f in folders if f.id == view.folder.id), None)
                if cur is not None:
                    view.folder = cur
                else:  # the open folder is gone from the server
                    target = self.default()
                    if target is not None:
                        self.open(*target)
        view.update_status()
        view.show_problem()

    def folders_changed(self, accounts: Iterable[str]) -> None:
        """Read these accounts' folder lists again, now."""
        self._folders_dirty.update(accounts)
        self.flush_folders()

    def store_changed(self, account: str) -> None:
        """Another process committed to this account's store (controllers/store_poll.py)."""
        view = self.view
        self._folders_dirty.add(account)
        if self.searches is not None:
            self.searches.stores_changed()
        if self._folders_timer is None:
            self.flush_folders()
        if account == view.account and view.folder is not None:
            view.hlist.rows_changed(reset=True)
            self.counts_changed(account, view.folder.id)
