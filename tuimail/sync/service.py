"""SyncService: the one object the UI (and the CLI) talk to for everything that needs the network.

It owns the worker threads and their IMAP connections (imapclient is not thread-safe, so one
connection per thread): the sync loop (journal replay, resync, new headers, then IDLE on the
watched folder) and an on-demand fetcher (opening a message never waits behind a header sync).

Reads come from the Store, never from here. Writes are intents on the Store (Store.set_flags,
Store.move, Store.expunge) followed by `wake()`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Account, Config
from .events import Event


class SyncService:
    def __init__(self, config: Config, account: Account, on_event: Callable[[Event], None] | None = None,
                 *, offline: bool = False):
        raise NotImplementedError  # filled in by the sync engine work

    # lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Start the worker threads (no-op when offline: the store is browsed as is)."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop threads, log out. Never loses a journal entry (they live in the store)."""

    # requests (non-blocking) -------------------------------------------------
    def wake(self) -> None:
        """The journal has new entries (a user intent): replay them soon."""

    def request_sync(self, folder: str | None = None) -> None:
        """Sync this folder (or all) now."""

    def watch_folder(self, folder: str) -> None:
        """The folder the user is looking at: synced first, and watched with IDLE."""

    def set_offline(self, offline: bool) -> None:
        """Go offline (close connections, keep queuing) or back online (reconnect, replay)."""

    # on-demand fetches (blocking: call from a worker thread, never the UI thread) ------
    def open_message(self, folder: str, uid: int, *, more: bool = False):
        """-> tuimail.sync.reader.MessageContent. Cached parts are used first; raises NotCached
        when offline and not cached, NetworkError on failure."""

    def fetch_raw(self, folder: str, uid: int) -> bytes:
        """The full raw message (raw-source view, pipe to command)."""

    def fetch_part(self, folder: str, uid: int, section: str) -> bytes:
        """A part's decoded content (save/open an attachment)."""
