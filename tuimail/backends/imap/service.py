"""ImapService: the IMAP account kind's AccountService (core/service.py), the one object the UI
(and the CLI) talk to for everything that needs the network. Made by backends/registry.py.

It owns the worker threads and their IMAP connections (imapclient is not thread-safe, so one
connection per thread): the sync loop (journal replay, resync, new headers, then IDLE on the
watched folder) and an on-demand fetcher (opening a message never waits behind a header sync).

Reads come from the Store, never from here. Writes are intents on the Store (Store.set_flags,
Store.move, Store.expunge) followed by `wake()`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from tuimail import paths
from tuimail.backends.base import FetchLaneService, SecretSource
from tuimail.config.load import Account, Config
from tuimail.errors import NetworkError, Unsupported, UsageError
from tuimail.store import BodyCache, Store
from tuimail.mail.sanitize import sanitize_line
from tuimail.core.content import MessageContent
from tuimail.core.events import EventSink
from tuimail.core.service import Capabilities
from tuimail.core.summary import SyncSummary
from tuimail.trace import trace
from tuimail.backends.lock import AccountLock

if TYPE_CHECKING:
    from tuimail.backends.imap.opener import MessageOpener
    from tuimail.protocol.imap.connection import ImapConnection

# The network stack (imapclient, ssl, the engine, the MIME/HTML reader) is imported by the worker
# threads when they first need it, not at import: the app paints its first screen before that.

POLL_SECONDS = 60  # other folders' STATUS while idling on one (accounts.NAME.check_interval)
IDLE_SECONDS = 25 * 60  # re-issue IDLE before the 29-minute server timeout
INDEX_STEP = 0.5  # seconds of search indexing between two looks at the user's requests and intents
log = logging.getLogger("tuimail.sync")
__all__ = ["ImapService", "SecretSource", "open_connection", "secret_getter"]


def secret_getter(account: Account) -> Callable[[], str]:
    return SecretSource(account)


def open_connection(account: Account, secret: Callable[[], str] | None = None, **kw: Any) -> ImapConnection:
    from tuimail.protocol.imap.connection import ImapConnection
    conn = ImapConnection(account, secret or secret_getter(account), **kw)
    conn.connect()
    return conn


class ImapService(FetchLaneService["ImapConnection", "MessageOpener"]):
    """The worker loop, the requests and the fetch lane are backends/base.py's; here: one
    connection's sync (`_round`: journal replay, resync, new headers, then IDLE on the watched
    folder) and the IMAP reader."""

    # IMAP keeps flags and folders on the server and pushes with IDLE (where the server has it and
    # accounts.NAME.idle allows it: else it polls); search asks the server what the store cannot
    # answer; append stores a message (Drafts). Sending goes through the outbox (backends/send.py,
    # registry.create_sender), not through send(), which raises Unsupported.
    capabilities = Capabilities(server_flags=True, push=True, server_search=True, append=True, send=False,
                                server_folders=True, server_uids=True)
    thread_name = "sync"

    def __init__(self, config: Config, account: Account, on_event: EventSink | None = None,
                 *, offline: bool = False):
        super().__init__(config, account, on_event, offline=offline)
        self._sync_conn: ImapConnection | None = None  # owned by the worker thread

    # hooks of backends/base.py --------------------------------------------------
    def _connect(self) -> ImapConnection:
        return open_connection(self.account, self._secret)

    def _make_reader(self, store: Store, bodies: BodyCache, conn: ImapConnection | None) -> MessageOpener:
        from tuimail.backends.imap.opener import MessageOpener
        return MessageOpener(store, bodies, conn, self.config.ui.prefer_html)

    def _drop(self, conn: ImapConnection) -> None:
        conn.shutdown()

    def _cut_sync(self) -> None:
        conn = self._sync_conn
        if conn is not None:
            conn.shutdown()

    # on-demand fetches (blocking: call from a worker thread, never the UI thread) ------
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
        folder = self._sync_now_folder(folder)
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

    # the worker (the loop around it: backends/base.py) ---------------------------------------
    def _round(self, store: Store, lock: AccountLock) -> None:
        from tuimail.backends.imap.engine import Engine
        self._emit_state("connecting")
        trace("connect")
        try:
            conn = self._sync_conn = self._login(self._connect)
            trace("logged in")
            engine = Engine(self.account, store, conn, self._bodies, self._emit)
            engine.index_seconds = INDEX_STEP
            if self._hold_for_paint:
                self._hold_for_paint = False  # the first connection only
                engine.after_first_window = self._wait_for_paint
            engine.negotiate()
            self._take_requests()
            self._sync_all(engine, lock)
            self._connected()
            self._online_loop(engine, store, lock)
        finally:
            sync_conn, self._sync_conn = self._sync_conn, None
            if sync_conn is not None:
                if self._stop.is_set() or self._offline:
                    sync_conn.shutdown()
                sync_conn.close()
        return None

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
        interval = self.check_interval
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
                done = self._locked(lock, functools.partial(replay_selected, engine, here))
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
