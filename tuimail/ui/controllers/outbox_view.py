"""The Outbox in the app (issue #12 item 5): what each account's outbox holds past its undo window
(waiting for the network, waiting to retry, failed with the server's line) and the postponed
messages not yet stored in Drafts. It is the first section of the `!` list (screens/failed.py:
"what waits or failed"), with its own keys there:

    e      edit: the message goes back through the compose flow ($EDITOR, then the review
           screen); sending or postponing it replaces the outbox entry in one transaction
           (Sender.queue(instead_of=...)): nothing doubles, and quitting the editor or the review
           leaves the entry as it was
    r      retry now (a failed one is queued again; the drain is woken past its backoff)
    d      discard (asks): the message's text is first kept in a file under the state directory
           (like mutt's dead.letter) and the line says where
    Enter  the message (headers, text, attachments)

Everything that reads or writes the store runs in a thread: the screen posts OutboxRead /
OutboxDone to itself.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from tuimail import paths
from tuimail.mail import compose as mc
from tuimail.mail.headers import parse_header_block
from tuimail.mail.sanitize import sanitize_line
from tuimail.store.outbox import Outbox
from tuimail.store.postponed import Postponed
from tuimail.store.store import Store
from tuimail.ui.controllers.target import error_text
from tuimail.ui.controllers.view import MainView
from tuimail.ui.widgets.message_view import Line, text_lines

if TYPE_CHECKING:
    from tuimail.ui.controllers.compose import ComposeController

DISCARDED_DIR = "discarded"  # under the state directory: a discarded message's text, one .eml each


@dataclass(frozen=True)
class OutboxItem:
    account: str
    kind: str  # "outbox" | "postponed" (on its way to Drafts)
    id: int
    to: str
    subject: str
    state: str  # held | waiting | sending | failed | sent | postponed
    line: str  # what it waits for, one line, sanitised
    raw: bytes = field(repr=False, default=b"")
    accepted: tuple[str, ...] = ()  # delivered to these already (a partial refusal)

    @property
    def editable(self) -> bool:
        """Edit and discard: not while it is on its way or sent, nor in its undo window (u takes
        it back there: the countdown in the status bar is for it)."""
        return self.state in ("waiting", "failed", "postponed")


def _hhmm(t: float) -> str:
    return time.strftime("%H:%M", time.localtime(t))


def outbox_items(account: str, store: Store, *, offline: bool, now: float | None = None) -> list[OutboxItem]:
    """The account's outbox and postponed messages, oldest first (read in a thread)."""
    now = time.time() if now is None else now
    items: list[OutboxItem] = []
    for d in Postponed(store.db).entries():
        head = parse_header_block(d.message)
        items.append(OutboxItem(account, "postponed", d.id, sanitize_line(head.get("to", "")), sanitize_line(d.subject),
                                "postponed", sanitize_line(d.why(now)), d.message))
    for e in Outbox(store.db).entries():
        err = f": {e.last_error}" if e.last_error else ""
        if e.state == "queued":
            if e.held(now):
                state, line = "held", f"held for undo until {time.strftime('%H:%M:%S', time.localtime(e.hold_until))}"
            elif offline:
                state, line = "waiting", "waiting for the network (ctrl+o: back online)"
            elif e.next_try > now:
                state, line = "waiting", f"retry at {_hhmm(e.next_try)}{err}"
            else:
                state, line = "waiting", "waiting to be sent"
        elif e.state == "failed":
            state, line = "failed", f"failed: {e.last_error or 'unknown error'}"
        elif e.state == "sending":
            state, line = "sending", "being sent"
        else:
            state, line = "sent", e.why(now)
        items.append(OutboxItem(account, "outbox", e.id, sanitize_line(", ".join(e.rcpts or e.accepted)),
                                sanitize_line(e.subject), state, sanitize_line(line), e.message, e.accepted))
    return items


def keep_discarded(item: OutboxItem, now: float | None = None) -> Path:
    """Write a discarded message's bytes to a private file under the state directory (a message
    `tuimail send FILE` can send again); its path."""
    directory = paths.ensure_private_dir(paths.state_dir() / DISCARDED_DIR)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    name = f"{item.account}-{item.kind}{item.id}-{stamp}.eml".replace(os.sep, "_")
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(item.raw)
        f.flush()
        os.fsync(f.fileno())
    return path


def message_lines(item: OutboxItem) -> list[Line]:
    """The message as the user wrote it: its state, headers, text, attachment names."""
    try:
        d = mc.resume(item.raw)
    except Exception as exc:  # (never for bytes we made; a line rather than a traceback)
        return text_lines(f"{item.line}\n\n(cannot show the message: {error_text(exc)})")
    head = [f"State: {item.line}", f"From: {d.from_}", f"To: {d.to}"]
    head += [f"{n}: {v}" for n, v in (("Cc", d.cc), ("Bcc", d.bcc)) if v]
    head.append(f"Subject: {d.subject}")
    if item.accepted:
        head.append(f"Delivered already to: {', '.join(item.accepted)}")
    lines = [(sanitize_line(h), "header") for h in head] + [("", "text")]
    lines += text_lines(d.body)
    for a in d.attachments:
        lines.append((sanitize_line(f"[attachment: {a.filename}, {len(a.data)} bytes]"), "text"))
    return lines


class OutboxRead(Message, bubble=False):
    def __init__(self, items: list[OutboxItem]) -> None:
        super().__init__()
        self.items = items


class OutboxDone(Message, bubble=False):
    """An action on an entry is done (or not): its one line."""

    def __init__(self, line: str, severity: str = "information") -> None:
        super().__init__()
        self.line, self.severity = line, severity


class OutboxActions:
    """What the `!` list's Outbox section does; every store access runs in the caller's thread
    worker (read, retry, discard) or in the compose flow's (edit)."""

    def __init__(self, view: MainView, compose: ComposeController) -> None:
        self.view, self.compose = view, compose

    def _paths(self) -> dict[str, str]:
        return {a: str(st.path) for a, st in self.view.tapp.stores.items()}

    def read(self) -> list[OutboxItem]:
        """(In a thread.) Every account's entries, on connections of their own."""
        offline = bool(self.view.tapp.offline)
        items: list[OutboxItem] = []
        for account, path in self._paths().items():
            store = Store(path)
            try:
                items += outbox_items(account, store, offline=offline)
            finally:
                store.close()
        return items

    def _sender(self, account: str) -> Any:
        acc = self.compose._account(account)
        return self.compose.make_sender(acc) if acc is not None else None

    def retry(self, item: OutboxItem) -> OutboxDone:
        """(In a thread.) A failed entry queued again; the drain woken past its backoff."""
        sender = self._sender(item.account)
        if sender is None:
            return OutboxDone(f"no account {item.account!r} in the config", "error")
        if item.state == "failed" and not sender.retry(item.id):
            return OutboxDone("not retried: it is not failed any more", "warning")
        if item.state not in ("failed", "waiting", "postponed"):
            return OutboxDone(f"nothing to retry: {item.line}")
        self.view.tapp.call_from_thread(self._kick, item.account)
        if self.view.tapp.offline:
            return OutboxDone("queued again: it goes when the app is back online (ctrl+o)")
        what = "storing in Drafts" if item.kind == "postponed" else "sending"
        return OutboxDone(f"{what} now: {item.subject or '(no subject)'}")

    def _kick(self, account: str) -> None:
        d = self.compose._ensure_drainer(account)
        if d is not None:
            d.kick(ignore_backoff=True)

    def discard(self, item: OutboxItem) -> OutboxDone:
        """(In a thread.) The text kept in a file first, then the entry taken out; the file goes
        again if the entry was on its way (it is not discarded then)."""
        sender = self._sender(item.account)
        if sender is None:
            return OutboxDone(f"no account {item.account!r} in the config", "error")
        try:
            path = keep_discarded(item)
        except OSError as exc:
            return OutboxDone(f"not discarded: cannot keep its text: {exc.strerror or exc}", "error")
        if sender.discard(item.kind, item.id) is None:
            path.unlink(missing_ok=True)
            return OutboxDone("not discarded: it is on its way (or gone) meanwhile", "warning")
        return OutboxDone(f"discarded, not sent; its text is kept in {path}")

    def edit(self, item: OutboxItem) -> None:
        """The message back in $EDITOR, then the review screen; sent again, it replaces the entry."""
        from tuimail.ui.controllers.compose import ComposeSession

        view = self.view
        if not item.editable:
            view.notify(f"cannot edit it now: {item.line}", markup=False)
            return
        try:
            draft = mc.resume(item.raw)
        except Exception as exc:
            view.notify(f"cannot edit it: {error_text(exc)}", severity="error", markup=False)
            return
        try:
            session = ComposeSession.create(item.account, draft)
        except OSError as exc:
            view.notify(f"cannot write the edit file: {exc.strerror or exc}", severity="error", markup=False)
            return
        session.instead_of = (item.kind, item.id)
        if item.accepted:
            session.notes.append(f"delivered already to {', '.join(item.accepted)}: sent again, they get it twice")
        self.compose.edit(session)
