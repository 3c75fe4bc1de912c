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

import logging
import os
import sqlite3
import threading
import time
import traceback
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from tuimail import paths
from tuimail.backends.lock import AccountLock, Busy
from tuimail.backends.pop3.ledger import GONE
from tuimail.backends.pop3.plan import Policy
from tuimail.backends.waker import Waker
from tuimail.config.load import Account, Config, resolve_oauth2_token, resolve_password
from tuimail.core.content import MessageContent
from tuimail.core.events import Event, EventSink, FoldersChanged, NewMail, SyncState
from tuimail.core.service import Capabilities
from tuimail.core.summary import FolderSummary, SyncSummary
from tuimail.errors import (AuthError, CommandFailed, ConfigError, MissingSecret, NetworkError, NotCached, TuimailError,
                            Unsupported, UsageError)
from tuimail.mail.sanitize import sanitize_line
from tuimail.store import Store
from tuimail.store.pop3ledger import LedgerEntry, Pop3Ledger
from tuimail.store.sqlite_errors import guard, store_error

if TYPE_CHECKING:  # (download is imported when a sync runs)
    from tuimail.backends.pop3.download import SyncResult

log = logging.getLogger("tuimail.pop3")
PAINT_HOLD = 2.0  # seconds a first download waits after its first screenful for the UI to draw it
ROLE_NAMES = {"archive": "archive", "trash": "trash", "junk": "junk", "spam": "junk", "sent": "sent",
              "drafts": "drafts"}


class _Secret:
    """The account's secret for a login: a password command runs once per process (again after a
    refused login), an OAuth2 token on every login, a typed password instead of the configured one."""

    def __init__(self, account: Account):
        self.account = account
        self.typed: str | None = None
        self._cache: str | None = None

    def __call__(self) -> str:
        if self.account.oauth2_token_command:
            return resolve_oauth2_token(self.account)
        if self.typed is not None:
            return self.typed
        if self._cache is None:
            self._cache = resolve_password(self.account)
        return self._cache

    def forget(self) -> None:
        self._cache = None


class _AccountPolicy(Policy):
    """The account's mode, and: a message the user deleted (downloaded_at GONE) is due at once."""

    def due(self, downloaded_at: float, now: float) -> bool:
        return downloaded_at == GONE or super().due(downloaded_at, now)


class Pop3Service:
    capabilities = Capabilities(server_flags=False, push=False, server_search=False, append=False, send=False,
                                server_folders=False)

    def __init__(self, config: Config, account: Account, on_event: EventSink | None = None,
                 *, offline: bool = False):
        self.config, self.account = config, account
        self.on_event = on_event or (lambda e: None)
        self._offline = offline
        self._secret = _Secret(account)
        self.store_path = paths.account_store_path(account.name)
        paths.ensure_private_dir(self.store_path.parent)
        self._stop = threading.Event()
        self._wake = Waker()
        self._user_acted = threading.Event()
        self._login_blocked: str | None = None
        self._requests = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = None  # the worker's Pop3Session while it syncs (stop() cuts it)
        self._fetch_lock = threading.Lock()
        self._fetch_store: Store | None = None
        self.state = SyncState(account.name, "offline" if offline else "connecting")
        self.last: SyncResult | None = None  # the last sync's (tests, the bench)
        self._hold_for_paint = False
        self._painted = threading.Event()
        self._notes: list[str] = []

    # lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"pop3-{self.account.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._user_acted.set()
        s = self._session
        if s is not None:
            s.shutdown()  # no QUIT: nothing of that session is deleted
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._wake.close()
        with self._fetch_lock:
            if self._fetch_store is not None:
                self._fetch_store.close()
                self._fetch_store = None

    def hold_for_first_paint(self) -> None:
        """Started before the UI (a first run): after the first screenful of rows, wait (at most
        PAINT_HOLD seconds) for ui_painted() before downloading more, so that the download does
        not compete with the UI's start-up and first paint for a CPU."""
        self._hold_for_paint = True

    def ui_painted(self) -> None:
        """The UI has drawn the first rows (thread-safe)."""
        self._painted.set()

    def _wait_for_paint(self) -> None:
        if not self._hold_for_paint:
            return
        self._hold_for_paint = False  # the first report of the first sync only
        deadline = time.monotonic() + PAINT_HOLD
        while not self._painted.is_set() and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._painted.wait(min(left, 0.1))

    # requests (non-blocking) -------------------------------------------------
    def wake(self) -> None:
        """An intent was stored: with delete_on_server, a local delete is carried to the server."""
        self._wake.set()

    def request_sync(self, folder: str | None = None, /) -> None:
        self._requests.set()
        if folder is None:
            self._user_acted.set()
        self._wake.set()

    def watch_folder(self, folder: str, /) -> None:
        pass  # one server folder (INBOX), synced whatever is watched

    def set_offline(self, offline: bool, /) -> None:
        self._offline = offline
        self._user_acted.set()
        self._wake.set()
        if offline:
            s = self._session
            if s is not None:
                s.shutdown()
        self._emit_state("offline" if offline else "connecting")

    @property
    def offline(self) -> bool:
        return self._offline

    def set_password(self, password: str, /) -> None:
        self._secret.typed = password
        self._user_acted.set()
        self._wake.set()

    @property
    def login_blocked(self) -> str | None:
        return self._login_blocked

    # the account ----------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        keep_days = getattr(self.account, "keep_days", None)
        return _AccountPolicy(getattr(self.account, "mode", "keep"), keep_days if keep_days is not None else None)

    def _new_session(self):
        from tuimail.protocol.pop3 import Pop3Session
        return Pop3Session.from_account(self.account, self._secret)

    def ensure_folders(self, store: Store) -> int:
        """The account's local folders (INBOX and those `folders` names); INBOX's id."""
        ledger = Pop3Ledger(store)
        inbox = ledger.local_folder("INBOX", "inbox")
        for name in self.account.folders or ():
            if name.upper() != "INBOX" and store.folder_id(name) is None:
                ledger.local_folder(name, self.account.roles.get(name) or _role_of(name, self.account.roles))
        return inbox

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
                             batch=not deleting, after_first=self._wait_for_paint)
        if deleting:  # a DELE follows the commit: make each commit survive a power cut, not only a crash
            store.db.execute("PRAGMA synchronous=FULL")
        session = self._session = self._new_session()
        try:
            if self._stop.is_set():
                raise NetworkError("stopped")
            result = download(session, ledger, self.policy, bodies=bodies,
                              headers_first=bool(getattr(self.account, "headers_first", False)))
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
        if self._offline:
            raise UsageError("sync needs the network; drop --offline")
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

    def _read(self, fn):
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

    # the worker ----------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if isinstance(event, SyncState):
            self.state = event
        try:
            self.on_event(event)
        except Exception:
            log.exception("event listener failed")

    def _emit_state(self, state: str, **kw) -> None:
        self._emit(SyncState(self.account.name, state, **kw))

    def _run(self) -> None:
        try:
            store = Store(self.store_path)
            self.ensure_folders(store)
        except TuimailError as exc:
            self._emit_state("error", error=str(exc))
            return
        except sqlite3.Error as exc:
            self._emit_state("error", error=str(store_error(exc, self.store_path)))
            return
        self._emit(FoldersChanged(self.account.name))
        lock = AccountLock(paths.lock_path(self.account.name))
        interval = getattr(self.account, "check_interval", 60.0) or 60.0
        backoff = 1.0
        try:
            while not self._stop.is_set():
                if self._offline:
                    self._wake.clear()
                    self._wake.wait(3600)
                    continue
                wait = interval
                try:
                    self._requests.clear()
                    self._user_acted.clear()
                    self._emit_state("syncing", folder="INBOX")
                    lock.acquire(timeout=5)
                    try:
                        fs = self._sync(store)
                    finally:
                        lock.release()
                    self._login_blocked = None
                    backoff = 1.0
                    self._emit(FoldersChanged(self.account.name))
                    if fs.new and not fs.first:
                        self._emit(NewMail(self.account.name, "INBOX", fs.new))
                    self._emit_state("idle", folder="INBOX")
                except (AuthError, ConfigError) as exc:
                    if self._stop.is_set() or self._offline:
                        continue
                    self._login_blocked = str(exc)
                    self._secret.forget()
                    self._emit_state("error", error=str(exc),
                                     needs="password" if isinstance(exc, MissingSecret) else "login")
                    while not self._stop.is_set() and not self._user_acted.is_set():
                        self._user_acted.wait(3600)
                    continue
                except (NetworkError, CommandFailed) as exc:  # Pop3Busy ([IN-USE], [SYS/TEMP]) included
                    if self._stop.is_set() or self._offline:
                        continue
                    self._emit_state("offline", error=str(exc))
                    wait, backoff = backoff, min(backoff * 2, 60.0)
                except Busy as exc:
                    self._emit_state("idle", error=str(exc))
                    wait = 30.0
                except TuimailError as exc:
                    self._emit_state("error", error=str(exc))
                    wait = max(backoff, 30.0)
                except sqlite3.Error as exc:
                    self._emit_state("error", error=str(store_error(exc, self.store_path)))
                    wait = max(backoff, 60.0)
                except Exception as exc:  # never a traceback on screen: log it, one line
                    self._log_crash()
                    self._emit_state("error", error=f"internal error: {exc.__class__.__name__}: {exc}"[:300])
                    wait = max(backoff, 30.0)
                self._wait(store, wait)
        finally:
            store.close()

    def _wait(self, store: Store, seconds: float) -> None:
        """Until the next check, a request, or a local delete that the server should have."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._requests.is_set() or self._offline:
                return
            self._wake.wait(left)
            if self._wake.is_set():
                self._wake.clear()
                if self._requests.is_set() or self._stop.is_set() or self._offline:
                    return
                if getattr(self.account, "delete_on_server", False):
                    try:
                        if Pop3Ledger(store).deleted_locally():
                            return
                    except sqlite3.Error:
                        pass

    def _log_crash(self) -> None:
        try:
            d = paths.ensure_private_dir(paths.state_dir())
            fd = os.open(d / "tuimail.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            with open(fd, "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + traceback.format_exc() + "\n")
        except OSError:
            pass


def _role_of(name: str, roles: dict[str, str]) -> str | None:
    for role, folder in roles.items():
        if folder == name:
            return role
    return ROLE_NAMES.get(name.lower())
