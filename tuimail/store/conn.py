"""The one SQLite connection of a Store and its transaction, shared by the store's parts.

Store is made of parts (journal.Journal, threads.ThreadOrder, failures.Failures), each a
StorePart holding this object: they write in the same transactions, on the same connection. It
is not shared between threads (each thread opens its own Store).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from tuimail.store.db import MIGRATIONS, connect


class StoreConn:
    def __init__(self, path: Path, migrations: list[str] = MIGRATIONS) -> None:
        self.path = path
        self.db: sqlite3.Connection = connect(path, migrations)
        self._tx_depth = 0

    @property
    def in_transaction(self) -> bool:
        """Inside transaction() (a read there sees the transaction's snapshot)."""
        return self._tx_depth > 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Atomic unit: every sync step commits all or nothing (nested calls join the outer one)."""
        if self._tx_depth:
            self._tx_depth += 1
            try:
                yield self.db
            finally:
                self._tx_depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._tx_depth = 1
        try:
            yield self.db
        except BaseException:
            self._tx_depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._tx_depth = 0
        self.db.execute("COMMIT")


class StorePart:
    """A part of Store: what it needs of the store, typed (the connection, its file, its
    transaction), from the StoreConn it shares with the other parts."""

    def __init__(self, conn: StoreConn) -> None:
        self._conn = conn
        self.db = conn.db
        self.path = conn.path

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """The store's transaction (nested calls join the outer one)."""
        return self._conn.transaction()
