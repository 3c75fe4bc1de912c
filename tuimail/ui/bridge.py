"""From the sync worker threads to the UI: buffered, batched, never blocking the worker.

The ImapService calls `EventBridge.__call__` on its own thread. RowsChanged events are merged per
(account, folder) into one batch of uid sets; a single `SyncEvents` Textual message is posted
(with `App.post_message`, thread-safe and non-blocking — DESIGN.md §3) when the buffer goes from
empty to non-empty. The UI drains the whole buffer when that message arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tuimail.core.events import RowsChanged

if TYPE_CHECKING:
    from textual.message import Message

_SYNC_EVENTS: type[Message] | None = None


def _sync_events_class() -> type[Message]:
    """SyncEvents, made on first use: run_app creates the bridge (and may start the sync
    threads) before Textual is imported."""
    global _SYNC_EVENTS
    if _SYNC_EVENTS is None:
        from textual.message import Message

        class SyncEvents(Message):
            """Something is waiting in the bridge's buffer."""

        _SYNC_EVENTS = SyncEvents
    return _SYNC_EVENTS


def __getattr__(name: str) -> type[Message]:
    if name == "SyncEvents":
        return _sync_events_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class _Rows:
    """One folder's RowsChanged events, merged."""

    uids: set[int] = field(default_factory=set)
    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    reset: bool = False


class EventBridge:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, int], _Rows] = {}
        self._other: list[object] = []
        self._scheduled = False
        self._post: Callable[[Message], object] | None = None

    def attach(self, post: Callable[[Message], object]) -> None:
        """Start delivering (events that arrived earlier are delivered now)."""
        with self._lock:
            self._post = post
            pending = bool(self._rows or self._other)
            self._scheduled = pending
        if pending:
            post(_sync_events_class()())

    def detach(self) -> None:
        with self._lock:
            self._post = None
            self._scheduled = False

    def __call__(self, event: object) -> None:
        with self._lock:
            if isinstance(event, RowsChanged):
                entry = self._rows.setdefault((event.account, event.folder_id), _Rows())
                entry.uids.update(event.ids)
                entry.added.update(event.added)
                entry.removed.update(event.removed)
                entry.reset = entry.reset or event.reset
            else:
                self._other.append(event)
            post = self._post if not self._scheduled else None
            if post is not None:
                self._scheduled = True
        if post is not None:
            post(_sync_events_class()())

    def drain(self) -> list[object]:
        """Everything buffered, in order: other events first (states, folder lists), then one
        merged RowsChanged per folder."""
        with self._lock:
            rows, other = self._rows, self._other
            self._rows, self._other = {}, []
            self._scheduled = False
        out = list(other)
        for (account, folder_id), r in rows.items():
            out.append(RowsChanged(account, folder_id, tuple(sorted(r.uids - r.added - r.removed)),
                                   tuple(sorted(r.added - r.removed)), tuple(sorted(r.removed)), r.reset))
        return out
