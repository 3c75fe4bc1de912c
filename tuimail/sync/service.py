"""SyncService: the one object the UI (and the CLI) talk to for everything that needs the network.

It owns the worker threads and their IMAP connections (imapclient is not thread-safe, so one
connection per thread): the sync loop (journal replay, resync, new headers, then IDLE on the
watched folder) and an on-demand fetcher (opening a message never waits behind a header sync).

Reads come from the Store, never from here. Writes are intents on the Store (Store.set_flags,
Store.move, Store.expunge) followed by `wake()`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable

from .. import paths
from ..config import Account, Config, resolve_oauth2_token, resolve_password
from ..errors import CommandFailed, NetworkError, TuimailError
from ..store import BodyCache, Store
from .events import Event, RowsChanged, SyncState
from ..trace import trace
from .lock import AccountLock, Busy

# The network stack (imapclient, ssl, the engine, the MIME/HTML reader) is imported by the worker
# threads when they first need it, not at import: the app paints its first screen before that.

PAINT_HOLD = 2.0  # seconds a first run's sync waits for the UI to draw its first window
POLL_SECONDS = 300  # other folders' STATUS while idling on one
IDLE_SECONDS = 25 * 60  # re-issue IDLE before the 29-minute server timeout
log = logging.getLogger("tuimail.sync")


def secret_getter(account: Account) -> Callable[[], str]:
    """Password commands run once per process; OAuth2 tokens are fetched on every login."""
    cache: list[str] = []

    def get() -> str:
        if account.oauth2_token_command:
            return resolve_oauth2_token(account)
        if not cache:
            cache.append(resolve_password(account))
        return cache[0]

    return get


def open_connection(account: Account, secret: Callable[[], str] | None = None, **kw):
    from ..protocol.imap import ImapConnection
    conn = ImapConnection(account, secret or secret_getter(account), **kw)
    conn.connect()
    return conn


class SyncService:
    def __init__(self, config: Config, account: Account, on_event: Callable[[Event], None] | None = None,
                 *, offline: bool = False):
        self.config = config
        self.account = account
        self.on_event = on_event or (lambda e: None)
        self._offline = offline
        self._secret = secret_getter(account)
        self.store_path = paths.account_store_path(account.name)
        self.cache_path = paths.account_cache_path(account.name)
        paths.ensure_private_dir(self.store_path.parent)
        paths.ensure_private_dir(self.cache_path.parent)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._requests: set[str | None] = set()
        self._req_lock = threading.Lock()
        self._watch = "INBOX"
        self._thread: threading.Thread | None = None
        self._sync_conn = None  # ImapConnection, owned by the worker thread
        self._fetch_lock = threading.Lock()
        self._fetch_conn = None  # ImapConnection for on-demand fetches, guarded by _fetch_lock
        self._fetch_store: Store | None = None
        self._fetch_bodies: BodyCache | None = None
        self.state = SyncState(account.name, "offline" if offline else "connecting")
        self._hold_for_paint = False
        self._painted = threading.Event()

    # lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sync-{self.account.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        conn = self._sync_conn
        if conn is not None:
            conn.shutdown()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._fetch_lock:
            if self._fetch_conn is not None:
                self._fetch_conn.close()
                self._fetch_conn = None

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

    # requests (non-blocking) -------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def request_sync(self, folder: str | None = None) -> None:
        with self._req_lock:
            self._requests.add(folder)
        self._wake.set()

    def watch_folder(self, folder: str) -> None:
        self._watch = folder
        self.request_sync(folder)

    def set_offline(self, offline: bool) -> None:
        self._offline = offline
        self._wake.set()
        if offline:
            conn = self._sync_conn
            if conn is not None:
                conn.shutdown()
            with self._fetch_lock:
                if self._fetch_conn is not None:
                    self._fetch_conn.shutdown()
                    self._fetch_conn = None
        self._emit_state("offline" if offline else "connecting")

    @property
    def offline(self) -> bool:
        return self._offline

    # on-demand fetches (blocking: call from a worker thread, never the UI thread) ------
    def _reader(self):
        from .reader import Reader
        if self._fetch_store is None:
            self._fetch_store = Store(self.store_path)
            self._fetch_bodies = BodyCache(self.cache_path)
        if self._fetch_conn is None and not self._offline:
            try:
                self._fetch_conn = open_connection(self.account, self._secret)
            except NetworkError:
                self._fetch_conn = None
        return Reader(self._fetch_store, self._fetch_bodies, self._fetch_conn, self.config.ui.prefer_html)

    def _fetch(self, fn):
        with self._fetch_lock:
            reader = self._reader()
            try:
                return fn(reader)
            except NetworkError:
                if self._fetch_conn is not None:
                    self._fetch_conn.shutdown()
                    self._fetch_conn = None
                raise

    def open_message(self, folder: str, uid: int, *, more: bool = False):
        return self._fetch(lambda r: r.open(folder, uid, more))

    def open_attached(self, folder: str, uid: int, section: str):
        """The message attached at `section` of message `uid`, as a MessageContent of its own."""
        return self._fetch(lambda r: r.open_attached(folder, uid, section))

    def fetch_raw(self, folder: str, uid: int) -> bytes:
        return self._fetch(lambda r: r.raw(folder, uid))

    def fetch_part(self, folder: str, uid: int, section: str) -> bytes:
        return self._fetch(lambda r: r.part(folder, uid, section))

    # the worker ----------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if isinstance(event, SyncState):
            self.state = event
        try:
            self.on_event(event)
        except Exception:  # a listener's bug must not kill the sync thread
            log.exception("event listener failed")

    def _emit_state(self, state: str, **kw) -> None:
        self._emit(SyncState(self.account.name, state, **kw))

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)

    def _run(self) -> None:
        from .engine import Engine
        store = Store(self.store_path)
        bodies = BodyCache(self.cache_path)
        lock = AccountLock(paths.lock_path(self.account.name))
        backoff = 1.0
        try:
            while not self._stop.is_set():
                if self._offline:
                    self._wake.clear()
                    self._sleep(3600)
                    continue
                try:
                    self._emit_state("connecting")
                    trace("connect")
                    conn = self._sync_conn = open_connection(self.account, self._secret)
                    trace("logged in")
                    engine = Engine(self.account, store, conn, bodies, self._emit)
                    if self._hold_for_paint:
                        self._hold_for_paint = False  # the first connection only
                        engine.after_first_window = self._wait_for_paint
                    engine.negotiate()
                    with self._req_lock:
                        self._requests.clear()
                    self._locked(lock, lambda: engine.sync_all(first=self._watch))
                    backoff = 1.0
                    self._online_loop(engine, store, lock)
                except (NetworkError, CommandFailed) as exc:
                    if self._stop.is_set() or self._offline:
                        continue
                    self._emit_state("offline", error=str(exc), pending=store.pending_count())
                    self._sleep(backoff)
                    self._wake.clear()
                    backoff = min(backoff * 2, 60.0)
                except Busy as exc:
                    self._emit_state("idle", error=str(exc), pending=store.pending_count())
                    self._sleep(30)
                except TuimailError as exc:
                    self._emit_state("error", error=str(exc), pending=store.pending_count())
                    self._sleep(max(backoff, 30))
                except Exception as exc:  # never a traceback on screen: log it, report one line
                    self._log_crash()
                    self._emit_state("error", error=f"internal error: {exc.__class__.__name__}: {exc}"[:300])
                    self._sleep(max(backoff, 30))
                    backoff = min(backoff * 2, 300.0)
                finally:
                    conn, self._sync_conn = self._sync_conn, None
                    if conn is not None:
                        if self._stop.is_set() or self._offline:
                            conn.shutdown()
                        conn.close()
        finally:
            store.close()
            bodies.close()

    def _locked(self, lock: AccountLock, fn):
        lock.acquire(timeout=5)
        try:
            return fn()
        finally:
            lock.release()

    def _online_loop(self, engine, store: Store, lock: AccountLock) -> None:
        conn = engine.conn
        last_poll = time.monotonic()
        while not self._stop.is_set() and not self._offline:
            self._emit_state("idle", folder=self._watch, pending=store.pending_count())
            self._wake.clear()
            with self._req_lock:
                requests, self._requests = self._requests, set()
            pending = store.pending_folders()
            if None in requests:
                self._locked(lock, lambda: engine.sync_all(first=self._watch))
                last_poll = time.monotonic()
                continue
            todo = (requests | pending) - {None}
            if todo:
                self._locked(lock, lambda: [engine.sync_folder(f) for f in sorted(todo, key=lambda n: n != self._watch)])
                continue
            if time.monotonic() - last_poll > POLL_SECONDS:
                self._locked(lock, lambda: engine.sync_all(first=self._watch))
                last_poll = time.monotonic()
                continue
            if conn.selected != self._watch:
                self._locked(lock, lambda: engine.sync_folder(self._watch, force=True))
            if not conn.has("IDLE") or not self.account.idle:
                self._sleep(min(60.0, POLL_SECONDS))
                with self._req_lock:
                    self._requests.add(self._watch)
                continue
            timeout = min(IDLE_SECONDS, max(1.0, POLL_SECONDS - (time.monotonic() - last_poll)))
            news = conn.idle(timeout, stop=lambda: self._stop.is_set() or self._wake.is_set() or self._offline)
            fid = store.folder_id(self._watch)
            if news.exists is not None or news.vanished or news.expunged or news.seq_flags:
                self._locked(lock, lambda: engine.sync_folder(self._watch))
            elif news.flags and fid is not None:
                changed = store.apply_server_flags(fid, news.flags)
                if changed:
                    self._emit(RowsChanged(self.account.name, fid, uids=tuple(changed)))

    def _log_crash(self) -> None:
        try:
            d = paths.ensure_private_dir(paths.state_dir())
            # 0600 whatever the umask (a traceback may quote server text); never through a symlink
            fd = os.open(d / "tuimail.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            os.fchmod(fd, 0o600)
            with open(fd, "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + traceback.format_exc() + "\n")
        except OSError:
            pass
