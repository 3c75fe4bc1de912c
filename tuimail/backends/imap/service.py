"""ImapService: the IMAP account kind's AccountService (core/service.py), the one object the UI
(and the CLI) talk to for everything that needs the network. Made by backends/registry.py.

It owns the worker threads and their IMAP connections (imapclient is not thread-safe, so one
connection per thread): the sync loop (journal replay, resync, new headers, then IDLE on the
watched folder) and an on-demand fetcher (opening a message never waits behind a header sync).

Reads come from the Store, never from here. Writes are intents on the Store (Store.set_flags,
Store.move, Store.expunge) followed by `wake()`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Collection, Sequence

from tuimail import paths
from tuimail.config.load import Account, Config, resolve_oauth2_token, resolve_password
from tuimail.errors import (AuthError, CommandFailed, ConfigError, MissingSecret, NetworkError, NotCached, TuimailError,
                            Unsupported, UsageError)
from tuimail.store import BodyCache, Store
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.sqlite_errors import guard, store_error
from tuimail.core.content import MessageContent
from tuimail.core.events import Event, EventSink, NewMail, SyncState
from tuimail.core.service import Capabilities
from tuimail.core.summary import SyncSummary
from tuimail.trace import trace
from tuimail.backends.lock import AccountLock, Busy
from tuimail.backends.waker import Waker

# The network stack (imapclient, ssl, the engine, the MIME/HTML reader) is imported by the worker
# threads when they first need it, not at import: the app paints its first screen before that.

PAINT_HOLD = 2.0  # seconds a first run's sync waits for the UI to draw its first window
POLL_SECONDS = 60  # other folders' STATUS while idling on one (accounts.NAME.check_interval)
LOGIN_WAIT = 20.0  # at most this long the fetch lane waits for the sync thread's login outcome
IDLE_SECONDS = 25 * 60  # re-issue IDLE before the 29-minute server timeout
INDEX_STEP = 0.5  # seconds of search indexing between two looks at the user's requests and intents
log = logging.getLogger("tuimail.sync")


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


def secret_getter(account: Account) -> Callable[[], str]:
    return SecretSource(account)


def open_connection(account: Account, secret: Callable[[], str] | None = None, **kw):
    from tuimail.protocol.imap.connection import ImapConnection
    conn = ImapConnection(account, secret or secret_getter(account), **kw)
    conn.connect()
    return conn


class ImapService:
    # IMAP keeps flags and folders on the server and pushes with IDLE (where the server has it and
    # accounts.NAME.idle allows it: else it polls); search asks the server what the store cannot
    # answer; append stores a message (Drafts). Sending goes through the outbox (backends/send.py,
    # registry.create_sender), not through send(), which raises Unsupported.
    capabilities = Capabilities(server_flags=True, push=True, server_search=True, append=True, send=False,
                                server_folders=True)

    def __init__(self, config: Config, account: Account, on_event: EventSink | None = None,
                 *, offline: bool = False):
        self.config = config
        self.account = account
        self.on_event = on_event or (lambda e: None)
        self._offline = offline
        self._secret = SecretSource(account)
        # Set by a user action (`$`, a typed password, going online): a refused login or a
        # missing password waits for it instead of retrying (servers lock accounts after a few
        # failures). While it is not set after such a failure, no connection logs in.
        self._user_acted = threading.Event()
        self._login_blocked: str | None = None  # the error that stopped the logins
        # Set once the sync thread's login attempt has an outcome: the fetch lane waits for it
        # rather than trying a (perhaps refused) login of its own at the same time.
        self._login_done = threading.Event()
        self.store_path = paths.account_store_path(account.name)
        self.cache_path = paths.account_cache_path(account.name)
        paths.ensure_private_dir(self.store_path.parent)
        paths.ensure_private_dir(self.cache_path.parent)
        self._stop = threading.Event()
        self._wake = Waker()  # an Event that the IDLE wait selects on with the socket
        self._requests: set[str | None] = set()
        self._req_lock = threading.Lock()
        self._watch = "INBOX"
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None  # (kept after stop(): see there)
        self._sync_conn = None  # ImapConnection, owned by the worker thread
        self._fetch_lock = threading.Lock()
        self._fetch_conn = None  # ImapConnection for on-demand fetches, guarded by _fetch_lock
        self._fetch_store: Store | None = None
        self._fetch_bodies: BodyCache | None = None
        self._no_connection: str | None = None  # why the fetch lane has no connection (while online)
        self.state = SyncState(account.name, "offline" if offline else "connecting")
        self._hold_for_paint = False
        self._painted = threading.Event()

    # lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = self._worker = threading.Thread(target=self._run, name=f"sync-{self.account.name}",
                                                           daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._user_acted.set()
        conn = self._sync_conn
        if conn is not None:
            conn.shutdown()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._worker is None or not self._worker.is_alive():  # (else it may still select on it)
            self._wake.close()
        with self._fetch_lock:
            if self._fetch_conn is not None:
                self._fetch_conn.close()
                self._fetch_conn = None
            if self._fetch_store is not None:  # (a later fetch opens them again)
                self._fetch_store.close()
                self._fetch_store = None
            if self._fetch_bodies is not None:
                self._fetch_bodies.close()
                self._fetch_bodies = None

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
        """folder=None: the user asked for a full sync (`$`); that also retries a refused login."""
        with self._req_lock:
            self._requests.add(folder)
        if folder is None:
            self._user_acted.set()
        self._wake.set()

    def set_password(self, password: str) -> None:
        """A password the user typed (kept in memory only): log in with it now."""
        self._secret.typed = password
        self._user_acted.set()
        self._wake.set()

    @property
    def login_blocked(self) -> str | None:
        """The refused login (or missing password) the service waits on the user for, or None."""
        return self._login_blocked

    def watch_folder(self, folder: str) -> None:
        self._watch = folder
        self.request_sync(folder)

    def set_offline(self, offline: bool) -> None:
        self._go_offline(offline)
        self._emit_state("offline" if offline else "connecting")

    def _go_offline(self, offline: bool) -> None:
        """set_offline without the state event (a sync process gets this; its parent emits)."""
        self._offline = offline
        self._user_acted.set()
        self._wake.set()
        if offline:
            conn = self._sync_conn
            if conn is not None:
                conn.shutdown()
            with self._fetch_lock:
                if self._fetch_conn is not None:
                    self._fetch_conn.shutdown()
                    self._fetch_conn = None

    @property
    def offline(self) -> bool:
        return self._offline

    # on-demand fetches (blocking: call from a worker thread, never the UI thread) ------
    def _reader(self):
        from tuimail.backends.imap.opener import MessageOpener
        if self._fetch_store is None:
            self._fetch_store = Store(self.store_path)
            self._fetch_bodies = BodyCache(self.cache_path)
        if self._fetch_conn is None and not self._offline and self._thread is not None:
            self._login_done.wait(LOGIN_WAIT)
        unreachable = None
        if self._fetch_conn is None and not self._offline and self._login_blocked is None:
            try:
                self._fetch_conn = open_connection(self.account, self._secret)
            except (AuthError, ConfigError) as exc:  # never log in again before the user acts
                self._login_blocked = str(exc)
                self._fetch_conn = None
            except NetworkError as exc:  # the cache may still have it
                self._fetch_conn = None
                unreachable = f"the server is unreachable: {exc}"
        self._no_connection = None
        if self._fetch_conn is None and not self._offline:
            self._no_connection = unreachable or self._login_blocked
        return MessageOpener(self._fetch_store, self._fetch_bodies, self._fetch_conn, self.config.ui.prefer_html)

    def _fetch(self, fn):
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
                    if self._fetch_conn is not None:
                        self._fetch_conn.shutdown()
                        self._fetch_conn = None
                    # A connection kept from an earlier fetch may have died meanwhile (the server
                    # restarted: its "* BYE shutting down" waits in the socket): once, quietly,
                    # on a new connection. Fetches are read-only (BODY.PEEK), a retry is safe.
                    if not (reused and attempt == 1 and not self._offline):
                        raise

    def open_message(self, folder: str, uid: int, *, more: bool = False) -> MessageContent:
        return self._fetch(lambda r: r.open(folder, uid, more))

    def open_attached(self, folder: str, uid: int, section: str) -> MessageContent:
        """The message attached at `section` of message `uid`, as a MessageContent of its own."""
        return self._fetch(lambda r: r.open_attached(folder, uid, section))

    def fetch_raw(self, folder: str, uid: int) -> bytes:
        return self._fetch(lambda r: r.raw(folder, uid))

    def fetch_part(self, folder: str, uid: int, section: str) -> bytes:
        return self._fetch(lambda r: r.part(folder, uid, section))

    def search(self, folder: str, query: str) -> list[int]:
        """The local ids of `folder`'s messages matching the mutt-style pattern `query`, newest
        first: the store's answer, and the server's (on the fetch lane's connection) for what the
        store cannot decide; offline, the store's alone (backends/imap/search.py)."""
        from tuimail.backends.imap.search import search_folder
        from tuimail.core.pattern import PatternError, parse
        try:
            pattern = parse(query)
        except PatternError as exc:
            raise UsageError(str(exc)) from None
        if folder.upper() == "INBOX":
            folder = "INBOX"
        return self._fetch(lambda r: [h.id for h in search_folder(r.store, r.conn, folder, pattern).hits])

    def send(self, raw: bytes, *, sender: str, recipients: Sequence[str]) -> None:
        raise Unsupported("sending is not available yet")

    def append(self, folder: str, raw: bytes, flags: Collection[str] = ()) -> None:
        """APPEND `raw` to `folder` with these canonical flags, on a short-lived connection of
        its own in the calling thread (a worker's; the sync's and the fetch lane's connections
        belong to their threads, the sync may be in a child process). The folder is synced after
        it, so the message shows in the list. Offline: NetworkError (the app postpones through
        the store instead: store/postponed.py, filed by the outbox drain)."""
        from tuimail.backends.imap.flags import to_imap
        if self._offline:
            raise NetworkError("offline: the message is not stored on the server")
        conn = open_connection(self.account, self._secret)
        try:
            conn.append(folder, raw, [to_imap(f) for f in flags], time.time())
        finally:
            conn.close()
        self.request_sync(folder)

    # one sync in the caller's thread (the CLI) --------------------------------------------------
    def sync_now(self, folder: str | None = None) -> SyncSummary:
        """Every folder, or `folder` (INBOX in any case), once, under the account lock; then the
        connection is closed. Not while start()ed: the worker syncs then."""
        from tuimail.backends.imap.engine import Engine
        if self._offline:
            raise UsageError("sync needs the network; drop --offline")
        if folder is not None and folder.upper() == "INBOX":  # RFC 3501: INBOX is case-insensitive
            folder = "INBOX"
        with Store(self.store_path) as store, AccountLock(paths.lock_path(self.account.name)):
            bodies = BodyCache(self.cache_path)
            conn = open_connection(self.account, self._secret)
            try:
                engine = Engine(self.account, store, conn, bodies)
                engine.negotiate()
                if folder is None:
                    return engine.sync_all()
                t0 = time.monotonic()
                engine.sync_folders_list()
                if store.folder(folder) is None:
                    raise UsageError(f"no folder {sanitize_line(folder)!r} on {self.account.name}")
                summary = SyncSummary([engine.sync_one(folder)], mode=engine.mode)
                summary.seconds = time.monotonic() - t0
                engine.finish(summary)
                return summary
            finally:
                conn.close()
                bodies.close()

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
        from tuimail.backends.imap.engine import Engine
        try:
            store = Store(self.store_path)
            bodies = BodyCache(self.cache_path)
        except TuimailError as exc:  # a damaged store, a full disk...: one line in the status bar
            self._emit_state("error", error=str(exc))
            return
        lock = AccountLock(paths.lock_path(self.account.name))
        backoff = 1.0
        try:
            while not self._stop.is_set():
                if self._offline:
                    self._wake.clear()
                    self._sleep(3600)
                    continue
                try:
                    self._user_acted.clear()
                    self._emit_state("connecting")
                    trace("connect")
                    self._login_done.clear()
                    try:
                        conn = self._sync_conn = open_connection(self.account, self._secret)
                        self._login_blocked = None
                    except (AuthError, ConfigError) as exc:
                        self._login_blocked = str(exc)
                        raise
                    finally:
                        self._login_done.set()
                    trace("logged in")
                    engine = Engine(self.account, store, conn, bodies, self._emit)
                    engine.index_seconds = INDEX_STEP
                    if self._hold_for_paint:
                        self._hold_for_paint = False  # the first connection only
                        engine.after_first_window = self._wait_for_paint
                    engine.negotiate()
                    with self._req_lock:
                        self._requests.clear()
                    self._sync_all(engine, lock)
                    backoff = 1.0
                    self._online_loop(engine, store, lock)
                except (AuthError, ConfigError) as exc:
                    # A refused login or no usable password: trying again cannot help and
                    # servers lock accounts after a few failures. Wait for the user.
                    if self._stop.is_set() or self._offline:
                        continue
                    self._secret.forget()
                    self._emit_state("error", error=str(exc), pending=store.pending_count(),
                                     needs="password" if isinstance(exc, MissingSecret) else "login")
                    self._wait_for_user()
                    backoff = 1.0
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
                    self._emit_state("error", error=str(exc), pending=_pending(store))
                    self._sleep(max(backoff, 30))
                except sqlite3.Error as exc:  # the store: one line naming the file and the cure
                    self._emit_state("error", error=str(store_error(exc, self.store_path)))
                    self._sleep(max(backoff, 60))
                    backoff = min(backoff * 2, 300.0)
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

    def _wait_for_user(self) -> None:
        while not self._stop.is_set() and not self._user_acted.is_set():
            self._user_acted.wait(3600)

    def _locked(self, lock: AccountLock, fn):
        lock.acquire(timeout=5)
        try:
            return fn()
        finally:
            lock.release()

    def _report_new(self, summaries) -> None:
        """NewMail for each folder that got unseen messages (a first fill is not new mail)."""
        for f in summaries:
            if f.unseen_new and not f.first and not f.reset:
                self._emit(NewMail(self.account.name, f.name, f.unseen_new))

    def _sync_all(self, engine, lock: AccountLock) -> None:
        summary = self._locked(lock, lambda: engine.sync_all(first=self._watch))
        self._report_new(summary.folders)

    def _sync_folders(self, engine, lock: AccountLock, names, **kw) -> list:
        """engine.sync_one for each name (a refused folder is that folder's alone); their summaries."""
        done = self._locked(lock, lambda: [engine.sync_one(f, **kw) for f in names])
        self._report_new(done)
        return done

    def _online_loop(self, engine, store: Store, lock: AccountLock) -> None:
        from tuimail.backends.imap.selected import apply_news, replay_selected
        conn = engine.conn
        last_poll = time.monotonic()
        interval = getattr(self.account, "check_interval", POLL_SECONDS) or POLL_SECONDS
        while not self._stop.is_set() and not self._offline:
            self._emit_state("idle", folder=self._watch, pending=store.pending_count())
            self._wake.clear()
            with self._req_lock:
                requests, self._requests = self._requests, set()
            pending = store.pending_folders()
            if None in requests:
                self._sync_all(engine, lock)
                last_poll = time.monotonic()
                continue
            here = conn.selected
            if here in pending and here not in requests:
                # an action on the folder we idle on: DONE, its command, IDLE again (no resync)
                done = self._locked(lock, lambda here=here: replay_selected(engine, here))
                if done is not None:
                    if done[1]:  # news that needs a resync (new mail...)
                        requests.add(here)
                    with self._req_lock:  # the other folders' turn comes next round
                        self._requests |= requests
                    continue
            todo = (requests | pending) - {None}
            if todo:
                self._sync_folders(engine, lock, sorted(todo, key=lambda n: n != self._watch))
                continue
            if time.monotonic() - last_poll >= interval:
                # other folders: LIST-STATUS (or STATUS each) tells which changed; new folders appear
                self._sync_all(engine, lock)
                last_poll = time.monotonic()
                continue
            if engine.index_search(INDEX_STEP):  # the search index, in the gaps: more is left
                continue
            watch = self._idle_folder(store)
            if watch is None:  # the watched folder and INBOX are refused: poll instead
                self._sleep(min(60.0, POLL_SECONDS))
                continue
            if conn.selected != watch and self._sync_folders(engine, lock, [watch], force=True)[0].error:
                continue  # refused (kept on the folder): IDLE elsewhere
            if not conn.has("IDLE") or not self.account.idle:
                self._sleep(max(0.0, min(60.0, interval - (time.monotonic() - last_poll))))
                with self._req_lock:
                    self._requests.add(watch)
                continue
            timeout = min(IDLE_SECONDS, max(1.0, interval - (time.monotonic() - last_poll)))
            news = conn.idle(timeout, stop=lambda: self._stop.is_set() or self._wake.is_set() or self._offline,
                             wake=self._wake)
            if apply_news(engine, watch, news):
                self._sync_folders(engine, lock, [watch])

    def _idle_folder(self, store: Store) -> str | None:
        """The folder to IDLE on: the watched one, else INBOX when the server refuses it (a folder
        with a refusal on record is tried again by the next full sync, not in a loop here)."""
        for name in dict.fromkeys((self._watch, "INBOX")):
            fi = store.folder(name, counts=False)
            if fi is None or not (fi.error or fi.gone):
                return name
        return None

    def _log_crash(self) -> None:  # (ui/crash.py has the same for the app)
        try:
            d = paths.ensure_private_dir(paths.state_dir())
            # 0600 whatever the umask (a traceback may quote server text); never through a symlink
            fd = os.open(d / "tuimail.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            os.fchmod(fd, 0o600)
            with open(fd, "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + traceback.format_exc() + "\n")
        except OSError:
            pass


def _pending(store: Store) -> int:
    """The pending count for a state event (0 when the store cannot say: it is what failed)."""
    try:
        return store.pending_count()
    except sqlite3.Error:
        return 0
