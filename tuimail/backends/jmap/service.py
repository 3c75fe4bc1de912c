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
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from tuimail.backends.base import FetchLaneService
from tuimail.backends.lock import AccountLock
from tuimail.config.load import Account, Config
from tuimail.core.content import MessageContent
from tuimail.core.events import EventSink
from tuimail.core.service import Capabilities
from tuimail.core.summary import SyncSummary
from tuimail.errors import (AuthError, CommandFailed, ConfigError, NetworkError, ProtocolError, TuimailError,
                            Unsupported, UsageError)
from tuimail.mail.sanitize import sanitize_line
from tuimail import paths
from tuimail.store import BodyCache, Store
from tuimail.trace import trace

if TYPE_CHECKING:
    from tuimail.backends.jmap.opener import Reader
    from tuimail.protocol.jmap import JmapClient

log = logging.getLogger("tuimail.jmap")
INDEX_STEP = 0.5  # seconds of search indexing between two looks at the user's actions
PUSH_PING = 30  # seconds between the server's pings on the EventSource stream
PUSH_RETRY = 30.0  # a dropped stream is opened again after this long (polling goes on meanwhile)


def connect(account: Account, secret: Callable[[], str]) -> JmapClient:
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


class JmapService(FetchLaneService["JmapClient", "Reader"]):
    """One JMAP account: flags and folders on the server; changes polled every check_interval, and
    pushed by EventSource where the server offers it (push_state). The worker loop, the requests
    and the fetch lane are backends/base.py's."""

    capabilities = Capabilities(server_flags=True, push=False, server_search=False, append=True, send=True,
                                server_folders=True)
    thread_name = "jmap"
    network_errors = (NetworkError, CommandFailed, ProtocolError)
    unreachable_errors = (NetworkError, ProtocolError)

    def __init__(self, config: Config, account: Account, on_event: EventSink | None = None, *,
                 offline: bool = False):
        super().__init__(config, account, on_event, offline=offline)
        self._sync_client: JmapClient | None = None
        self._push_thread: threading.Thread | None = None
        self._push_stream: Any = None  # the EventSource being read (closed by stop())
        # "starting" | "on" (a stream is open) | "unavailable" (the server has none: polling) | "off"
        self.push_state = "off"

    # lifecycle ---------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stream = self._push_stream
        if stream is not None:
            stream.close()
        if self._push_thread is not None:
            self._push_thread.join(timeout)
            self._push_thread = None
        super().stop(timeout)

    # hooks of backends/base.py -------------------------------------------------------------
    def _connect(self) -> JmapClient:
        return connect(self.account, self._secret)

    def _make_reader(self, store: Store, bodies: BodyCache, conn: JmapClient | None) -> Reader:
        from tuimail.backends.jmap.opener import Reader
        return Reader(store, bodies, conn, self.config.ui.prefer_html)

    # on-demand fetches (blocking) ----------------------------------------------------------
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
            client = self._fetch_conn
            if client is None:
                raise NetworkError(self._no_connection or f"{self.account.name}: offline")
            try:
                import_email(client, bytes(raw), mailbox, keywords)
            except NetworkError:
                client.close()
                self._fetch_conn = None
                raise
        self.request_sync(folder)

    # one sync in the caller's thread (the CLI) ----------------------------------------------
    def sync_now(self, folder: str | None = None, /) -> SyncSummary:
        from tuimail.backends.jmap.engine import Engine
        folder = self._sync_now_folder(folder)
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

    # the worker (the loop around it: backends/base.py) ------------------------------------
    def _round(self, store: Store, lock: AccountLock) -> None:
        from tuimail.backends.jmap.engine import Engine
        self._emit_state("connecting")
        try:
            client = self._sync_client = self._login(self._connect)
            engine = Engine(self.account, store, client, self._bodies, self._emit)
            engine.index_seconds = INDEX_STEP
            if self._hold_for_paint:
                self._hold_for_paint = False
                engine.after_first_window = self._wait_for_paint
            self._take_requests()
            self._sync(engine, lock, store)
            self._connected()
            self._start_push()
            self._online_loop(engine, store, lock)
        finally:
            sync_client, self._sync_client = self._sync_client, None
            if sync_client is not None:
                sync_client.close()
        return None

    def _sync(self, engine: Any, lock: AccountLock, store: Store) -> None:
        summary = self._locked(lock, lambda: engine.sync_all(first=self._watch))
        self._report_new(summary.folders)

    def _online_loop(self, engine: Any, store: Store, lock: AccountLock) -> None:
        interval = self.check_interval
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
