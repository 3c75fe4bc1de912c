"""The store as download.py's `Ledger`: a committed message is a row of the account's local INBOX
with its ledger entry and stored copy (tuimail/store/pop3ledger.py), in one transaction each.

Rows added are reported in batches (RowsChanged with local ids), not one event per message.
commit_many / commit_bodies store a window of messages (what download.py got in one read of a
pipelined batch) with a few executemany statements in one transaction, durable when they
return: download.py sends each DELE only after the commit of its message returned.
With `batch` (an account that never DELEs: keep mode, no keep_days, no delete_on_server) the
messages are committed a few hundred per transaction too: a crash then loses downloads, never
mail (the server still has every message; the next sync downloads them again, once). Otherwise
each commit is its own transaction, durable before anything could DELE its messages.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Hashable

from tuimail.backends.pop3.plan import KnownMessage, ServerMessage, header_block
from tuimail.core.events import Event, RowsChanged
from tuimail.mail.headers import has_attachment, summarize
from tuimail.store.pop3ledger import Pop3Ledger
from tuimail.trace import trace

EVENT_EVERY = 0.25  # seconds between two RowsChanged of a long download (each commits a batch too)
BATCH_ROWS = 500  # at most this many messages per transaction when batched
FIRST_ROWS = 60  # the first report comes as soon as this many rows (a screenful) are committed
GONE = -math.inf  # the download time reported for a message the user deleted and wants off the server


def row_fields(raw: bytes, size: int, now: float, headers_only: bool) -> tuple:
    """(date, from_, to, cc, subject, message_id, in_reply_to, refs, size, has_attachment) of a
    message (or of its header block) for its row."""
    # (a header-only download is a TOP n 0 answer: its header block and the empty line, which
    # summarize stops at; a whole message is cut to its header block first)
    s = summarize(raw if headers_only else header_block(raw))
    date = s["date"] if s["date"] is not None else int(now)  # no Date: the download time
    return (date, s["from_"], s["to"], s["cc"], s["subject"], s["message_id"], s["in_reply_to"],
            s["references"], int(size or len(raw)), int(bool(s["has_attachment"])))


class StoreLedger:
    """download.py's Ledger on one account's store; new messages go to `inbox` (a folder id)."""

    def __init__(self, ledger: Pop3Ledger, inbox: int, account: str, emit: Callable[[Event], None] | None = None,
                 now: Callable[[], float] = time.time, *, delete_on_server: bool = False, batch: bool = False,
                 after_first: Callable[[], None] | None = None, after_headers: Callable[[], None] | None = None):
        self.ledger, self.inbox, self.account = ledger, inbox, account
        self.delete_on_server = delete_on_server
        self.batch = batch
        self._tx: contextlib.ExitStack | None = None
        self._tx_rows = 0  # messages written in the batch in progress
        self.emit = emit or (lambda e: None)
        self.now = now
        self.added: list[int] = []  # local ids committed by this sync
        self.changed: list[int] = []  # local ids whose body arrived
        self._pending: list[int] = []
        self._pending_changed: list[int] = []
        self._reported = False  # (no row reported yet: the first screenful goes out at once)
        self.after_first = after_first  # called once the first rows are reported (the UI may hold us)
        self.after_headers = after_headers  # called once every new header is committed (headers_done)
        self._last = time.monotonic()

    def known(self) -> list[KnownMessage]:
        """Every message ever downloaded. One the user deleted has no body to fetch; with
        delete_on_server it is reported downloaded at GONE (the service's policy: due at once)."""
        out = []
        for e in self.ledger.entries():
            if e.msg_id is None:
                when = GONE if self.delete_on_server and e.on_server else e.downloaded_at
                out.append(KnownMessage(e.id, e.uidl, e.fingerprint, when, True, e.on_server))
            else:
                out.append(KnownMessage(e.id, e.uidl, e.fingerprint, e.downloaded_at, e.has_body, e.on_server))
        return out

    def commit(self, msg: ServerMessage, raw: bytes, fingerprint: str, headers_only: bool) -> Hashable:
        return self.commit_many([(msg, raw, fingerprint)], headers_only)[0]

    def commit_many(self, items: list[tuple[ServerMessage, bytes, str]], headers_only: bool,
                    fields: list[tuple] | None = None) -> list[Hashable]:
        """commit() for each (message, raw, fingerprint), in one transaction (joined to the batch
        in progress when batched); the refs in order. `fields`: their row_fields, when worked
        out already (download.py's helper)."""
        if not items:
            return []
        now = self.now()
        first_of_tx = True
        if self.batch and self._tx is None:
            self._tx = contextlib.ExitStack()
            self._tx.enter_context(self.ledger.store.transaction())
        elif self.batch:
            first_of_tx = False
        try:
            if fields is None:
                fields = [row_fields(raw, m.size, now, headers_only) for m, raw, _ in items]
            pairs = self.ledger.add_many(
                self.inbox, [(m.uidl, fp, raw, f) for (m, raw, fp), f in zip(items, fields, strict=True)],
                headers_only, now, mark_threads=first_of_tx)
        except BaseException:
            self._abort()
            raise
        ids = [msg_id for _, msg_id in pairs]
        self._tx_rows += len(ids)
        self.added += ids
        self._pending += ids
        self._maybe_flush()
        return [lid for lid, _ in pairs]

    def commit_body(self, ref: Hashable, raw: bytes) -> None:
        self.commit_bodies([(ref, raw)])

    def commit_bodies(self, items: list[tuple[Hashable, bytes]]) -> None:
        """The whole messages for refs stored with headers_only, in one transaction."""
        refs: list[int] = []
        for ref, _ in items:
            assert isinstance(ref, int)
            refs.append(ref)
        try:
            ids = self.ledger.set_bodies([(ref, raw, has_attachment(header_block(raw)))
                                          for ref, (_, raw) in zip(refs, items, strict=True)])
        except BaseException:
            self._abort()  # (in a batch: no half of it is committed by the next flush)
            raise
        self._tx_rows += len(items)
        ids_there = [i for i in ids if i is not None]
        if ids_there:
            self.changed += ids_there
            self._pending_changed += ids_there
            self._maybe_flush()

    def remap(self, ref: Hashable, uidl: str | None) -> None:
        assert isinstance(ref, int)
        self.ledger.remap(ref, uidl)

    def off_server(self, refs: list[Hashable]) -> None:
        self.ledger.off_server([r for r in refs if isinstance(r, int)])

    def _maybe_flush(self) -> None:
        """Report (and commit) the first screenful at once, then every EVENT_EVERY seconds; in
        between, a batch is committed every BATCH_ROWS rows without a report: each report has the
        app read its list again (a 5,000-message first download reported every 500 rows had it
        reading ten times while it was drawing its first screen)."""
        if (not self._reported and len(self._pending) >= FIRST_ROWS) or time.monotonic() - self._last >= EVENT_EVERY:
            self.flush()
        elif self._tx_rows >= BATCH_ROWS:
            self._commit()

    def _abort(self) -> None:
        """A write failed inside a batch: roll the batch back (no half-stored message is kept;
        its messages are downloaded again by the next sync) and report none of it."""
        tx, self._tx = self._tx, None
        self._tx_rows = 0
        if tx is None:
            return
        tx.__exit__(*sys.exc_info())  # ROLLBACK
        gone = set(self._pending) | set(self._pending_changed)
        self.added = [i for i in self.added if i not in gone]
        self.changed = [i for i in self.changed if i not in gone]
        self._pending, self._pending_changed = [], []

    def headers_done(self) -> None:
        """headers_first: every new message's header block is committed. Report them now (flush),
        then after_headers, once (the app's child waits there for its first screen)."""
        self.flush()
        after, self.after_headers = self.after_headers, None
        if after is not None:
            after()

    def _commit(self) -> None:
        tx, self._tx = self._tx, None
        self._tx_rows = 0
        if tx is not None:
            tx.close()  # COMMIT

    def flush(self) -> None:
        """Commit a batch in progress, then report the rows committed since the last report."""
        self._last = time.monotonic()
        self._commit()
        if self._pending or self._pending_changed:
            added, changed = tuple(self._pending), tuple(self._pending_changed)
            if not self._reported:
                trace(f"pop3: first rows committed {len(added)}")
            self._reported = True
            self._pending, self._pending_changed = [], []
            self.emit(RowsChanged(self.account, self.inbox, ids=changed, added=added))
            if added and self.after_first is not None:
                after, self.after_first = self.after_first, None
                after()
