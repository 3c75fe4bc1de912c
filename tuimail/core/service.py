"""The contract between an account and everything above it: `AccountService` is all the UI and the
CLI know of an account, whatever its kind (IMAP today; POP3, JMAP later). A backend implements it
(tuimail/backends/<kind>/), tuimail/backends/registry.py maps `accounts.NAME.kind` to it.

    svc = registry.create_service(config, account, on_event, offline=False)
    svc.capabilities.push            # what this kind of account can do (Capabilities below)
    svc.start(); svc.watch_folder("INBOX"); svc.wake(); svc.stop()
    svc.open_message("INBOX", 42)    # a MessageContent (blocking: a worker thread, never the UI's)

Reads come from the Store, never from here; writes are intents on the Store followed by `wake()`.
Messages are named by (folder name, local message id): the store's id, whatever the server calls
the message (an IMAP uid, a POP3 UIDL, a JMAP Email id stay inside the backend).

Two kinds of methods:
- requests return at once and are safe from any thread (the UI thread included): start, stop,
  wake, request_sync, watch_folder, set_offline, set_password, hold_for_first_paint, ui_painted;
- the others block on the network or the cache: call them from a worker thread (the UI) or the
  CLI's main thread. A kind that cannot do one (see `capabilities`) raises `Unsupported`.

What happens on the sync side reaches the caller as `Event`s (core/events.py) through the
`EventSink` given at construction, on the backend's thread.

No I/O here, and nothing of tuimail but core/ and the shared error types.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tuimail.core.content import MessageContent
from tuimail.core.events import Event, EventSink
from tuimail.core.summary import SyncSummary
from tuimail.errors import Unsupported

__all__ = ["AccountService", "Capabilities", "Event", "EventSink", "Unsupported"]


@dataclass(frozen=True)
class Capabilities:
    """What an account of this kind can do through its service. A False here means the matching
    method raises `Unsupported` (or, for the first three, the UI does the work locally)."""

    server_flags: bool = False  # flags (seen, flagged, ...) live on the server and sync both ways
    push: bool = False  # the server tells of new mail as it arrives (IMAP IDLE, JMAP push)
    server_search: bool = False  # search(folder, query) asks the server
    append: bool = False  # append(folder, raw, flags) stores a message in a folder (Sent, Drafts)
    send: bool = False  # send(raw, ...) submits a message (SMTP, JMAP submission)
    server_folders: bool = False  # the server has folders (POP3 has one inbox, folders are local)
    # the server's message ids are integers a script may hold (IMAP uids): `tuimail list` prints
    # them as `uid` and `read`/`flag` take them; else those name a message by its local id
    server_uids: bool = False


@runtime_checkable
class AccountService(Protocol):
    """One account behind its backend. Message handles are (folder, id): id is the local message id.
    Positional-only parameters: each backend names them as it likes."""

    @property
    def capabilities(self) -> Capabilities: ...

    # lifecycle (non-blocking) ---------------------------------------------------------------
    def start(self) -> None:
        """Start the background sync (once); its events go to the sink given at construction."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background sync and close the connections (waits at most `timeout` seconds)."""

    def hold_for_first_paint(self) -> None:
        """Started before the UI (a first run): after the first window of headers, wait a moment
        for ui_painted() before fetching more."""

    def ui_painted(self) -> None:
        """The UI has drawn its first rows."""

    # requests (non-blocking, any thread) ----------------------------------------------------
    def wake(self) -> None:
        """An intent was written to the store's journal: send it now."""

    def request_sync(self, folder: str | None = None, /) -> None:
        """Sync this folder soon; None: every folder (the user's `$`, which also retries a
        refused login)."""

    def watch_folder(self, folder: str, /) -> None:
        """The folder the user looks at: synced first, and the one pushed changes are awaited on."""

    def set_offline(self, offline: bool, /) -> None:
        """Go offline (close the connections, read from the store and the cache only) or back online."""

    @property
    def offline(self) -> bool: ...

    def set_password(self, password: str, /) -> None:
        """A password the user typed (kept in memory only): log in with it now."""

    @property
    def login_blocked(self) -> str | None:
        """The refused login (or missing password) the service waits on the user for, or None."""

    # blocking: a worker thread or the CLI ----------------------------------------------------
    def sync_now(self, folder: str | None = None, /) -> SyncSummary:
        """One sync in the calling thread (the CLI's `tuimail sync`): every folder, or just `folder`.
        Sends the pending intents. Raises NetworkError, AuthError, UsageError (no such folder)."""

    def open_message(self, folder: str, id: int, /, *, more: bool = False) -> MessageContent:
        """The message as the reader shows it: the cache first, the network for what is missing
        (unless offline: NotCached). more=True: the whole text part, not only its first slice."""

    def open_attached(self, folder: str, id: int, section: str, /) -> MessageContent:
        """The message attached at `section` of message `id`, as a message of its own."""

    def fetch_raw(self, folder: str, id: int, /) -> bytes:
        """The whole message as the server has it (headers and body)."""

    def fetch_part(self, folder: str, id: int, section: str, /) -> bytes:
        """One part (an attachment), transfer encoding undone."""

    def search(self, folder: str, query: str, /) -> list[int]:
        """The ids of the messages of `folder` the server finds for `query`, newest first.
        Unsupported unless capabilities.server_search."""

    def send(self, raw: bytes, /, *, sender: str, recipients: Sequence[str]) -> None:
        """Submit a message (RFC 5322 bytes) to `recipients`. Unsupported unless capabilities.send."""

    def append(self, folder: str, raw: bytes, flags: Collection[str] = (), /) -> None:
        """Store a message in `folder` with these canonical flags (core/flags.py: "seen", ...).
        Unsupported unless capabilities.append."""
