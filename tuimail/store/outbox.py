"""The outbox: messages on their way out (issue #12 item 5), in the account's store file.

A plain object over a Store's connection (``Outbox(store.db)``). Every method is one SQL
statement, so each is atomic and committed when it returns (the connection is in autocommit
mode): a message is durable before the first byte goes to the server, and the drain
(backends/send.py) can be killed between any two steps without losing or duplicating state.

The states of an entry (the table is made by store/db.py's migration):

    queued        waits for hold_until (the undo window) and next_try (the backoff)
    sending       claimed by a drain; SMTP on the wire. A drain that finds one at its start
                  (holding the outbox lock, so its owner is dead) queues it again: the message
                  may go out once more, never more than once per crash.
    sent_unfiled  the server said 250; the Sent copy is to be filed
    filing        the Sent APPEND may be on the wire: look in Sent before appending again
    failed        the user must act (5xx, refused recipients, a delivery that may have happened):
                  retry() or cancel() it

An entry is deleted only after the 250 and the Sent copy (or when the account files its own).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["OutboxEntry", "Outbox", "STATES"]

STATES = ("queued", "sending", "sent_unfiled", "filing", "failed")

_COLS = ("id, created, message, mail_from, rcpts, accepted, refused, message_id, subject, state, hold_until,"
         " next_try, attempts, last_error, maybe_sent, filed, sent_at, reply, draft_folder, draft_sid")


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    created: float
    message: bytes = field(repr=False)  # the Sent copy: Bcc kept
    mail_from: str
    rcpts: tuple[str, ...]  # still to send to
    accepted: tuple[str, ...]  # the server took these: never sent to again
    refused: dict[str, tuple[int, str]]  # recipient -> (code, the server's reply)
    message_id: str | None
    subject: str
    state: str
    hold_until: float  # the undo window: not sent before
    next_try: float  # the backoff: not tried again before
    attempts: int
    last_error: str | None
    maybe_sent: bool  # the connection broke after the message was written: not resent by itself
    filed: bool  # the Sent copy is filed
    sent_at: float | None
    reply: str | None  # the server's answer to the message (its queue id)
    draft_folder: str | None  # the draft it came from (replaced once sent)
    draft_sid: str | None

    def due(self, now: float) -> bool:
        return self.state == "queued" and max(self.hold_until, self.next_try) <= now

    def held(self, now: float) -> bool:
        """In its undo window (cancel() gives it back)."""
        return self.state == "queued" and self.hold_until > now and self.attempts == 0

    def why(self, now: float | None = None) -> str:
        """What it waits for, one line (not sanitised: the server's text is in it)."""
        now = time.time() if now is None else now
        if self.state == "queued":
            if self.held(now):
                return f"held for undo until {_clock(self.hold_until)}"
            if self.next_try > now:
                return f"retry at {_clock(self.next_try)}" + (f": {self.last_error}" if self.last_error else "")
            return "waiting to be sent"
        if self.state == "sending":
            return "being sent"
        if self.state in ("sent_unfiled", "filing"):
            what = "sent; the copy in Sent is not filed yet"
            return what + (f": {self.last_error}" if self.last_error else "")
        return f"failed: {self.last_error or 'unknown error'}"


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _entry(row: tuple) -> OutboxEntry:
    refused = {k: (int(v[0]), str(v[1])) for k, v in json.loads(row[6]).items()}
    return OutboxEntry(row[0], row[1], bytes(row[2]), row[3], tuple(json.loads(row[4])), tuple(json.loads(row[5])),
                       refused, row[7], row[8], row[9], row[10], row[11], row[12], row[13], bool(row[14]),
                       bool(row[15]), row[16], row[17], row[18], row[19])


class Outbox:
    """The outbox table of one store. `db` is the Store's connection (autocommit)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    # ------------------------------------------------------------------ reading

    def entries(self) -> list[OutboxEntry]:
        return [_entry(r) for r in self.db.execute(f"SELECT {_COLS} FROM outbox ORDER BY id")]

    def get(self, entry_id: int) -> OutboxEntry | None:
        row = self.db.execute(f"SELECT {_COLS} FROM outbox WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def next_due(self) -> float | None:
        """When the next queued entry may go (None: none is queued)."""
        row = self.db.execute("SELECT min(max(hold_until, next_try)) FROM outbox WHERE state = 'queued'").fetchone()
        return row[0] if row else None

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    # ------------------------------------------------------------------ the user's side

    def add(self, message: bytes, mail_from: str, rcpts: Sequence[str], *, hold: float = 0.0,
            message_id: str | None = None, subject: str = "", draft: tuple[str, str] | None = None,
            now: float | None = None) -> int:
        """Queue a message (committed when this returns); it is not sent before now + hold."""
        now = time.time() if now is None else now
        cur = self.db.execute(
            "INSERT INTO outbox(created, message, mail_from, rcpts, message_id, subject, hold_until,"
            " draft_folder, draft_sid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now, bytes(message), mail_from, json.dumps(list(dict.fromkeys(rcpts))), message_id, subject,
             now + max(0.0, hold), draft[0] if draft else None, draft[1] if draft else None))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def cancel(self, entry_id: int) -> OutboxEntry | None:
        """Take a message back (undo, or discard a failed one): removed and returned if it is
        queued (not yet claimed by a drain) or failed; None if it is on its way or gone."""
        row = self.db.execute(f"DELETE FROM outbox WHERE id = ? AND state IN ('queued', 'failed') RETURNING {_COLS}",
                              (entry_id,)).fetchone()
        return _entry(row) if row else None

    def retry(self, entry_id: int) -> bool:
        """A failed entry queued again at once (the user read the reason and asks again)."""
        cur = self.db.execute("UPDATE outbox SET state = 'queued', next_try = 0, hold_until = 0, maybe_sent = 0"
                              " WHERE id = ? AND state = 'failed'", (entry_id,))
        return cur.rowcount == 1

    # ------------------------------------------------------------------ the drain's side

    def recover(self) -> list[int]:
        """Entries a dead drain left in 'sending' are queued again (call with the outbox lock held,
        so that no live drain owns them). Returns their ids."""
        rows = self.db.execute("UPDATE outbox SET state = 'queued', next_try = 0,"
                               " last_error = 'interrupted while sending; sending again'"
                               " WHERE state = 'sending' RETURNING id").fetchall()
        return [r[0] for r in rows]

    def due(self, now: float | None = None, *, ignore_backoff: bool = False) -> list[int]:
        """Queued entries past their undo window and (unless ignore_backoff: the network is back,
        the user asked) their next try, oldest first."""
        now = time.time() if now is None else now
        return [r[0] for r in self.db.execute(
            "SELECT id FROM outbox WHERE state = 'queued' AND hold_until <= ? AND (? OR next_try <= ?) ORDER BY id",
            (now, ignore_backoff, now))]

    def unfiled(self) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT id FROM outbox WHERE state IN ('sent_unfiled', 'filing') ORDER BY id")]

    def claim(self, entry_id: int, now: float | None = None, *, ignore_backoff: bool = False) -> OutboxEntry | None:
        """queued and due -> sending (attempts + 1), or None if it is not (cancelled, held)."""
        now = time.time() if now is None else now
        row = self.db.execute(
            f"UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ? AND state = 'queued'"
            f" AND hold_until <= ? AND (? OR next_try <= ?) RETURNING {_COLS}",
            (entry_id, now, ignore_backoff, now)).fetchone()
        return _entry(row) if row else None

    def postpone(self, entry_id: int, error: str, next_try: float) -> None:
        """A temporary failure (4xx, offline): queued again, not before next_try."""
        self.db.execute("UPDATE outbox SET state = 'queued', next_try = ?, last_error = ? WHERE id = ?"
                        " AND state = 'sending'", (next_try, error, entry_id))

    def postpone_queued(self, error: str, next_try: float, now: float) -> None:
        """Offline: every queued entry past its undo window waits for next_try too (their order kept)."""
        self.db.execute("UPDATE outbox SET next_try = max(next_try, ?), last_error = ? WHERE state = 'queued'"
                        " AND hold_until <= ?", (next_try, error, now))

    def fail(self, entry_id: int, error: str, *, maybe_sent: bool = False,
             refused: dict[str, tuple[int, str]] | None = None) -> None:
        """A permanent failure (5xx, every recipient refused, a message that may have gone):
        kept for the user, never sent again by itself."""
        self.db.execute("UPDATE outbox SET state = 'failed', last_error = ?, maybe_sent = ?,"
                        " refused = coalesce(?, refused) WHERE id = ?",
                        (error, int(maybe_sent), json.dumps(refused) if refused is not None else None, entry_id))

    def mark_sent(self, entry_id: int, accepted: Sequence[str], refused: dict[str, tuple[int, str]], reply: str,
                  now: float | None = None) -> None:
        """The server's 250: the accepted recipients are recorded (never sent to again), the ones
        it refused stay in `rcpts`."""
        now = time.time() if now is None else now
        self.db.execute(
            "UPDATE outbox SET state = 'sent_unfiled', sent_at = ?, reply = ?, last_error = NULL,"
            " accepted = (SELECT json_group_array(value) FROM (SELECT value FROM json_each(outbox.accepted)"
            "             UNION SELECT value FROM json_each(?))),"
            " rcpts = ?, refused = ? WHERE id = ?",
            (now, reply, json.dumps(list(accepted)), json.dumps(list(refused)),
             json.dumps({k: list(v) for k, v in refused.items()}), entry_id))

    def filing(self, entry_id: int) -> None:
        """The Sent APPEND is about to go on the wire."""
        self.db.execute("UPDATE outbox SET state = 'filing' WHERE id = ? AND state = 'sent_unfiled'", (entry_id,))

    def file_later(self, entry_id: int, error: str, next_try: float) -> None:
        """The Sent copy could not be filed now (offline, no Sent folder): it stays, the message
        is not sent again."""
        self.db.execute("UPDATE outbox SET state = 'sent_unfiled', last_error = ?, next_try = ? WHERE id = ?",
                        (error, next_try, entry_id))

    def done(self, entry_id: int, retry_at: float | None = None) -> OutboxEntry | None:
        """Sent and filed: removed, unless recipients were refused. Then it stays for them (the
        accepted ones are never sent to again): queued for `retry_at` when every refusal was
        temporary (4xx) and retry_at is given, else failed."""
        entry = self.get(entry_id)
        if entry is None:
            return None
        if not entry.rcpts:
            self.db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))
            return None
        lines = "; ".join(f"{r}: {c} {t}" for r, (c, t) in entry.refused.items()) or ", ".join(entry.rcpts)
        error = f"sent to {len(entry.accepted)}; refused for {lines}"
        temporary = bool(entry.refused) and all(400 <= c < 500 for c, _t in entry.refused.values())
        if temporary and retry_at is not None:
            self.db.execute("UPDATE outbox SET filed = 1, state = 'queued', next_try = ?, last_error = ? WHERE id = ?",
                            (retry_at, error + " (temporary: will retry)", entry_id))
        else:
            self.db.execute("UPDATE outbox SET filed = 1, state = 'failed', last_error = ? WHERE id = ?",
                            (error, entry_id))
        return self.get(entry_id)
