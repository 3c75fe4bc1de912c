"""What every backend's AccountService (core/service.py) shares: the worker thread, its account
lock and backoff, the refused login that waits for the user, offline toggling, the events, and
(for kinds that fetch on demand over a connection of their own) the fetch lane.

    class MyService(ServiceBase):               # the worker: _round() is one connection's work
        thread_name = "my"
        def _round(self, store) -> float | None: ...

    class MyService(FetchLaneService[Conn, Reader]):   # + open_message & co over a second connection
        def _connect(self) -> Conn: ...
        def _make_reader(self, store, bodies, conn) -> Reader: ...

The hooks are methods with types: mypy names a missing or mistyped one. Backends own their
protocol (the sync, the engine, the reader); this module owns the loop around it, and the one
rule every engine's sync_all follows for the search index (EngineBase).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from tuimail import paths
from tuimail.backends.lock import AccountLock, Busy
from tuimail.backends.waker import Waker
from tuimail.config.load import Account, Config, resolve_oauth2_token, resolve_password
from tuimail.core.events import Event, EventSink, NewMail, SyncState
from tuimail.core.summary import FolderSummary, SyncSummary
from tuimail.errors import (AuthError, CommandFailed, ConfigError, MissingSecret, NetworkError, NotCached,
                            TuimailError, UsageError)
from tuimail.store import BodyCache, Store
from tuimail.store.sqlite_errors import guard, store_error

log = logging.getLogger("tuimail.sync")

PAINT_HOLD = 2.0  # seconds a first run's sync waits for the UI to draw its first window
LOGIN_WAIT = 20.0  # at most this long the fetch lane waits for the sync thread's login outcome
INDEX_SHARE = 0.1  # of a headless sync's time, at most, for the search index (index_after_sync)
INDEX_MIN_SECONDS = 0.5
# after a first fill a headless sync indexes at once only this many rows (one batch, a few ms)
FIRST_FILL_INDEX_ROWS = 1000
# New rows threaded with the threads they join, up to this many rows (or ids) in all; past it the
# whole folder is threaded again (a first fill, a big catch-up), which then costs about the same.
INCREMENTAL_THREADING = 500

T = TypeVar("T")


class SecretSource:
    """The account's secret for a login. Password commands run once per process (again after a
    refused login); OAuth2 tokens are fetched on every login; a password typed in the app
    (`typed`) is used instead of the configured one and kept in memory only."""

    def __init__(self, account: Account):
        self.account = account
        self.typed: str | None = None
        self._cache: str | None = None

    def __call__(self) -> str:
        account = self.account
        if self.typed is not None and not account.oauth2_token_command:
            return self.typed
        if account.oauth2_token_command:
            return resolve_oauth2_token(account)
        if self._cache is None:
            self._cache = resolve_password(account)
        return self._cache

    def forget(self) -> None:
        """After a refused login: run the password command again next time."""
        self._cache = None


def log_crash() -> None:
    """The current exception's traceback, appended to the state dir's tuimail.log (0600 whatever
    the umask: a traceback may quote server text; never through a symlink). ui/crash.py has the
    same for the app."""
    try:
        d = paths.ensure_private_dir(paths.state_dir())
        fd = os.open(d / "tuimail.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "a", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + traceback.format_exc() + "\n")
    except OSError:
        pass


def pending_count(store: Store) -> int:
    """The pending count for a state event (0 when the store cannot say: it is what failed)."""
    try:
        return store.pending_count()
    except sqlite3.Error:
        return 0


def inbox_case(folder: str | None) -> str | None:
    """RFC 3501: INBOX is case-insensitive; the store names it "INBOX"."""
    return "INBOX" if folder is not None and folder.upper() == "INBOX" else folder


class EngineBase:
    """What every backend's sync engine shares (imap/engine.py, jmap/engine.py): what it works on
    and reports to, the search index kept up after a sync by one rule (index_after_sync), the thread
    order, and the summary's notes."""

    def __init__(self, account: Any, store: Store, bodies: BodyCache | None = None,
                 emit: Callable[[Event], None] | None = None) -> None:
        self.account = account
        self.store = store
        self.bodies = bodies
        self.emit: Callable[[Event], None] = emit or (lambda e: None)  # (must not block)
        # Called once, after the first screen's window is committed (the service: wait until
        # the UI has drawn it before parsing the next windows on the same GIL).
        self.after_first_window: Callable[[], None] | None = None
        self.notes: list[str] = []  # said once in the next SyncSummary (finish)
        self.index_search_enabled = True
        # sync_all's share of the indexing (None: a headless sync, `tuimail sync`); the app's
        # worker does the rest in its gaps (before IDLE, between polls)
        self.index_seconds: float | None = None

    def index_search(self, seconds: float | None = None) -> bool:
        """The search index catches up with the rows (store/search.py: derived data, in batches
        that let the user's intents in between) for about `seconds` (None: `index_seconds`, or
        all). Whether rows are left. Off with index_search_enabled=False."""
        if not self.index_search_enabled:
            return False
        from tuimail.store.search import index_headers, unindexed
        seconds = self.index_seconds if seconds is None else seconds
        index_headers(self.store, seconds=seconds)
        return seconds is not None and unindexed(self.store) > 0

    def index_after_sync(self, summary: SyncSummary, started: float) -> None:
        """sync_all ends with this. The app's sync indexes for its step (index_seconds). A headless
        one spends at most a tenth of its own time (since `started`, a monotonic time) on the
        index, the rest waiting for the next sync (search scans what is not indexed yet): indexing
        all of a 100k first fill took longer than the fill itself. So a headless first fill
        (issue #13: the index must not slow it) indexes nothing unless what is left is one small
        batch: the app, when idle, or the next sync indexes it."""
        if self.index_seconds is not None:
            self.index_search(self.index_seconds)
        elif not self._defer_index(summary):
            self.index_search(max(INDEX_MIN_SECONDS, INDEX_SHARE * (time.monotonic() - started)))

    def _defer_index(self, summary: SyncSummary) -> bool:
        if not self.index_search_enabled or not any(f.first and f.new for f in summary.folders):
            return False
        from tuimail.store.search import unindexed
        return unindexed(self.store) > FIRST_FILL_INDEX_ROWS

    def update_threads(self, fid: int) -> None:
        """Thread what changed: new rows with the threads they join, else the whole folder (after a
        removal, or when the new rows or their threads are many: a first fill)."""
        from tuimail.mail.thread import thread_order
        from tuimail.store.threads import THREADS_CLEAN, THREADS_NEW
        state = self.store.threads_state(fid)
        if state == THREADS_CLEAN:
            return
        if state == THREADS_NEW:
            part = self.store.thread_closure(fid, self.store.unthreaded_ids(fid), INCREMENTAL_THREADING)
            if part is not None:
                self.store.set_threads(fid, thread_order(self.store.headers_for_threading(fid, part)), part)
                return
        self.store.set_threads(fid, thread_order(self.store.headers_for_threading(fid)))

    def finish(self, summary: SyncSummary) -> None:
        """What the summary line says beyond the counts: notes and the failed actions."""
        summary.notes, self.notes = summary.notes + self.notes, []
        summary.failed = self.store.failed_summary()


class ServiceBase(ABC):
    """The state and the requests every AccountService has, and the worker loop: connect (a
    backend's `_round`), and on failure the one reaction each kind of failure gets:

    - a refused login or a missing password: no retry (servers lock accounts after a few
      failures) until the user acts (`$`, a typed password, going online);
    - the network: "offline", again after 1, 2, 4 ... 60 s;
    - another syncer holds the account lock: again in 30 s;
    - the store (sqlite3) or a bug: one line in the status bar, again after a longer backoff.
    """

    thread_name: ClassVar[str] = "sync"  # the worker thread is named "<thread_name>-<account>"
    # errors that mean "the server is unreachable or went away" (to retry with backoff)
    network_errors: ClassVar[tuple[type[Exception], ...]] = (NetworkError, CommandFailed)
    # the state events name the journal's pending count (False: the kind keeps no journal)
    reports_pending: ClassVar[bool] = True

    def __init__(self, config: Config, account: Account, on_event: EventSink | None = None,
                 *, offline: bool = False):
        self.config = config
        self.account = account
        self.on_event: EventSink = on_event or (lambda e: None)
        self._offline = offline
        self._secret = SecretSource(account)
        # Set by a user action (`$`, a typed password, going online): a refused login or a
        # missing password waits for it instead of retrying. While it is not set after such a
        # failure, no connection logs in.
        self._user_acted = threading.Event()
        self._login_blocked: str | None = None  # the error that stopped the logins
        # Set once the sync thread's login attempt has an outcome: the fetch lane waits for it
        # rather than trying a (perhaps refused) login of its own at the same time.
        self._login_done = threading.Event()
        self.store_path = paths.account_store_path(account.name)
        paths.ensure_private_dir(self.store_path.parent)
        self._stop = threading.Event()
        self._wake = Waker()  # an Event that a select() (IMAP IDLE) can wait on with a socket
        self._requests: set[str | None] = set()  # folders to sync soon (None: all)
        self._req_lock = threading.Lock()
        self._watch = "INBOX"
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None  # the sync thread (kept after stop(): see there)
        self._fetch_lock = threading.Lock()  # the on-demand reads: one at a time
        self._fetch_store: Store | None = None  # their store connection, guarded by _fetch_lock
        self.state = SyncState(account.name, "offline" if offline else "connecting")
        self._hold_for_paint = False
        self._painted = threading.Event()
        self._backoff = 1.0

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = self._worker = threading.Thread(
                target=self._run, name=f"{self.thread_name}-{self.account.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._user_acted.set()
        self._cut_sync()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if self._worker is None or not self._worker.is_alive():  # (else it may still select on it)
            self._wake.close()
        with self._fetch_lock:
            self._close_fetch_lane()

    def _started(self) -> bool:
        """The sync runs (its thread here; a child process's link in backends/child.py)."""
        return self._thread is not None

    def hold_for_first_paint(self) -> None:
        """Started before the UI (a first run): after the first window, wait (at most
        PAINT_HOLD seconds) for ui_painted() before fetching more, so that parsing the next
        windows does not slow the UI's start-up and first paint (one GIL)."""
        self._hold_for_paint = True

    def ui_painted(self) -> None:
        """The UI has drawn the first rows (thread-safe)."""
        self._painted.set()

    def _wait_for_paint(self) -> None:
        deadline = time.monotonic() + PAINT_HOLD
        while not self._painted.is_set() and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._painted.wait(min(left, 0.1))

    # requests (non-blocking) -----------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def request_sync(self, folder: str | None = None, /) -> None:
        """folder=None: the user asked for a full sync (`$`); that also retries a refused login."""
        with self._req_lock:
            self._requests.add(folder)
        if folder is None:
            self._user_acted.set()
        self._wake.set()

    def _take_requests(self) -> set[str | None]:
        with self._req_lock:
            requests, self._requests = self._requests, set()
        return requests

    def watch_folder(self, folder: str, /) -> None:
        self._watch = folder
        self.request_sync(folder)

    def set_password(self, password: str, /) -> None:
        """A password the user typed (kept in memory only): log in with it now."""
        self._secret.typed = password
        self._user_acted.set()
        self._wake.set()

    @property
    def login_blocked(self) -> str | None:
        """The refused login (or missing password) the service waits on the user for, or None."""
        return self._login_blocked

    def set_offline(self, offline: bool, /) -> None:
        self._go_offline(offline)
        self._emit_state("offline" if offline else "connecting")

    def _go_offline(self, offline: bool) -> None:
        """set_offline without the state event (a sync process gets this; its parent emits)."""
        self._offline = offline
        self._user_acted.set()
        self._wake.set()
        if offline:
            self._cut_sync()
            with self._fetch_lock:
                self._drop_fetch_connection()

    @property
    def offline(self) -> bool:
        return self._offline

    # hooks -----------------------------------------------------------------------------------
    def _cut_sync(self) -> None:
        """Stop or offline: cut the sync thread's connection at once (its work ends with an error
        the loop ignores then). Called from any thread."""
        return None  # (default: nothing)

    def _drop_fetch_connection(self) -> None:
        """Offline: drop the fetch lane's connection (the caller holds _fetch_lock)."""
        return None  # (default: nothing)

    def _close_fetch_lane(self) -> None:
        """stop(): close what the on-demand reads opened (the caller holds _fetch_lock); a later
        read opens them again."""
        if self._fetch_store is not None:
            self._fetch_store.close()
            self._fetch_store = None

    def _prepare(self, store: Store) -> None:
        """The worker thread starts: open what it keeps for its whole life besides the store."""
        return None  # (default: nothing)

    def _finish(self) -> None:
        """The worker thread ends: close what _prepare opened."""
        return None  # (default: nothing)

    @abstractmethod
    def _round(self, store: Store, lock: AccountLock) -> float | None:
        """One connection's work on the worker thread: log in, sync, stay online until stopped or
        offline (or until the next check is due). Returns the seconds to wait before the next
        round (None: at once). Raising is the loop's business: see the class doc. Call
        `_connected()` once the account is synced, so that a later failure backs off from 1 s."""

    def _pause(self, store: Store, seconds: float) -> None:
        """Between two rounds: until `seconds` passed or the user acted (wake())."""
        self._wake.wait(seconds)

    # the worker ------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if isinstance(event, SyncState):
            self.state = event
        try:
            self.on_event(event)
        except Exception:  # a listener's bug must not kill the sync thread
            log.exception("event listener failed")

    def _emit_state(self, state: str, **kw: Any) -> None:
        self._emit(SyncState(self.account.name, state, **kw))

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)

    def _log_crash(self) -> None:
        log_crash()

    def _login(self, connect: Callable[[], T]) -> T:
        """`connect()` for the sync thread: a refusal is what the fetch lane must not try again;
        either outcome lets a waiting fetch lane go on."""
        self._login_done.clear()
        try:
            conn = connect()
            self._login_blocked = None
            return conn
        except (AuthError, ConfigError) as exc:
            self._login_blocked = str(exc)
            raise
        finally:
            self._login_done.set()

    def _connected(self) -> None:
        """The round got through: the next failure backs off from 1 s again."""
        self._backoff = 1.0

    def _locked(self, lock: AccountLock, fn: Callable[[], T]) -> T:
        """fn() under the account lock (one syncer per account: the TUI's or a cron `tuimail sync`)."""
        lock.acquire(timeout=5)
        try:
            return fn()
        finally:
            lock.release()

    @property
    def check_interval(self) -> float:
        """accounts.NAME.check_interval: seconds between two looks at what push does not tell."""
        return float(getattr(self.account, "check_interval", 60.0) or 60.0)

    def _report_new(self, summaries: Iterable[FolderSummary]) -> None:
        """NewMail for each folder that got unseen messages (a first fill is not new mail)."""
        for f in summaries:
            if f.unseen_new and not f.first and not f.reset:
                self._emit(NewMail(self.account.name, f.name, f.unseen_new))

    def _sync_now_folder(self, folder: str | None) -> str | None:
        """sync_now's checks: the network is needed; INBOX is named so in any case."""
        if self._offline:
            raise UsageError("sync needs the network; drop --offline")
        return inbox_case(folder)

    def _pending_kw(self, store: Store) -> dict[str, int]:
        return {"pending": pending_count(store)} if self.reports_pending else {}

    def _wait_for_user(self) -> None:
        while not self._stop.is_set() and not self._user_acted.is_set():
            self._user_acted.wait(3600)

    def _run(self) -> None:
        store: Store | None = None
        try:
            store = Store(self.store_path)
            self._prepare(store)
        except (TuimailError, sqlite3.Error) as exc:  # a damaged store, a full disk...: one line
            err = exc if isinstance(exc, TuimailError) else store_error(exc, self.store_path)
            self._emit_state("error", error=str(err))
            if store is not None:
                store.close()
            self._finish()
            return
        lock = AccountLock(paths.lock_path(self.account.name))
        self._backoff = 1.0
        try:
            while not self._stop.is_set():
                if self._offline:
                    self._wake.clear()
                    self._sleep(3600)
                    continue
                wait: float | None
                try:
                    self._user_acted.clear()
                    wait = self._round(store, lock)
                except (AuthError, ConfigError) as exc:
                    # A refused login or no usable password: trying again cannot help and
                    # servers lock accounts after a few failures. Wait for the user.
                    if self._stop.is_set() or self._offline:
                        continue
                    self._login_blocked = str(exc)
                    self._secret.forget()
                    self._emit_state("error", error=str(exc), **self._pending_kw(store),
                                     needs="password" if isinstance(exc, MissingSecret) else "login")
                    self._wait_for_user()
                    self._backoff = 1.0
                    continue
                except self.network_errors as exc:
                    if self._stop.is_set() or self._offline:
                        continue
                    self._emit_state("offline", error=str(exc), **self._pending_kw(store))
                    wait, self._backoff = self._backoff, min(self._backoff * 2, 60.0)
                    self._pause(store, wait)
                    self._wake.clear()
                    continue
                except Busy as exc:
                    self._emit_state("idle", error=str(exc), **self._pending_kw(store))
                    wait = 30.0
                except TuimailError as exc:
                    self._emit_state("error", error=str(exc), **self._pending_kw(store))
                    wait = max(self._backoff, 30.0)
                except sqlite3.Error as exc:  # the store: one line naming the file and the cure
                    self._emit_state("error", error=str(store_error(exc, self.store_path)))
                    wait = max(self._backoff, 60.0)
                    self._backoff = min(self._backoff * 2, 300.0)
                except Exception as exc:  # never a traceback on screen: log it, report one line
                    self._log_crash()
                    self._emit_state("error", error=f"internal error: {exc.__class__.__name__}: {exc}"[:300])
                    wait = max(self._backoff, 30.0)
                    self._backoff = min(self._backoff * 2, 300.0)
                if wait is not None:
                    self._pause(store, wait)
        finally:
            store.close()
            self._finish()


class Connection(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)
R = TypeVar("R")


class FetchLaneService(ServiceBase, Generic[C, R]):
    """A ServiceBase whose on-demand reads (opening a message, an attachment) have a connection
    of their own, so that they never wait behind a long header sync. The lane logs in only after
    the sync thread's login had an outcome, never after a refused one, and retries once, quietly,
    when a connection kept from an earlier read died meanwhile."""

    # errors of `_connect()` that mean "unreachable" (the cache may still have the message)
    unreachable_errors: ClassVar[tuple[type[Exception], ...]] = (NetworkError,)

    def __init__(self, config: Config, account: Account, on_event: EventSink | None = None,
                 *, offline: bool = False):
        super().__init__(config, account, on_event, offline=offline)
        self.cache_path = paths.account_cache_path(account.name)
        paths.ensure_private_dir(self.cache_path.parent)
        self._fetch_conn: C | None = None  # guarded by _fetch_lock
        self._fetch_bodies: BodyCache | None = None
        self._bodies: BodyCache | None = None  # the worker's body cache (_prepare to _finish)
        self._no_connection: str | None = None  # why the fetch lane has no connection (while online)

    def _prepare(self, store: Store) -> None:
        self._bodies = BodyCache(self.cache_path)

    def _finish(self) -> None:
        if self._bodies is not None:
            self._bodies.close()
            self._bodies = None

    @abstractmethod
    def _connect(self) -> C:
        """A new connection, logged in (AuthError/ConfigError: refused; unreachable_errors)."""

    @abstractmethod
    def _make_reader(self, store: Store, bodies: BodyCache, conn: C | None) -> R:
        """The backend's reader over the store, the body cache and the connection (None: the
        cache alone)."""

    def _drop(self, conn: C) -> None:
        """Cut a connection that failed or is no longer wanted (default: close it)."""
        conn.close()

    def _drop_fetch_connection(self) -> None:
        if self._fetch_conn is not None:
            self._drop(self._fetch_conn)
            self._fetch_conn = None

    def _close_fetch_lane(self) -> None:
        if self._fetch_conn is not None:
            self._fetch_conn.close()
            self._fetch_conn = None
        super()._close_fetch_lane()
        if self._fetch_bodies is not None:
            self._fetch_bodies.close()
            self._fetch_bodies = None

    def _reader(self) -> R:
        if self._fetch_store is None:
            self._fetch_store = Store(self.store_path)
        if self._fetch_bodies is None:
            self._fetch_bodies = BodyCache(self.cache_path)
        if self._fetch_conn is None and not self._offline and self._started():
            self._login_done.wait(LOGIN_WAIT)
        unreachable = None
        if self._fetch_conn is None and not self._offline and self._login_blocked is None:
            try:
                self._fetch_conn = self._connect()
            except (AuthError, ConfigError) as exc:  # never log in again before the user acts
                self._login_blocked = str(exc)
                self._fetch_conn = None
            except self.unreachable_errors as exc:  # the cache may still have it
                self._fetch_conn = None
                unreachable = f"the server is unreachable: {exc}"
        self._no_connection = None
        if self._fetch_conn is None and not self._offline:
            self._no_connection = unreachable or self._login_blocked
        return self._make_reader(self._fetch_store, self._fetch_bodies, self._fetch_conn)

    def _fetch(self, fn: Callable[[R], T]) -> T:
        """fn(reader) on the fetch lane (blocking: a worker thread or the CLI, never the UI's)."""
        with self._fetch_lock:
            reused = self._fetch_conn is not None
            for attempt in (1, 2):
                reader = self._reader()
                try:
                    with guard(self.store_path):  # sqlite3 errors: one line naming the store
                        return fn(reader)
                except NotCached:
                    if self._no_connection is None:
                        raise
                    raise NotCached(f"not cached, and {self._no_connection}") from None
                except NetworkError:
                    self._drop_fetch_connection()
                    # A connection kept from an earlier fetch may have died meanwhile (the server
                    # restarted: its "* BYE shutting down" waits in the socket): once, quietly,
                    # on a new connection. Fetches are read-only, a retry is safe.
                    if not (reused and attempt == 1 and not self._offline):
                        raise
            raise AssertionError("unreachable")
