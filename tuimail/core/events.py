"""Events the sync side reports to whoever listens (the UI, the CLI). Plain data, thread-safe to pass.

The callback is called from a worker thread and must not block: the UI wraps it in
`App.post_message` (never `call_from_thread`, which waits for the UI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FoldersChanged:
    """The folder list or some folder's counts changed: reload `Store.folders()`."""

    account: str


@dataclass(frozen=True)
class RowsChanged:
    """Rows of a folder changed, by local id: `ids` changed in place (flags); `added`/`removed`
    change the folder's list of ids."""

    account: str
    folder_id: int
    ids: tuple[int, ...] = ()
    added: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    reset: bool = False  # the whole folder was reloaded (UIDVALIDITY change, threads recomputed)


@dataclass(frozen=True)
class SyncState:
    """state: 'connecting' | 'syncing' | 'idle' | 'offline' | 'error'."""

    account: str
    state: str
    folder: str | None = None
    done: int = 0
    total: int = 0
    pending: int = 0
    error: str | None = None
    # What the sync waits for before it tries again: "login" (the server refused the login) or
    # "password" (none configured). It does not retry on its own: `$` or a typed password.
    needs: str | None = None


@dataclass(frozen=True)
class NewMail:
    """Unseen messages arrived in `folder` since the last check (not on a folder's first fill)."""

    account: str
    folder: str
    count: int


Event = FoldersChanged | RowsChanged | SyncState | NewMail
"""Every event a backend reports (core/service.py: AccountService)."""

EventSink = Callable[[Event], None]
"""Where a service reports its events: called on the backend's thread, must not block."""
