"""Sending: the outbox of one account drained over SMTP, then the copy filed in Sent (a JMAP
account: over HTTP, and the server files the copy; backends/jmap/submit.py).

    sender = registry.create_sender(config, account)
    entry_id = sender.queue(raw)        # committed before anything goes out; held for undo_send s
    sender.cancel(entry_id)             # within the window (or while it waits): the message back
    report = sender.drain()             # one pass: what is due goes out, what was sent is filed

The order, and what a crash (kill -9) at each step leads to (store/outbox.py holds the states):

    claim (queued -> sending, committed)   crash: the next drain queues it again, sends it once
    SMTP ... 250                           crash: the same (one more copy: at most once more)
    mark_sent (-> sent_unfiled)            crash: the next drain files it; never sent again
    filing, APPEND to Sent (seen)          crash: the next drain looks for its Message-ID in Sent
    done (row deleted)                                 before appending

A drain holds the account's outbox lock (a file lock next to the sync lock), so the TUI and a
`tuimail send` never send the same entry twice, and an entry found in 'sending' belongs to a
dead drain. Failures are classified by protocol/smtp.py's SendError: temporary (4xx, offline)
-> retried with backoff; a refused login or TLS -> waits (30 min, or the user's flush) without
failing the message; permanent (5xx) -> failed with the server's line, kept for the user;
maybe_sent (the connection broke after the message was written) -> failed and marked, never
resent by itself; a partial refusal -> the accepted recipients recorded (never sent to again),
the entry kept as failed for the refused ones.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from tuimail import paths
from tuimail.backends.drafts import file_postponed
from tuimail.backends.imap.flags import to_imap
from tuimail.backends.lock import AccountLock, Busy
from tuimail.config.load import Account, Config, resolve_oauth2_token, resolve_password, run_secret_command
from tuimail.config.model import SMTP_PORTS
from tuimail.core.flags import SEEN
from tuimail.errors import ConfigError, NetworkError, TuimailError, UsageError
from tuimail.mail.build import without_bcc
from tuimail.mail.headers import parse_msgids
from tuimail.protocol import smtp
from tuimail.protocol.smtp import SendError, SmtpSettings
from tuimail.store.outbox import Outbox, OutboxEntry
from tuimail.store.postponed import Postponed, PostponedEntry
from tuimail.store.store import Store

__all__ = ["Sender", "DrainReport", "smtp_settings", "outbox_lock_path", "backoff", "prepare"]

_EOL = re.compile(rb"\r\n|\r|\n")
BACKOFF_BASE = 30.0  # seconds before the first retry; doubled each time
BACKOFF_MAX = 1800.0


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th temporary failure: 30, 60, 120, ... 30 min."""
    return min(BACKOFF_BASE * 2 ** max(0, attempts - 1), BACKOFF_MAX)


def outbox_lock_path(account_name: str) -> Path:
    lock = paths.lock_path(account_name)
    return lock.with_name(lock.stem + ".outbox.lock")


def smtp_settings(account: Account) -> SmtpSettings:
    """[accounts.NAME.smtp] with the account's values where it sets none, secrets resolved (a
    password command runs here). Credentials: the smtp table's own if it has any, else the
    account's; username = "" sends without AUTH."""
    s = account.smtp
    key = f"accounts.{account.name}.smtp"
    host = s.get("host", account.host)
    security = s.get("security", "starttls")
    port = s.get("port", SMTP_PORTS[security])
    username = s.get("username", account.username)
    own = any(k in s for k in ("password", "password_command", "oauth2_token_command"))
    password = token = None
    if username:
        if own:
            if "password" in s:
                password = s["password"]
            elif "password_command" in s:
                password = run_secret_command(s["password_command"], f"{key}.password_command")
            else:
                token = run_secret_command(s["oauth2_token_command"], f"{key}.oauth2_token_command")
        elif account.oauth2_token_command:
            token = resolve_oauth2_token(account)
        else:
            password = resolve_password(account)
    same_host = host == account.host
    return SmtpSettings(
        host=host, port=port, security=security, username=username or None, password=password, oauth2_token=token,
        ca_file=s.get("tls_ca_file") or (account.tls_ca_file if same_host else None),
        fingerprint=s.get("tls_fingerprint") or (account.tls_fingerprint if same_host and "port" not in s else None),
        timeout=s.get("timeout", account.timeout), allow_insecure=s.get("allow_insecure", account.allow_insecure),
        key=key)


@dataclass(frozen=True)
class Prepared:
    message: bytes  # CRLF, Date and Message-ID added where missing; Bcc kept (the Sent copy)
    mail_from: str
    rcpts: tuple[str, ...]
    message_id: str | None  # None: the message's own Message-ID header is unusable
    subject: str


def _addresses(name: str, values: list[Any]) -> list[str]:
    """The addr-specs of address header values (the policy's parsed headers: a display name
    with a comma, RFC 2047 encoded or not, stays one address)."""
    out = []
    for value in values:
        addresses = getattr(value, "addresses", None)
        if addresses is None:  # a plain string (the account's `from`)
            pairs = email.utils.getaddresses([str(value)])
        else:
            pairs = [(a.display_name, a.addr_spec) for a in addresses]
        for _display, addr in pairs:
            if not addr or addr == "<>":
                continue
            if "@" not in addr or not addr.rpartition("@")[2] or any(c.isspace() or ord(c) < 32 for c in addr):
                raise UsageError(f"{name}: {addr[:80]!r} is not an address (user@example.org)")
            out.append(addr)
    return out


def prepare(raw: bytes, default_from: str | None = None, now: float | None = None) -> Prepared:
    """An RFC 5322 message as it goes into the outbox (sendmail -t): the envelope from its
    headers (From; To, Cc and Bcc), Date and Message-ID added when missing, line ends CRLF.
    UsageError (one line) for what cannot be sent: no header block, no sender, no recipient, a
    line over 998 bytes."""
    data = _EOL.sub(b"\r\n", bytes(raw))
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if data and b":" not in data.split(b"\r\n", 1)[0]:
            raise UsageError("the message has no header block (From:, To:, Subject: ..., a blank line, the text)")
        data = data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b"\r\n"
        end = len(data) - 4
    try:
        return _prepare(data, end, default_from, now)
    except UsageError:
        raise
    except Exception as exc:  # the stdlib's header parser raises AttributeError, IndexError ... on garbage
        raise UsageError(f"cannot read the message's headers ({type(exc).__name__}); check From, To, Cc"
                         " and Bcc") from None


def _prepare(data: bytes, end: int, default_from: str | None, now: float | None) -> Prepared:
    head = BytesHeaderParser(policy=email_policy.SMTPUTF8).parsebytes(data[: end + 4])
    froms = _addresses("From", head.get_all("From") or [])
    rcpts = []
    for name in ("To", "Cc", "Bcc"):
        rcpts += _addresses(name, head.get_all(name) or [])
    extra = b""
    if not froms:
        if not default_from:
            raise UsageError("the message has no From: header and the account sets no `from`")
        extra += b"From: " + default_from.encode("utf-8") + b"\r\n"
        froms = _addresses("from", [default_from])
    if len(froms) != 1:
        raise UsageError("From: one address only (put the others in Reply-To)")
    rcpts = list(dict.fromkeys(rcpts))
    if not rcpts:
        raise UsageError("no recipient: the message has no To, Cc or Bcc address")
    if head.get("Date") is None:
        extra += b"Date: " + email.utils.formatdate(now, localtime=True).encode() + b"\r\n"
    message_id: str | None = None
    if head.get("Message-ID") is not None:  # the file's own, kept (None if it is garbage: not looked up in Sent)
        found = [i for i in parse_msgids(str(head.get("Message-ID"))) if i.isprintable() and i.isascii()]
        message_id = found[0] if found else None
    else:
        domain = froms[0].rpartition("@")[2].strip("[]")
        try:
            domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = "localhost"
        message_id = email.utils.make_msgid(domain=domain or "localhost")
        extra += b"Message-ID: " + message_id.encode() + b"\r\n"
    message = extra + data
    try:
        smtp.check_message(without_bcc(message), froms[0], rcpts)
    except SendError as exc:
        raise UsageError(str(exc)) from None
    subject = " ".join(str(head.get("Subject") or "").split())
    return Prepared(message, froms[0], tuple(rcpts), message_id, subject)


@dataclass
class DrainReport:
    """What one drain did. `busy`: another drain held the lock (nothing was done)."""

    sent: list[OutboxEntry] = field(default_factory=list)  # the server said 250 (with any refusals)
    filed: list[int] = field(default_factory=list)  # Sent copies filed (or not needed)
    postponed: list[tuple[int, str, float]] = field(default_factory=list)  # (id, reason, next try)
    failed: list[tuple[int, str]] = field(default_factory=list)  # kept for the user
    unfiled: list[tuple[int, str]] = field(default_factory=list)  # sent; the Sent copy waits
    refused: list[tuple[int, str]] = field(default_factory=list)  # sent to some; kept for the refused ones
    drafted: list[tuple[int, str]] = field(default_factory=list)  # postponed messages stored in (folder)
    draft_waiting: list[tuple[int, str]] = field(default_factory=list)  # postponed, not stored yet (why)
    busy: bool = False

    def line(self, name: str) -> str:
        if self.busy:
            return f"{name}: another tuimail is sending from this account; it will send the outbox"
        parts = [f"{len(self.sent)} sent"]
        if self.postponed:
            parts.append(f"{len(self.postponed)} waiting to retry ({self.postponed[-1][1]})")
        if self.refused:
            parts.append(f"{len(self.refused)} with refused recipients ({self.refused[-1][1]})")
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({self.failed[-1][1]})")
        if self.unfiled:
            parts.append(f"{len(self.unfiled)} not yet filed in Sent ({self.unfiled[-1][1]})")
        if self.drafted:
            parts.append(f"{len(self.drafted)} postponed to {self.drafted[-1][1]}")
        if self.draft_waiting:
            parts.append(f"{len(self.draft_waiting)} postponed, not yet in Drafts ({self.draft_waiting[-1][1]})")
        return f"{name}: " + ", ".join(parts)


def _instead_of(store: Store, old: tuple[str, int] | None, add: Callable[[tuple[str, str] | None], int]) -> int:
    """add(draft of the old entry) with the old entry taken out in one transaction: an edit of a
    message in the outbox replaces it; nothing doubles, and nothing is lost if the old one went."""
    if old is None:
        return add(None)
    kind, old_id = old
    store.db.execute("BEGIN IMMEDIATE")
    try:
        gone: OutboxEntry | PostponedEntry | None
        if kind == "outbox":
            gone = Outbox(store.db).cancel(old_id)
            ref = (gone.draft_folder, gone.draft_sid) if gone is not None else (None, None)
        else:
            gone = Postponed(store.db).cancel(old_id)
            ref = (gone.replaces_folder, gone.replaces_sid) if gone is not None else (None, None)
        if gone is None:
            raise UsageError("the message in the Outbox was sent (or is on its way) meanwhile: this edit"
                             " is not sent, so that it does not go twice")
        new_id = add((ref[0], ref[1]) if ref[0] and ref[1] else None)
    except BaseException:
        store.db.execute("ROLLBACK")
        raise
    store.db.execute("COMMIT")
    return new_id


class Sender:
    """The outbox of one account and its drain. Each method opens the store itself (any thread).
    A JMAP account's messages go out over HTTP (backends/jmap/submit.py) and the server files
    the Sent copy itself (onSuccessUpdateEmail); `settings` may be such a submitter.

    Tests inject `settings` (an SmtpSettings, or a callable making one), `open_imap` (a callable
    returning a connected ImapConnection), `clock`, and `step(name)`: called at each step of a
    message's way out (fault injection)."""

    def __init__(self, config: Config | None, account: Account, *, store_path: Path | None = None,
                 settings: SmtpSettings | Callable[[], SmtpSettings] | None = None,
                 open_imap: Callable[[], Any] | None = None, clock: Callable[[], float] = time.time,
                 step: Callable[[str], None] | None = None, lock_timeout: float = 0.0):
        self.config = config
        self.account = account
        self.store_path = store_path or paths.account_store_path(account.name)
        self._settings = settings
        self._open_imap = open_imap
        self.clock = clock
        self._step = step or (lambda name: None)
        self.lock_timeout = lock_timeout
        self._conn: Any = None
        self._submitter: Any = None  # a JMAP account's transport, closed after the drain

    @property
    def save_sent(self) -> bool:
        return bool(self.account.smtp.get("save_sent", True)) and self.account.kind == "imap"

    def _store(self) -> Store:
        paths.ensure_private_dir(self.store_path.parent)
        return Store(self.store_path)

    # ------------------------------------------------------------------ the user's side

    def queue(self, raw: bytes, *, hold: float | None = None, draft: tuple[str, str] | None = None,
              instead_of: tuple[str, int] | None = None) -> int:
        """Put an RFC 5322 message in the outbox (durable when this returns): sent after `hold`
        seconds (default: the account's undo_send). UsageError for a message that cannot go.
        instead_of: ("outbox" | "postponed", id), the entry this is an edit of: taken out in the
        same transaction (UsageError, nothing queued, if it was sent or is on its way meanwhile)."""
        default_from = self.account.smtp.get("from") or self.account.from_address
        p = prepare(raw, default_from, self.clock())
        with self._store() as store:
            def add(old_draft: tuple[str, str] | None) -> int:
                return Outbox(store.db).add(p.message, p.mail_from, p.rcpts, message_id=p.message_id,
                                            subject=p.subject, hold=self.account.undo_send if hold is None else hold,
                                            draft=draft or old_draft, now=self.clock())
            return _instead_of(store, instead_of, add)

    def postpone(self, raw: bytes, folder: str, *, replaces: tuple[str, str] | None = None,
                 instead_of: tuple[str, int] | None = None) -> int:
        """Keep a postponed message (durable when this returns); the drain stores it in `folder`
        (Drafts) flagged draft and seen, then removes `replaces` (the draft it was resumed from).
        instead_of: as for queue()."""
        end = raw.find(b"\r\n\r\n")
        head = BytesHeaderParser(policy=email_policy.SMTPUTF8).parsebytes(raw[: end + 4] if end >= 0 else raw)
        ids = parse_msgids(str(head.get("Message-ID") or ""))
        subject = " ".join(str(head.get("Subject") or "").split())
        with self._store() as store:
            def add(old_draft: tuple[str, str] | None) -> int:
                return Postponed(store.db).add(raw, folder, message_id=ids[0] if ids else None, subject=subject,
                                               replaces=replaces or old_draft, now=self.clock())
            return _instead_of(store, instead_of, add)

    def discard(self, kind: str, entry_id: int) -> OutboxEntry | PostponedEntry | None:
        """Take an outbox ("outbox") or postponed ("postponed") entry out: returned, or None if it
        is gone or on its way."""
        with self._store() as store:
            return Outbox(store.db).cancel(entry_id) if kind == "outbox" else Postponed(store.db).cancel(entry_id)

    def postponed(self) -> list[PostponedEntry]:
        with self._store() as store:
            return Postponed(store.db).entries()

    def cancel(self, entry_id: int) -> OutboxEntry | None:
        """Take a message back while it is not on its way (undo): removed and returned, or None."""
        with self._store() as store:
            return Outbox(store.db).cancel(entry_id)

    def entries(self) -> list[OutboxEntry]:
        with self._store() as store:
            return Outbox(store.db).entries()

    def retry(self, entry_id: int) -> bool:
        """A failed message queued again (the user read why); False if it is not failed."""
        with self._store() as store:
            return Outbox(store.db).retry(entry_id)

    def next_due(self) -> float | None:
        """When the next queued message may go (its undo window or backoff ends): the time to
        drain again (None: nothing is queued)."""
        with self._store() as store:
            times = [t for t in (Outbox(store.db).next_due(), Postponed(store.db).next_due()) if t is not None]
            return min(times) if times else None

    # ------------------------------------------------------------------ the drain

    def drain(self, *, only: int | None = None, ignore_backoff: bool = False) -> DrainReport:
        """One pass: file what was sent but not filed, send what is due (only `only` if given),
        file it. ignore_backoff: what waits for a retry goes now too (the network is back, the
        user asked); the undo window is always honoured. Returns at once with report.busy if
        another drain holds the outbox lock. ConfigError (a bad password command, ...)
        propagates with the outbox untouched."""
        report = DrainReport()
        lock = AccountLock(outbox_lock_path(self.account.name))
        try:
            lock.acquire(timeout=self.lock_timeout)
        except Busy:
            report.busy = True
            return report
        try:
            with self._store() as store:
                self._drain(Outbox(store.db), store, report, only, ignore_backoff)
        finally:
            submitter, self._submitter = self._submitter, None
            if submitter is not None:
                submitter.close()
            if self._conn is not None:
                try:
                    self._conn.close()
                except (OSError, TuimailError):
                    pass
                self._conn = None
            lock.release()
        return report

    def _drain(self, ob: Outbox, store: Store, report: DrainReport, only: int | None, ignore_backoff: bool) -> None:
        ob.recover()
        file_postponed(self, store, report, ignore_backoff)  # (no SMTP needed: before the settings)
        now = self.clock()
        for entry_id in ob.unfiled():
            entry = ob.get(entry_id)
            if entry is not None and (ignore_backoff or entry.next_try <= now):
                self._file(ob, store, entry, report)
        settings: SmtpSettings | Any = None
        for entry_id in ob.due(now, ignore_backoff=ignore_backoff):
            if only is not None and entry_id != only:
                continue
            if settings is None:
                settings = self._resolve()  # before the first claim: a ConfigError leaves the outbox as it was
            entry = ob.claim(entry_id, now, ignore_backoff=ignore_backoff)
            if entry is None:  # cancelled meanwhile
                continue
            self._step("before_send")
            try:
                if isinstance(settings, SmtpSettings):
                    result = smtp.send(settings, without_bcc(entry.message), entry.mail_from, entry.rcpts)
                else:  # a JMAP account: Email/import + EmailSubmission/set (backends/jmap/submit.py)
                    self._submitter = settings
                    result = settings.send(without_bcc(entry.message), entry.mail_from, entry.rcpts)
            except SendError as exc:
                self._failed(ob, entry, exc, report)
                if exc.kind in ("auth", "tls") or (exc.kind == "network" and not exc.maybe_sent):
                    # offline, or the login refused: the others would fail the same way; they
                    # wait as long (in order)
                    now_entry = ob.get(entry.id)
                    ob.postpone_queued(str(exc), now_entry.next_try if now_entry else self.clock(), self.clock())
                    break
                continue
            self._step("after_250")
            ob.mark_sent(entry.id, result.accepted, result.refused, result.reply, self.clock())
            report.sent.append(entry)
            self._step("after_mark")
            sent = ob.get(entry.id)
            if sent is not None:
                self._file(ob, store, sent, report)

    def _resolve(self) -> Any:
        """SmtpSettings, or for a JMAP account its submitter (the secret resolved now)."""
        s = self._settings
        if isinstance(s, SmtpSettings):
            return s
        if callable(s):
            return s()
        if self.account.kind == "jmap":
            from tuimail.backends.jmap.submit import JmapSubmitter
            return JmapSubmitter(self.account, self.store_path).resolve()
        if not self.account.smtp:
            raise ConfigError(f"accounts.{self.account.name}: no [accounts.{self.account.name}.smtp] table:"
                              " set its host (and port, security) to send mail")
        return smtp_settings(self.account)

    def _failed(self, ob: Outbox, entry: OutboxEntry, exc: SendError, report: DrainReport) -> None:
        text = str(exc)
        if exc.maybe_sent:
            text += " (not sent again by itself: check with the recipients, then retry or discard it)"
            ob.fail(entry.id, text, maybe_sent=True)
            report.failed.append((entry.id, text))
        elif exc.temporary or exc.kind in ("auth", "tls"):
            # a refused login or an untrusted certificate is the settings' fault, not the
            # message's: it waits (not retried soon: servers lock accounts after failed logins)
            at = self.clock() + (backoff(entry.attempts) if exc.temporary else BACKOFF_MAX)
            ob.postpone(entry.id, text, at)
            report.postponed.append((entry.id, text, at))
        else:
            ob.fail(entry.id, text, refused=exc.refused or None)
            report.failed.append((entry.id, text))

    # ------------------------------------------------------------------ the Sent copy

    def _imap(self) -> Any:
        if self._conn is None:
            if self._open_imap is not None:
                self._conn = self._open_imap()
            else:
                from tuimail.backends.imap.service import open_connection
                self._conn = open_connection(self.account)
        return self._conn

    def _file(self, ob: Outbox, store: Store, entry: OutboxEntry, report: DrainReport) -> None:
        if entry.filed or not self.save_sent:
            self._replace_draft(entry)
            self._done(ob, entry, report)
            return
        try:
            conn = self._imap()
            folder = self._sent_folder(store, conn)
            if entry.state == "filing" and entry.message_id and self._in_folder(conn, folder, entry.message_id):
                pass  # the APPEND of a killed drain arrived
            else:
                ob.filing(entry.id)
                self._step("before_append")
                conn.append(folder, entry.message, [to_imap(SEEN)], entry.sent_at or self.clock())
                self._step("after_append")
            self._replace_draft(entry)
        except (NetworkError, UsageError, ConfigError) as exc:
            if isinstance(exc, NetworkError):
                self._drop_conn()
            text = f"filing the copy in Sent: {exc}"
            ob.file_later(entry.id, text, self.clock() + backoff(entry.attempts))
            report.unfiled.append((entry.id, text))
            return
        self._done(ob, entry, report)

    def _done(self, ob: Outbox, entry: OutboxEntry, report: DrainReport) -> None:
        report.filed.append(entry.id)
        left = ob.done(entry.id, retry_at=self.clock() + backoff(entry.attempts))
        if left is not None:  # recipients were refused: kept for them (retried if it was a 4xx)
            report.refused.append((entry.id, left.last_error or "recipients refused"))

    def _drop_conn(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except (OSError, TuimailError):
                pass
            self._conn = None

    def _sent_folder(self, store: Store, conn: Any) -> str:
        configured = self.account.roles.get("sent")
        if configured:
            return configured
        fi = store.folder_by_role("sent")
        if fi is not None:
            return fi.name
        for e in conn.list_folders():
            if e.role == "sent":
                return str(e.name)
        raise UsageError(f"no Sent folder found: set accounts.{self.account.name}.roles.sent (or save_sent = false"
                         f" in accounts.{self.account.name}.smtp)")

    def _in_folder(self, conn: Any, folder: str, message_id: str) -> bool:
        from tuimail.protocol.imap import wire
        conn.select(folder, readonly=True)
        try:
            return bool(conn.search_uids([b"HEADER Message-ID ", wire.string(message_id)]))
        finally:
            conn.unselect()

    def _replace_draft(self, entry: OutboxEntry) -> None:
        """A message resumed from a draft replaces it once sent: the draft is removed."""
        if self.account.kind == "jmap" and entry.draft_folder and entry.draft_sid:
            self._replace_jmap_draft(entry.draft_sid)
            return
        if not (entry.draft_folder and entry.draft_sid and entry.draft_sid.isdigit()) or self.account.kind != "imap":
            return
        try:
            conn = self._imap()
            conn.select(entry.draft_folder)
            conn.expunge_uids([int(entry.draft_sid)])
            conn.unselect()
        except (NetworkError, UsageError) as exc:  # the draft stays: nothing is lost
            from tuimail.trace import trace
            trace(f"outbox: draft {entry.draft_sid} not removed: {exc}")

    def _replace_jmap_draft(self, email_id: str) -> None:
        from tuimail.backends.jmap.submit import JmapSubmitter
        try:
            if self._submitter is None:  # (a drain after a crash: the message went out in an earlier one)
                self._submitter = JmapSubmitter(self.account, self.store_path).resolve()
            self._submitter.destroy_draft(email_id)
        except (TuimailError, OSError) as exc:  # the draft stays: nothing is lost
            from tuimail.trace import trace
            trace(f"outbox: draft {email_id} not removed: {exc}")
