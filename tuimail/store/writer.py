"""User intents written off the UI thread (DESIGN.md §1: the UI never waits on SQLite's write lock).

    writer = IntentWriter(path, on_done, wake=service.wake)
    writer.submit(Intent("flags", folder_id, (id,), add=("flagged",)))   # returns at once
    writer.flush(timeout)    # every intent submitted so far is committed (or failed): quitting
    writer.close()

One thread per account with a Store connection of its own runs the intents one at a time, in the
order they were submitted (N then F on a message, a move after a flag), each in the transaction
that writes the row and its journal entry (journal.py), then wakes the sync service. While the
sync engine holds the write lock (a window of a first fill, a chunk of thread order) it is this
thread that waits, never the UI. on_done(intent, uids, error) is called on the writer thread
after each intent: the local ids the store changed, or the error (a StoreError with its one line, or
a ValueError) when the transaction changed nothing. It must not block (post a message).
"""

from __future__ import annotations

import itertools
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.store.sqlite_errors import store_error

if TYPE_CHECKING:  # (store.py imports this module: yield_to_intents)
    from tuimail.store.store import Store

_seq = itertools.count(1)
_waiting_lock = threading.Lock()
_waiting: dict[str, int] = {}  # store file (realpath) -> intents queued in this process


def _key(path: Path | str) -> str:
    return os.path.realpath(path)


def _count(key: str, delta: int) -> None:
    with _waiting_lock:
        n = _waiting.get(key, 0) + delta
        if n > 0:
            _waiting[key] = n
        else:
            _waiting.pop(key, None)


def yield_to_intents(path: Path | str, limit: float = 0.05) -> None:
    """Between two transactions of a long write (thread order): let the user's queued intents
    take the write lock first, for at most `limit` seconds. SQLite's busy handler sleeps longer
    and longer while it waits; a writer that commits and begins again at once would win the
    lock every time."""
    key = _key(path)
    if key not in _waiting:
        return
    end = time.monotonic() + limit
    while key in _waiting and time.monotonic() < end:
        time.sleep(0.001)


@dataclass(frozen=True)
class Intent:
    op: str  # 'flags' | 'move' | 'expunge' | 'copy' | 'undo' (ids: undo entries, store/undo.py)
    folder_id: int
    ids: tuple[int, ...]  # local message ids
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    dest: str | None = None
    seq: int = field(default_factory=lambda: next(_seq))  # submission order, across accounts
    record: bool = True  # kept in the undo history (not: a message marked read by opening it)


def run_intent(store: Store, intent: Intent) -> list[int]:
    """The intent's transaction on `store` (also what a synchronous caller runs), with its
    inverse written to the undo history in the same transaction (store/undo.py)."""
    if intent.op == "undo":
        return store.undo.undo(intent.ids)
    if not intent.record:
        return _run(store, intent)
    with store.transaction():
        before = store.undo.before(intent.ids)
        ids = _run(store, intent)
        if ids:
            store.undo.record(intent, before, ids)
    return ids


def _run(store: Store, intent: Intent) -> list[int]:
    if intent.op == "flags":
        return store.set_flags(intent.folder_id, intent.ids, add=intent.add, remove=intent.remove)
    if intent.op == "move":
        if intent.dest is None:
            raise ValueError("a move intent without a destination")
        return store.move(intent.folder_id, intent.ids, intent.dest)
    if intent.op == "expunge":
        return store.expunge(intent.folder_id, intent.ids)
    if intent.op == "copy":
        if intent.dest is None:
            raise ValueError("a copy intent without a destination")
        return store.copy(intent.folder_id, intent.ids, intent.dest)
    raise ValueError(f"unknown intent {intent.op!r}")


Done = Callable[[Intent, list[int], BaseException | None], None]


class IntentWriter:
    def __init__(self, path: Path | str, on_done: Done, *, wake: Callable[[], None] | None = None,
                 name: str = "intents", open_store: Callable[[Path], Store] | None = None) -> None:
        self.path = Path(path)
        self._key = _key(self.path)
        self._on_done, self._wake, self._name = on_done, wake, name
        self._open = open_store
        self._q: queue.SimpleQueue[Intent | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._queued = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failed: dict[int, BaseException] = {}  # seq -> error, until the UI took it (reported)

    @property
    def queued(self) -> int:
        """Intents submitted and not yet done."""
        with self._cond:
            return self._queued

    def start(self) -> None:
        """Start the thread (submit does it too; Thread.start waits until it runs, which under a
        busy sync thread can take several GIL switches: better before the first key)."""
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def submit(self, intent: Intent) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the intent writer is closed")
            self._queued += 1
            _count(self._key, 1)
        self.start()
        self._q.put(intent)

    def reported(self, intent: Intent) -> None:
        """The UI has shown the intent's failure."""
        with self._cond:
            self._failed.pop(intent.seq, None)

    def unreported(self) -> list[BaseException]:
        """Failures the UI has not shown (the app quit before their report arrived)."""
        with self._cond:
            return list(self._failed.values())

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every intent submitted so far is done; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._queued == 0, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then end the thread. Returns whether everything was written in time."""
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._q.put(None)
            thread.join(timeout if done else 0.1)
        return done

    def _run(self) -> None:
        store: Store | None = None
        try:
            while True:
                intent = self._q.get()
                if intent is None:
                    return
                ids: list[int] = []
                error: BaseException | None = None
                try:
                    if store is None:
                        store = self._open(self.path) if self._open else _open_store(self.path)
                    ids = run_intent(store, intent)
                except sqlite3.Error as exc:
                    error = store_error(exc, self.path)
                except Exception as exc:  # a StoreError opening the file, a bad flag: back to the UI
                    error = exc
                if ids and self._wake is not None:
                    try:
                        self._wake()
                    except Exception:
                        pass
                if error is not None:
                    with self._cond:
                        self._failed[intent.seq] = error  # (before the report: the UI takes it back)
                try:
                    self._on_done(intent, ids, error)
                except Exception:
                    pass  # the UI has gone (quitting): unreported() still has a failure
                _count(self._key, -1)
                with self._cond:
                    self._queued -= 1
                    self._cond.notify_all()
        finally:
            if store is not None:
                store.close()


def _open_store(path: Path) -> Store:
    from tuimail.store.store import Store

    return Store(path)
