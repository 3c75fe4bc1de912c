"""Postponed messages filed in the account's Drafts folder by the outbox drain (backends/send.py).

The user's postpone writes the message to the store first (store/postponed.py); a drain pass
files each waiting one here, before anything goes over SMTP (no [smtp] table is needed):

    appending (committed)    crash: the next drain looks for its Message-ID in Drafts first
    APPEND (flags draft, seen)
    the draft it replaces    removed (a resumed draft postponed again: one copy in Drafts)
    done (row deleted)

Offline or refused, the row stays and is tried again with backoff. An IMAP account files on the
drain's own connection (the one the Sent copy uses); another kind through its service's
append() where its capabilities say it can (AccountService contract).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuimail.core.flags import DRAFT, SEEN
from tuimail.errors import ConfigError, NetworkError, TuimailError, UsageError
from tuimail.store.postponed import Postponed, PostponedEntry

if TYPE_CHECKING:
    from tuimail.backends.send import DrainReport, Sender
    from tuimail.store.store import Store

DRAFT_FLAGS = (DRAFT, SEEN)


def file_postponed(sender: Sender, store: Store, report: DrainReport, ignore_backoff: bool) -> None:
    """One pass over the postponed messages that are due (ignore_backoff: every one)."""
    from tuimail.backends.send import backoff
    box = Postponed(store.db)
    for entry_id in box.due(sender.clock(), ignore_backoff=ignore_backoff):
        entry = box.get(entry_id)
        if entry is None:
            continue
        try:
            _file(sender, box, entry)
        except (NetworkError, UsageError, ConfigError) as exc:
            if isinstance(exc, NetworkError):
                sender._drop_conn()
            text = f"storing the draft in {entry.folder}: {exc}"
            box.later(entry.id, text, sender.clock() + backoff(entry.attempts + 1))
            report.draft_waiting.append((entry.id, text))
            if isinstance(exc, NetworkError):
                break  # offline: the others would wait the same way
            continue
        box.done(entry.id)
        report.drafted.append((entry.id, entry.folder))


def _file(sender: Sender, box: Postponed, entry: PostponedEntry) -> None:
    imap = sender.account.kind == "imap"
    if imap:
        conn = sender._imap()
        if not (entry.state == "appending" and entry.message_id
                and sender._in_folder(conn, entry.folder, entry.message_id)):
            box.appending(entry.id)
            sender._step("before_draft_append")
            _append_imap(conn, entry, sender.clock())
            sender._step("after_draft_append")
    else:
        svc = _service(sender)
        box.appending(entry.id)
        svc.append(entry.folder, entry.message, DRAFT_FLAGS)
    if entry.replaces_folder and entry.replaces_sid:
        _remove_old(sender, entry.replaces_folder, entry.replaces_sid)


def _append_imap(conn: Any, entry: PostponedEntry, now: float) -> None:
    from tuimail.backends.imap.flags import to_imap
    conn.append(entry.folder, entry.message, [to_imap(f) for f in DRAFT_FLAGS], now)


def _service(sender: Sender) -> Any:
    from tuimail.backends.registry import create_service
    if sender.config is None:
        raise UsageError(f"accounts.{sender.account.name}: no service to store drafts with")
    svc = create_service(sender.config, sender.account)
    if not svc.capabilities.append:
        raise UsageError(f"accounts.{sender.account.name}: this kind of account ({sender.account.kind})"
                         " cannot store drafts")
    return svc


def _remove_old(sender: Sender, folder: str, sid: str) -> None:
    """The draft this one was resumed from goes (it stays where that fails: nothing is lost)."""
    if sender.account.kind != "imap" or not sid.isdigit():
        return
    try:
        conn = sender._imap()
        conn.select(folder)
        try:
            conn.expunge_uids([int(sid)])
        finally:
            conn.unselect()
    except TuimailError as exc:
        from tuimail.trace import trace
        trace(f"postponed: the old draft {sid} in {folder} not removed: {exc}")
