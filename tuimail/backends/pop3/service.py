"""Pop3Service: the POP3 account kind's AccountService (core/service.py), made by backends/registry.py.

A POP3 account is an INBOX of downloaded mail plus the local folders the user names
(`accounts.NAME.folders`), all in the account's store. One worker thread syncs on start, on
request_sync and every check_interval: one POP3 session each time (download.py: UIDL, then only
what is new; DELE only for messages the store has committed; QUIT applies them). Flags, moves
and deletes are the store's alone (the folders are local: store/journal.py writes no journal
entry for them); deleting a message locally in keep mode DELEs it on the server at the next sync
when `delete_on_server = true`.

Messages are read from their stored copy (opener.py); a header-only copy (headers_first) gets
its body by UIDL + RETR on a session of its own when it is opened.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, TypeVar

from tuimail import paths
from tuimail.backends.base import ServiceBase
from tuimail.backends.lock import AccountLock
from tuimail.backends.pop3.ledger import GONE
from tuimail.backends.pop3.plan import Policy
from tuimail.config.load import Account, Config
from tuimail.core.content import MessageContent
from tuimail.core.events import EventSink, FoldersChanged, NewMail
from tuimail.core.roles import role_by_name
from tuimail.core.service import Capabilities
from tuimail.core.summary import FolderSummary, SyncSummary
from tuimail.errors import NetworkError, NotCached, Unsupported, UsageError
from tuimail.mail.sanitize import sanitize_line
from tuimail.store import Store
from tuimail.store.pop3ledger import LedgerEntry, Pop3Ledger
from tuimail.store.sqlite_errors import guard

if TYPE_CHECKING:  # (download is imported when a sync runs)
    from tuimail.backends.pop3.download import SyncResult
    from tuimail.backends.pop3.opener import Pop3Reader
    from tuimail.protocol.pop3 import Pop3Session

log = logging.getLogger("tuimail.pop3")
T = TypeVar("T")


class _AccountPolicy(Policy):
    """The account's mode, and: a message the user deleted (downloaded_at GONE) is due at once."""

    def due(self, downloaded_at: float, now: float) -> bool:
        return downloaded_at == GONE or super().due(downloaded_at, now)


class Pop3Service(ServiceBase):
    """The worker loop and the requests are backends/base.py's; here: one POP3 session per round
    (`_round`), then a wait until the next check_interval, a request or a local delete."""

    capabilities = Capabilities(server_flags=False, push=False, server_search=False, append=False, send=False,
                                server_folders=False)
    thread_name = "pop3"
    reports_pending = False  # (no journal: the folders are local)

    def __init__(self, config: Config, account: Account, on_event: EventSink | None = None,
                 *, offline: bool = False):
        super().__init__(config, account, on_event, offline=offline)
        self._session: Pop3Session | None = None  # the worker's Pop3Session while it syncs (stop() cuts it)
        self.last: SyncResult | None = None  # the last sync's (tests, the bench)
        self._notes: list[str] = []
        self._early: _EarlyLogin | None = None  # the first sync's login, started beside the store's opening
        self.serves_app = False  # the app's sync process (process.py): the bodies wait for its first screen

    def _wait_for_paint(self) -> None:
        """hold_for_first_paint(): after the first screenful of rows (the ledger's first report),
        wait at most base.PAINT_HOLD seconds for ui_painted() before downloading more, so that the
        download does not compete with the UI's start-up and first paint for a CPU."""
        if not self._hold_for_paint:
            return
        self._hold_for_paint = False  # the first report of the first sync only
        super()._wait_for_paint()

    def _bodies_after_paint(self) -> None:
        """headers_first, every new header committed: in the app's sync process, the bodies (RETR
        of each message, then the search index and the threads: the bulk of a first sync's CPU)
        wait until the app has drawn its first screen (at most base.PAINT_HOLD seconds). Measured
        with a 5,000-message first download on 2 CPUs: when the app's start-up was slow, the
        bodies began while it was still drawing and delayed its first screen by 50-100 ms."""
        if self.serves_app:
            super()._wait_for_paint()  # (returns at once once painted)

    # requests (non-blocking) -------------------------------------------------
    def wake(self) -> None:
        """An intent was stored: with delete_on_server, a local delete is carried to the server."""
        self._wake.set()

    def watch_folder(self, folder: str, /) -> None:
        pass  # one server folder (INBOX), synced whatever is watched

    def _cut_sync(self) -> None:
        if self._early is not None:
            self._early.cut = True
        s = self._session
        if s is not None:
            s.shutdown()  # no QUIT: nothing of that session is deleted

    # the account ----------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        keep_days = getattr(self.account, "keep_days", None)
        return _AccountPolicy(getattr(self.account, "mode", "keep"), keep_days if keep_days is not None else None)

    def _new_session(self) -> Pop3Session:
        from tuimail.protocol.pop3 import Pop3Session
        return Pop3Session.from_account(self.account, self._secret)

    def ensure_folders(self, store: Store) -> int:
        """The account's local folders (INBOX and those `folders` names); INBOX's id."""
        ledger = Pop3Ledger(store)
        inbox = ledger.local_folder("INBOX", "inbox")
        for name in self.account.folders or ():
            if name.upper() != "INBOX" and store.folder_id(name) is None:
                ledger.local_folder(name, _role_of(name, self.account.roles))
        return inbox

    def _run(self) -> None:
        if not (self._offline or self._stop.is_set()):
            self._early = _EarlyLogin(self)
        try:
            super()._run()
        finally:
            early, self._early = self._early, None  # (the worker ended before its first sync)
            if early is not None:
                early.cut = True
                early.take()

    # one sync ----------------------------------------------------------------
    def _sync(self, store: Store, *, bodies: bool = True) -> FolderSummary:
        """One POP3 session under the account lock (the caller holds it): download, DELE, QUIT."""
        from tuimail.backends.pop3.download import download
        from tuimail.backends.pop3.ledger import StoreLedger
        inbox = self.ensure_folders(store)
        pop = Pop3Ledger(store)
        first = pop.empty()
        delete_on_server = bool(getattr(self.account, "delete_on_server", False))
        deleting = self.policy.mode == "delete" or self.policy.keep_days is not None or delete_on_server
        ledger = StoreLedger(pop, inbox, self.account.name, self._emit, delete_on_server=delete_on_server,
                             batch=not deleting, after_first=self._wait_for_paint,
                             after_headers=self._bodies_after_paint)
        if deleting:  # a DELE follows the commit: make each commit survive a power cut, not only a crash
            store.db.execute("PRAGMA synchronous=FULL")
        try:
            early, self._early = self._early, None
            session = early.take() if early is not None else None
            session = self._session = session if session is not None else self._new_session()
            if self._stop.is_set():
                raise NetworkError("stopped")
            # (in the app's sync process a helper shares the header rows' work only once the app
            # has drawn its first screen: download.py, fieldpool.py)
            # In the app's sync process nothing else runs Python that could leave cycles, and a
            # download makes ~30 short-lived containers a message and no cycle: the collector's
            # passes over them were ~2 % of a first download's CPU (5,000 messages), spent on the
            # CPU the server and the app's start share. (Not in `tuimail sync` or the app itself,
            # whose collections ui/collector.py schedules.)
            collecting = self.serves_app and gc.isenabled()
            if collecting:
                gc.disable()
            try:
                result = download(session, ledger, self.policy, bodies=bodies,
                                  headers_first=bool(getattr(self.account, "headers_first", False)),
                                  share=lambda: not self.serves_app or self._painted.is_set())
            finally:
                if collecting:
                    gc.enable()
        finally:
            self._session = None
            ledger.flush()
            if deleting:
                store.db.execute("PRAGMA synchronous=NORMAL")
            self._finish_threads(store, inbox)
        self.last = result
        store.set_folder_state(inbox, synced=True)
        self._index(store)
        summary = FolderSummary("INBOX", new=len(ledger.added), first=first, unseen_new=len(ledger.added))
        summary.vanished = result.gone
        summary.skipped = not (ledger.added or ledger.changed or result.deleted or result.gone or result.remapped)
        self._notes = [sanitize_line(n) for n in result.notices]
        if result.deleted:
            self._notes.append(f"{result.deleted} deleted on the server")
        self._notes.append(f"{result.bytes_in} bytes in, {result.bytes_out} out")
        return summary

    def _finish_threads(self, store: Store, fid: int) -> None:
        from tuimail.mail.thread import thread_order
        from tuimail.store.threads import THREADS_CLEAN
        try:
            for f in store.folders():
                if store.threads_state(f.id) != THREADS_CLEAN:
                    store.set_threads(f.id, thread_order(store.headers_for_threading(f.id)))
        except sqlite3.Error:
            pass  # derived data: the next sync tries again

    def _index(self, store: Store) -> None:
        """The search index catches up with the new rows (derived data: a failure waits for the
        next sync; store/search.py)."""
        from tuimail.store.search import index_headers
        try:
            index_headers(store)
        except sqlite3.Error:
            pass

    def sync_now(self, folder: str | None = None, /, *, bodies: bool = True) -> SyncSummary:
        """Download once in the calling thread (the CLI's `tuimail sync`). `folder`: INBOX or a
        local folder (the server has one mailbox: it is what is synced). bodies=False with
        headers_first: leave the bodies for when the messages are opened."""
        self._sync_now_folder(folder)
        t0 = time.monotonic()
        with Store(self.store_path) as store, AccountLock(paths.lock_path(self.account.name)):
            self.ensure_folders(store)
            if folder is not None and folder.upper() != "INBOX" and store.folder(folder, counts=False) is None:
                raise UsageError(f"no folder {sanitize_line(folder)!r} on {self.account.name}")
            fs = self._sync(store, bodies=bodies)
        summary = SyncSummary([fs], mode=f"pop3 {self.policy.mode}", notes=list(self._notes))
        summary.seconds = time.monotonic() - t0
        return summary

    # reading (blocking) -------------------------------------------------------
    def _retr(self, entry: LedgerEntry) -> bytes:
        from tuimail.backends.pop3.download import fetch_body
        if self._offline:
            raise NotCached("offline, and only the headers of this message are downloaded")
        if entry.uidl is None:
            raise NotCached("the server gives this message no UIDL: its body comes with the next sync")
        session = self._new_session()
        with session:
            raw = fetch_body(session, entry.uidl)
        if raw is None:
            raise NotCached("the message is no longer on the server, and only its headers were downloaded")
        return raw

    def _read(self, fn: Callable[[Pop3Reader], T]) -> T:
        from tuimail.backends.pop3.opener import Pop3Reader
        with self._fetch_lock:
            if self._fetch_store is None:
                self._fetch_store = Store(self.store_path)
            reader = Pop3Reader(self._fetch_store, self._retr, self.config.ui.prefer_html)
            with guard(self.store_path):
                return fn(reader)

    def open_message(self, folder: str, id: int, /, *, more: bool = False) -> MessageContent:
        return self._read(lambda r: r.open(folder, id, more))

    def open_attached(self, folder: str, id: int, section: str, /) -> MessageContent:
        return self._read(lambda r: r.open_attached(folder, id, section))

    def fetch_raw(self, folder: str, id: int, /) -> bytes:
        return self._read(lambda r: r.raw(folder, id))

    def fetch_part(self, folder: str, id: int, section: str, /) -> bytes:
        return self._read(lambda r: r.part(folder, id, section))

    def search(self, folder: str, query: str, /) -> list[int]:
        # (POP3 has no search: `tuimail search` and the app answer from the store's index, where
        # headers are indexed after each sync and a message's text once it was opened)
        raise Unsupported("a POP3 server cannot search; search the local store")

    def send(self, raw: bytes, /, *, sender: str, recipients: Sequence[str]) -> None:
        raise Unsupported("sending is not available yet")

    def append(self, folder: str, raw: bytes, flags: Collection[str] = (), /) -> None:
        raise Unsupported("a POP3 server has no folders to store a message in")

    # the worker (the loop around it: backends/base.py) ---------------------------------
    def _prepare(self, store: Store) -> None:
        self.ensure_folders(store)
        self._emit(FoldersChanged(self.account.name))

    def _round(self, store: Store, lock: AccountLock) -> float:
        self._take_requests()
        self._emit_state("syncing", folder="INBOX")
        fs = self._locked(lock, lambda: self._sync(store))
        self._login_blocked = None
        self._connected()
        self._emit(FoldersChanged(self.account.name))
        if fs.new and not fs.first:
            self._emit(NewMail(self.account.name, "INBOX", fs.new))
        self._emit_state("idle", folder="INBOX")
        return self.check_interval

    def _pause(self, store: Store, seconds: float) -> None:
        """Until the next check, a request, or a local delete that the server should have."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._requests or self._offline:
                return
            self._wake.wait(left)
            if self._wake.is_set():
                self._wake.clear()
                if self._requests or self._stop.is_set() or self._offline:
                    return
                if getattr(self.account, "delete_on_server", False):
                    try:
                        if Pop3Ledger(store).deleted_locally():
                            return
                    except sqlite3.Error:
                        pass


class _EarlyLogin:
    """The worker's first login, in a thread of its own from the worker's start: the greeting,
    CAPA and AUTH round trips (and the server's login process) and the import of the protocol
    module overlap the store's opening (a first run creates its schema) and the imports of the
    first sync, instead of following them. The sync takes the session, or raises its error (a
    refused password is not tried twice); the account lock is taken before anything is
    downloaded, as before."""

    def __init__(self, svc: Pop3Service) -> None:
        self.session: Pop3Session | None = None
        self.error: BaseException | None = None
        self.cut = False  # offline or stopping meanwhile (Pop3Service._cut_sync): not used
        self._svc = svc
        self.thread = threading.Thread(target=self._login, name=f"pop3-login-{svc.account.name}", daemon=True)
        self.thread.start()

    def _login(self) -> None:
        try:
            self.session = self._svc._session = self._svc._new_session()  # (stop() cuts it: _cut_sync)
            self.session.connect()
        except BaseException as exc:  # (raised by take, in the worker)
            self.error = exc

    def take(self) -> Pop3Session | None:
        """The logged-in session once the login is done; None if it was cut; its error raised."""
        self.thread.join()
        if self.cut or self.error is not None:
            if self.session is not None:
                self.session.abort()
            if self.error is not None and not self.cut:
                raise self.error
            return None
        return self.session


def _role_of(name: str, roles: dict[str, str]) -> str | None:
    for role, folder in roles.items():
        if folder == name:
            return role
    return role_by_name(name)
