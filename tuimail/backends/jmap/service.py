"""JmapService: the JMAP account kind's AccountService (core/service.py), made by
backends/registry.py for `kind = "jmap"`.

Two threads, each with its own HTTP connection (the JMAP client is not thread-safe): the sync
loop (changes, the journal, first fills; then it waits `check_interval` seconds, or less when
woken) and the on-demand fetch lane (opening a message never waits behind a sync). Changes are
polled (one small request when nothing changed); where the server offers EventSource push, a third
thread reads the stream and a state change wakes the sync at once (Cyrus 3.6 answers 204: polling
only). wake() sends the user's actions at once.

Reads come from the Store; writes are intents on the Store followed by wake().
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from tuimail import paths
from tuimail.backends.imap.service import SecretSource
from tuimail.backends.lock import AccountLock, Busy
from tuimail.backends.waker import Waker
from tuimail.config.load import Account, Config
from tuimail.core.content import MessageContent
from tuimail.core.events import Event, EventSink, NewMail, SyncState
from tuimail.core.service import Capabilities
from tuimail.core.summary import SyncSummary
from tuimail.errors import (AuthError, CommandFailed, ConfigError, MissingSecret, NetworkError, NotCached,
                            ProtocolError, TuimailError, Unsupported, UsageError)
from tuimail.mail.sanitize import sanitize_line
from tuimail.store import BodyCache, Store
from tuimail.store.sqlite_errors import guard, store_error
from tuimail.trace import trace

log = logging.getLogger("tuimail.jmap")
PAINT_HOLD = 2.0
LOGIN_WAIT = 20.0
INDEX_STEP = 0.5  # seconds of search indexing between two looks at the user's actions
PUSH_PING = 30  # seconds between the server's pings on the EventSource stream
PUSH_RETRY = 30.0  # a dropped stream is opened again after this long (polling goes on meanwhile)
T = TypeVar("T")


def connect(account: Account, secret: Callable[[], str]) -> Any:
    """A JmapClient with the session fetched: Basic auth with the password, or the OAuth2 token
    as a bearer. A refused login is AuthError; the account not (yet) there is a ConfigError."""
    from tuimail.protocol.jmap import JmapClient
    value = secret()
    kw: dict[str, Any] = {"token": value} if account.oauth2_token_command else {
        "username": account.username, "password": value}
    client = JmapClient(account.url or account.host, allow_insecure=account.allow_insecure,
                        ca_file=str(account.tls_ca_file) if account.tls_ca_file else None,
                        fingerprint=account.tls_fingerprint, timeout=account.timeout, **kw)
    client.fetch_session()
    client.account_id  # noqa: B018 (a session without a mail account: ProtocolError now)
    return client


class JmapService:
    """One JMAP account: flags and folders on the server; changes polled every check_interval, and
    pushed by EventSource where the server offers it (push_state)."""

    capabilities = Capabilities(server_flags=True, push=False, server_search=False, append=True, send=True,
                                server_folders=True)

    def __init__(self, config: Config, account: Account, on_event: EventSink | None = None, *,
                 offline: bool = False):
        self.config, self.account = config, account
        self.on_event = on_event or (lambda e: None)
        self._offline = offline
        self._secret = SecretSource(account)
        self._user_acted = threading.Event()
        self._login_blocked: str | None = None
        self._login_done = threading.Event()
        self.store_path = paths.account_store_path(account.name)
        self.cache_path = paths.account_cache_path(account.name)
        paths.ensure_private_dir(self.store_path.parent)
        paths.ensure_private_dir(self.cache_path.parent)
        self._stop = threading.Event()
        self._wake = Waker()
        self._requests: set[str | None] = set()
        self._req_lock = threading.Lock()
        self._watch = "INBOX"
        self._thread: threading.Thread | None = None
        self._sync_client: Any = None
        self._fetch_lock = threading.Lock()
        self._fetch_client: Any = None
        self._fetch_store: Store | None = None
        self._fetch_bodies: BodyCache | None = None
        self._no_connection: str | None = None
        self.state = SyncState(account.name, "offline" if offline else "connecting")
        self._hold_for_paint = False
        self._painted = threading.Event()
        self._push_thread: threading.Thread | None = None
        self._push_stream: Any = None  # the EventSource being read (closed by stop())
        # "starting" | "on" (a stream is open) | "unavailable" (the server has none: polling) | "off"
        self.push_state = "off"

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"jmap-{self.account.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._user_acted.set()
        stream = self._push_stream
        if stream is not None:
            stream.close()
        if self._push_thread is not None:
            self._push_thread.join(timeout)
            self._push_thread = None
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._wake.close()
            self._thread = None
        with self._fetch_lock:
            if self._fetch_client is not None:
                self._fetch_client.close()
                self._fetch_client = None
            if self._fetch_store is not None:
                self._fetch_store.close()
                self._fetch_store = None
            if self._fetch_bodies is not None:
                self._fetch_bodies.close()
                self._fetch_bodies = None

    def hold_for_first_paint(self) -> None:
        self._hold_for_paint = True

    def ui_painted(self) -> None:
        self._painted.set()

    def _wait_for_paint(self) -> None:
        deadline = time.monotonic() + PAINT_HOLD
        while not self._painted.is_set() and not self._stop.is_set() and time.monotonic() < deadline:
            self._painted.wait(0.1)

    # requests (non-blocking) -------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def request_sync(self, folder: str | None = None, /) -> None:
        with self._req_lock:
            self._requests.add(folder)
        if folder is None:
            self._user_acted.set()
        self._wake.set()

    def watch_folder(self, folder: str, /) -> None:
        self._watch = folder
        self.request_sync(folder)

    def set_offline(self, offline: bool, /) -> None:
        self._offline = offline
        self._user_acted.set()
        self._wake.set()
        if offline:
            with self._fetch_lock:
                if self._fetch_client is not None:
                    self._fetch_client.close()
                    self._fetch_client = None
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

    # on-demand fetches (blocking) ----------------------------------------------------------
    def _reader(self) -> Any:
        from tuimail.backends.jmap.opener import Reader
        if self._fetch_store is None:
            self._fetch_store = Store(self.store_path)
            self._fetch_bodies = BodyCache(self.cache_path)
        if self._fetch_client is None and not self._offline and self._thread is not None:
            self._login_done.wait(LOGIN_WAIT)
        unreachable = None
        if self._fetch_client is None and not self._offline and self._login_blocked is None:
            try:
                self._fetch_client = connect(self.account, self._secret)
            except (AuthError, ConfigError) as exc:
                self._login_blocked = str(exc)
            except (NetworkError, ProtocolError) as exc:
                unreachable = f"the server is unreachable: {exc}"
        self._no_connection = None
        if self._fetch_client is None and not self._offline:
            self._no_connection = unreachable or self._login_blocked
        assert self._fetch_bodies is not None
        return Reader(self._fetch_store, self._fetch_bodies, self._fetch_client, self.config.ui.prefer_html)

    def _fetch(self, fn: Callable[[Any], T]) -> T:
        with self._fetch_lock:
            for attempt in (1, 2):
                reused = self._fetch_client is not None
                reader = self._reader()
                try:
                    with guard(self.store_path):
                        return fn(reader)
                except NotCached:
                    if self._no_connection is None:
                        raise
                    raise NotCached(f"not cached, and {self._no_connection}") from None
                except NetworkError:
                    if self._fetch_client is not None:
                        self._fetch_client.close()
                        self._fetch_client = None
                    if not (reused and attempt == 1 and not self._offline):
                        raise
            raise AssertionError("unreachable")

    def open_message(self, folder: str, id: int, /, *, more: bool = False) -> MessageContent:
        return self._fetch(lambda r: r.open(folder, id, more))

    def open_attached(self, folder: str, id: int, section: str, /) -> MessageContent:
        return self._fetch(lambda r: r.open_attached(folder, id, section))

    def fetch_raw(self, folder: str, id: int, /) -> bytes:
        return self._fetch(lambda r: r.raw(folder, id))

    def fetch_part(self, folder: str, id: int, section: str, /) -> bytes:
        return self._fetch(lambda r: r.part(folder, id, section))

    def search(self, folder: str, query: str, /) -> list[int]:
        raise Unsupported("searching on a JMAP server is not available yet")

    def send(self, raw: bytes, /, *, sender: str, recipients: Sequence[str]) -> None:
        """Submit at once (EmailSubmission; the server files it in Sent). The outbox
        (backends/send.py) is the way the app sends; this is the contract's direct path."""
        from tuimail.backends.jmap.submit import JmapSubmitter
        if self._offline:
            raise UsageError("sending needs the network; drop --offline")
        submitter = JmapSubmitter(self.account, self.store_path,
                                  connect=lambda: connect(self.account, self._secret))
        try:
            submitter.send(raw, sender, recipients)
        finally:
            submitter.close()

    def append(self, folder: str, raw: bytes, flags: Collection[str] = (), /) -> None:
        """Email/import into the folder's mailbox with these flags as keywords (postpone: Drafts
        with $draft); the folder is synced at once so the message shows."""
        from tuimail.backends.jmap.flags import keyword
        from tuimail.backends.jmap.state import FolderState
        from tuimail.protocol.jmap.mail import import_email
        if self._offline:
            raise UsageError("storing a message on the server needs the network; drop --offline")
        with Store(self.store_path) as store:
            info = store.folder(folder)
            mailbox = FolderState.load(info.state).mailbox if info is not None and not info.gone else None
        if mailbox is None:
            raise UsageError(f"no folder {sanitize_line(folder)!r} on {self.account.name}")
        keywords = {kw: True for kw in map(keyword, flags) if kw}
        with self._fetch_lock:  # the fetch lane's connection (one thread at a time)
            self._reader()
            client = self._fetch_client
            if client is None:
                raise NetworkError(self._no_connection or f"{self.account.name}: offline")
            try:
                import_email(client, bytes(raw), mailbox, keywords)
            except NetworkError:
                client.close()
                self._fetch_client = None
                raise
        self.request_sync(folder)

    # one sync in the caller's thread (the CLI) ----------------------------------------------
    def sync_now(self, folder: str | None = None, /) -> SyncSummary:
        from tuimail.backends.jmap.engine import Engine
        if self._offline:
            raise UsageError("sync needs the network; drop --offline")
        if folder is not None and folder.upper() == "INBOX":
            folder = "INBOX"
        with Store(self.store_path) as store, AccountLock(paths.lock_path(self.account.name)):
            bodies = BodyCache(self.cache_path)
            client = connect(self.account, self._secret)
            try:
                engine = Engine(self.account, store, client, bodies)
                if folder is not None:
                    engine.sync_mailboxes()
                    if store.folder(folder) is None:
                        raise UsageError(f"no folder {sanitize_line(folder)!r} on {self.account.name}")
                    return engine.sync_all(first=folder, only=[folder])
                return engine.sync_all()
            finally:
                client.close()
                bodies.close()

    # the worker ------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        if isinstance(event, SyncState):
            self.state = event
        try:
            self.on_event(event)
        except Exception:
            log.exception("event listener failed")

    def _emit_state(self, state: str, **kw: Any) -> None:
        self._emit(SyncState(self.account.name, state, **kw))

    def _run(self) -> None:
        from tuimail.backends.jmap.engine import Engine
        try:
            store = Store(self.store_path)
            bodies = BodyCache(self.cache_path)
        except TuimailError as exc:
            self._emit_state("error", error=str(exc))
            return
        lock = AccountLock(paths.lock_path(self.account.name))
        backoff = 1.0
        try:
            while not self._stop.is_set():
                if self._offline:
                    self._wake.clear()
                    self._wake.wait(3600)
                    continue
                try:
                    self._user_acted.clear()
                    self._emit_state("connecting")
                    self._login_done.clear()
                    try:
                        client = self._sync_client = connect(self.account, self._secret)
                        self._login_blocked = None
                    except (AuthError, ConfigError) as exc:
                        self._login_blocked = str(exc)
                        raise
                    finally:
                        self._login_done.set()
                    engine = Engine(self.account, store, client, bodies, self._emit)
                    engine.index_seconds = INDEX_STEP
                    if self._hold_for_paint:
                        self._hold_for_paint = False
                        engine.after_first_window = self._wait_for_paint
                    with self._req_lock:
                        self._requests.clear()
                    self._sync(engine, lock, store)
                    backoff = 1.0
                    self._start_push()
                    self._online_loop(engine, store, lock)
                except (AuthError, ConfigError) as exc:
                    if self._stop.is_set() or self._offline:
                        continue
                    self._secret.forget()
                    self._emit_state("error", error=str(exc), pending=store.pending_count(),
                                     needs="password" if isinstance(exc, MissingSecret) else "login")
                    while not self._stop.is_set() and not self._user_acted.is_set():
                        self._user_acted.wait(3600)
                    backoff = 1.0
                except (NetworkError, CommandFailed, ProtocolError) as exc:
                    if self._stop.is_set() or self._offline:
                        continue
                    self._emit_state("offline", error=str(exc), pending=store.pending_count())
                    self._wake.wait(backoff)
                    self._wake.clear()
                    backoff = min(backoff * 2, 60.0)
                except Busy as exc:
                    self._emit_state("idle", error=str(exc), pending=store.pending_count())
                    self._wake.wait(30)
                except TuimailError as exc:
                    self._emit_state("error", error=str(exc))
                    self._wake.wait(max(backoff, 30))
                except sqlite3.Error as exc:
                    self._emit_state("error", error=str(store_error(exc, self.store_path)))
                    self._wake.wait(max(backoff, 60))
                    backoff = min(backoff * 2, 300.0)
                except Exception as exc:  # never a traceback on screen: log it, one line
                    log.exception("jmap sync failed")
                    self._emit_state("error", error=f"internal error: {exc.__class__.__name__}: {exc}"[:300])
                    self._wake.wait(max(backoff, 30))
                    backoff = min(backoff * 2, 300.0)
                finally:
                    client, self._sync_client = self._sync_client, None
                    if client is not None:
                        client.close()
        finally:
            store.close()
            bodies.close()

    def _sync(self, engine: Any, lock: AccountLock, store: Store) -> None:
        lock.acquire(timeout=5)
        try:
            summary = engine.sync_all(first=self._watch)
        finally:
            lock.release()
        for f in summary.folders:
            if f.unseen_new and not f.first and not f.reset:
                self._emit(NewMail(self.account.name, f.name, f.unseen_new))

    def _online_loop(self, engine: Any, store: Store, lock: AccountLock) -> None:
        interval = float(getattr(self.account, "check_interval", 60.0) or 60.0)
        last = time.monotonic()
        while not self._stop.is_set() and not self._offline:
            self._emit_state("idle", folder=self._watch, pending=store.pending_count())
            left = interval - (time.monotonic() - last)
            if left > 0 and not self._wake.is_set() and engine.index_search(INDEX_STEP):
                continue  # the search index, in the gaps: more is left
            if left > 0:
                self._wake.wait(left)  # (wake(): the user's action, `$`, a watched folder)
            if self._stop.is_set() or self._offline:
                return
            self._wake.clear()
            with self._req_lock:
                requests, self._requests = self._requests, set()
            pending = store.pending_folders()
            if pending and not requests and time.monotonic() - last < interval:
                # the user's actions: sent at once (one Email/set per folder), no full resync
                lock.acquire(timeout=5)
                try:
                    for name in sorted(pending):
                        trace(f"replay {name}")
                        engine.replay(name)
                finally:
                    lock.release()
                continue
            self._sync(engine, lock, store)
            last = time.monotonic()

    # push ------------------------------------------------------------------------------------
    def _start_push(self) -> None:
        """EventSource on a thread and a connection of its own, where the server offers it: a
        state change wakes the sync at once. Polling every check_interval goes on regardless."""
        if self._push_thread is None and self.push_state != "unavailable":
            self.push_state = "starting"
            self._push_thread = threading.Thread(target=self._push_loop, name=f"jmap-push-{self.account.name}",
                                                 daemon=True)
            self._push_thread.start()

    def _push_loop(self) -> None:
        from tuimail.protocol.jmap.push import EventSource, PushUnavailable
        last_id: str | None = None
        while not self._stop.is_set():
            if self._offline:
                self.push_state = "off"
                self._stop.wait(5)
                continue
            client = None
            try:
                client = connect(self.account, self._secret)
                with EventSource(client, ("Email", "Mailbox"), ping=PUSH_PING, last_event_id=last_id) as es:
                    self._push_stream = es
                    if self._stop.is_set():
                        return
                    for change in es:
                        self.push_state = "on"
                        last_id = change.event_id
                        if change.types(client.account_id):
                            trace("push: state change")
                            with self._req_lock:
                                self._requests.add(self._watch)
                            self._wake.set()
            except PushUnavailable as exc:
                trace(f"push: {exc}")
                self.push_state = "unavailable"
                return
            except (AuthError, ConfigError):
                self.push_state = "off"  # the sync loop reports the login; it is not retried here
                return
            except TuimailError as exc:
                trace(f"push: {exc}: again in {PUSH_RETRY:.0f} s")
                self.push_state = "off"
            finally:
                self._push_stream = None
                if client is not None:
                    client.close()
            self._stop.wait(PUSH_RETRY)

    # (for tests) ----------------------------------------------------------------------------
    @property
    def sync_client(self) -> Any:
        return self._sync_client
