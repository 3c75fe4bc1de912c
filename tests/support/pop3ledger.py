"""An in-memory `Ledger` (tuimail/backends/pop3/download.py) for POP3 sync tests, with fault hooks:
`after_commit(count)` runs after each durable commit (cut the connection there, kill the sync),
`fail_at` makes the nth commit raise as a full disk would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tuimail.backends.pop3.plan import KnownMessage, ServerMessage
from tuimail.errors import StoreError


@dataclass
class Row:
    uidl: str | None
    fingerprint: str
    raw: bytes
    downloaded_at: float
    has_body: bool
    on_server: bool = True
    order: tuple[int, int] = (0, 0)  # (the sync, the message number then): the server's order


class MemoryLedger:
    def __init__(self, *, now: float = 1_800_000_000.0, fail_at: int | None = None,
                 after_commit: Callable[[int], None] | None = None):
        self.rows: dict[int, Row] = {}
        self.now = now
        self.fail_at = fail_at
        self.after_commit = after_commit
        self.commits = 0
        self.syncs = 0

    def known(self) -> list[KnownMessage]:
        self.syncs += 1  # (each sync asks once, first)
        return [KnownMessage(ref, r.uidl, r.fingerprint, r.downloaded_at, r.has_body, r.on_server)
                for ref, r in self.rows.items()]

    def _count(self) -> None:
        self.commits += 1
        if self.fail_at is not None and self.commits == self.fail_at:
            raise StoreError("disk full (test)", kind="full")

    def commit(self, msg: ServerMessage, raw: bytes, fingerprint: str, headers_only: bool) -> int:
        self._count()
        ref = len(self.rows) + 1
        self.rows[ref] = Row(msg.uidl, fingerprint, raw, self.now, not headers_only, order=(self.syncs, msg.number))
        if self.after_commit:
            self.after_commit(self.commits)
        return ref

    def commit_many(self, items, headers_only: bool, fields=None) -> list[int]:
        """One commit() after the other: the hooks see each message (a window commits them all)."""
        return [self.commit(m, raw, fp, headers_only) for m, raw, fp in items]

    def commit_bodies(self, items) -> None:
        for ref, raw in items:
            self.commit_body(ref, raw)

    def commit_body(self, ref, raw: bytes) -> None:
        self._count()
        row = self.rows[ref]
        row.raw, row.has_body = raw, True
        if self.after_commit:
            self.after_commit(self.commits)

    def remap(self, ref, uidl: str | None) -> None:
        self.rows[ref].uidl = uidl

    def off_server(self, refs) -> None:
        for ref in refs:
            self.rows[ref].on_server = False

    def bodies(self) -> list[bytes]:
        """The stored copies in the server's order (a sync downloads the newest first)."""
        return [r.raw for r in sorted(self.rows.values(), key=lambda r: r.order)]
