"""JMAP Mail (RFC 8621) and EmailSubmission on top of the transport: the calls the backend makes.

- ``mailboxes``: Mailbox/get (all, with roles) and its state.
- ``first_page``: Email/query sorted by receivedAt newest first and Email/get of those ids by
  back-reference, in one request.
- ``changes`` / ``changes_many``: Email/changes and Mailbox/changes from stored states (both in one
  request), following hasMoreChanges, merged into one created/updated/destroyed answer per type. A
  state the server cannot calculate from raises StateInvalid. Polling is calling this on a timer
  (Cyrus 3.6 answers 204 to EventSource).
- ``set_emails``: Email/set (update patches, destroy) with ifInState: StateMismatch when someone
  else changed the account since that state; per-email refusals are returned, not raised.
- ``submit``: the message uploaded as a blob, Email/import into Drafts, EmailSubmission/set with an
  explicit envelope and onSuccessUpdateEmail (out of Drafts, into Sent), in one API request. The
  Bcc header is removed from the blob first: Cyrus relays the blob as it is, so a Bcc header would
  reach every recipient; Bcc recipients are only in the envelope's rcptTo.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuimail.errors import NetworkError, ProtocolError, UsageError
from tuimail.protocol.jmap.client import JmapClient
from tuimail.protocol.jmap.errors import MethodError, server_text

__all__ = ["HEADER_PROPERTIES", "Page", "Changes", "SetResult", "Submitted", "mailboxes", "first_page",
           "get_emails", "changes", "changes_many", "set_emails", "identities", "remove_bcc", "submit",
           "MaybeSubmitted", "import_email"]

# What a header row needs (the store's columns) and nothing more: the first screen stays small.
HEADER_PROPERTIES = ("id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "messageId",
                     "inReplyTo", "references", "from", "to", "cc", "subject", "sentAt", "hasAttachment")


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise ProtocolError(f"JMAP server sent no {what} list")
    return value


def _state(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"JMAP server sent no {what} state")
    return value


# -- mailboxes -----------------------------------------------------------------------------------


def mailboxes(client: JmapClient) -> tuple[str, list[dict[str, Any]]]:
    """(state, every mailbox with id, name, parentId, role, totalEmails, unreadEmails, ...)."""
    res = client.call("Mailbox/get", {"accountId": client.account_id, "ids": None})
    return _state(res.get("state"), "Mailbox"), _list(res.get("list"), "Mailbox")


# -- the first screen ----------------------------------------------------------------------------


@dataclass
class Page:
    query_state: str
    email_state: str
    position: int
    total: int | None
    ids: list[str]
    emails: list[dict[str, Any]]


def first_page(client: JmapClient, mailbox_id: str | None, *, limit: int = 100, position: int = 0,
               properties: Sequence[str] = HEADER_PROPERTIES) -> Page:
    """Newest first by receivedAt: Email/query and Email/get (#ids back-reference), one request."""
    acc = client.account_id
    batch = client.batch()
    query: dict[str, Any] = {"accountId": acc, "sort": [{"property": "receivedAt", "isAscending": False}],
                             "position": position, "limit": limit, "calculateTotal": True}
    if mailbox_id is not None:
        query["filter"] = {"inMailbox": mailbox_id}
    q = batch.call("Email/query", query)
    g = batch.call("Email/get", {"accountId": acc, "#ids": q.ref("/ids"), "properties": list(properties)})
    res = client.send(batch)
    qa, ga = res[q], res[g]
    total = qa.get("total")
    return Page(query_state=_state(qa.get("queryState"), "Email/query"), email_state=_state(ga.get("state"), "Email"),
                position=int(qa.get("position") or 0), total=total if isinstance(total, int) else None,
                ids=[str(i) for i in _list(qa.get("ids"), "Email/query ids")],
                emails=_list(ga.get("list"), "Email/get"))


def get_emails(client: JmapClient, ids: Sequence[str], properties: Sequence[str] | None = HEADER_PROPERTIES,
               **extra: Any) -> tuple[str, list[dict[str, Any]], list[str]]:
    """Email/get: (state, emails, notFound), in chunks of the server's maxObjectsInGet."""
    session = client.session or client.fetch_session()
    chunk = session.limit("maxObjectsInGet", 500)
    state, found, missing = "", [], []
    for start in range(0, max(len(ids), 1), chunk):
        args: dict[str, Any] = {"accountId": client.account_id, "ids": list(ids[start:start + chunk]), **extra}
        if properties is not None:
            args["properties"] = list(properties)
        res = client.call("Email/get", args)
        state = _state(res.get("state"), "Email")
        found += _list(res.get("list"), "Email/get")
        missing += [str(i) for i in res.get("notFound") or []]
    return state, found, missing


# -- changes -------------------------------------------------------------------------------------


@dataclass
class Changes:
    old_state: str
    new_state: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    requests: int = 0  # HTTP requests the answer took (shared ones counted for each type)
    # Mailbox/changes only: true when only the counts (totalEmails, unreadEmails, ...) changed
    counts_only: bool = False

    @property
    def empty(self) -> bool:
        return not (self.created or self.updated or self.destroyed)


_COUNT_PROPERTIES = frozenset({"totalEmails", "unreadEmails", "totalThreads", "unreadThreads"})
_CHANGE_TYPES = ("Email", "Mailbox", "Thread", "EmailSubmission", "Identity")


class _Merge:
    """Accumulates Foo/changes answers: an id created then destroyed in the window is gone, created
    then updated stays created, updated then destroyed is destroyed."""

    def __init__(self, type_: str, since: str):
        self.type, self.since, self.state = type_, since, since
        self.created: dict[str, None] = {}
        self.updated: dict[str, None] = {}
        self.destroyed: dict[str, None] = {}
        self.counts_only = True
        self.requests = 0

    def add(self, res: dict[str, Any]) -> bool:
        """Merge one answer; True if the server has more changes to give."""
        self.requests += 1
        for i in map(str, res.get("created") or []):
            self.created[i] = None
            self.destroyed.pop(i, None)
        for i in map(str, res.get("updated") or []):
            if i not in self.created:
                self.updated[i] = None
        for i in map(str, res.get("destroyed") or []):
            self.updated.pop(i, None)
            if i in self.created:
                del self.created[i]
            else:
                self.destroyed[i] = None
        props = res.get("updatedProperties")
        if res.get("created") or res.get("destroyed") or (
                res.get("updated") and not (isinstance(props, list) and set(props) <= _COUNT_PROPERTIES)):
            self.counts_only = False
        new_state = _state(res.get("newState"), f"{self.type}/changes")
        more = res.get("hasMoreChanges") is True
        if more and new_state == self.state:
            raise ProtocolError(f"JMAP server said hasMoreChanges but stayed at state {server_text(new_state, 40)}")
        self.state = new_state
        return more

    def result(self) -> Changes:
        return Changes(old_state=self.since, new_state=self.state, created=list(self.created),
                       updated=list(self.updated), destroyed=list(self.destroyed), requests=self.requests,
                       counts_only=self.type == "Mailbox" and self.counts_only and not self.empty_sets())

    def empty_sets(self) -> bool:
        return not (self.created or self.updated or self.destroyed)


def _changes_args(client: JmapClient, state: str, max_changes: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {"accountId": client.account_id, "sinceState": state}
    if max_changes:
        args["maxChanges"] = max_changes
    return args


def changes(client: JmapClient, type_: str, since: str, *, max_changes: int | None = None,
            max_rounds: int = 1000) -> Changes:
    """Foo/changes from `since` until hasMoreChanges is false, merged into one answer.
    StateInvalid (cannotCalculateChanges, or Cyrus's invalidArguments) means: resync."""
    return changes_many(client, {type_: since}, max_changes=max_changes, max_rounds=max_rounds)[type_]


def changes_many(client: JmapClient, since: dict[str, str], *, max_changes: int | None = None,
                 max_rounds: int = 1000) -> dict[str, Changes]:
    """Several types' changes (e.g. {"Mailbox": s1, "Email": s2}) in ONE request, then more requests
    only for a type whose server said hasMoreChanges: a resync that finds nothing is one small HTTP
    request. The first error (StateInvalid: resync) is raised."""
    for type_ in since:
        if type_ not in _CHANGE_TYPES:
            raise UsageError(f"no {type_}/changes")
    merges = {t: _Merge(t, s) for t, s in since.items()}
    pending = list(merges)
    rounds = 0
    while pending:
        rounds += 1
        if rounds > max_rounds:
            raise ProtocolError(f"JMAP changes still had more after {max_rounds} requests")
        batch = client.batch()
        refs = {t: batch.call(f"{t}/changes", _changes_args(client, merges[t].state, max_changes)) for t in pending}
        res = client.send(batch)
        pending = [t for t, ref in refs.items() if merges[t].add(res[ref])]
    return {t: m.result() for t, m in merges.items()}


# -- Email/set -------------------------------------------------------------------------------------


@dataclass
class SetResult:
    old_state: str | None
    new_state: str
    updated: list[str]
    destroyed: list[str]
    not_updated: dict[str, dict[str, Any]]  # id -> SetError {"type": ..., "description": ...}
    not_destroyed: dict[str, dict[str, Any]]


def set_emails(client: JmapClient, *, update: dict[str, dict[str, Any]] | None = None,
               destroy: Iterable[str] = (), if_in_state: str | None = None) -> SetResult:
    """Email/set. `update`: id -> patch ({"keywords/$seen": True}, {"keywords/$flagged": None},
    {"mailboxIds/<id>": True}). With if_in_state, StateMismatch if the account changed since."""
    args: dict[str, Any] = {"accountId": client.account_id}
    if update:
        args["update"] = update
    ids = list(destroy)
    if ids:
        args["destroy"] = ids
    if if_in_state is not None:
        args["ifInState"] = if_in_state
    res = client.call("Email/set", args)
    return SetResult(old_state=res.get("oldState"), new_state=_state(res.get("newState"), "Email/set"),
                     updated=list((res.get("updated") or {}).keys()), destroyed=list(res.get("destroyed") or []),
                     not_updated=dict(res.get("notUpdated") or {}), not_destroyed=dict(res.get("notDestroyed") or {}))


# -- sending ---------------------------------------------------------------------------------------


def identities(client: JmapClient) -> list[dict[str, Any]]:
    batch = client.batch()
    ref = batch.call("Identity/get", {"accountId": client.account_id, "ids": None})
    return _list(client.send(batch)[ref].get("list"), "Identity")


_BCC = re.compile(rb"^bcc[ \t]*:", re.IGNORECASE)


def remove_bcc(raw: bytes) -> bytes:
    """The message without its Bcc header field(s), folded lines included; the body untouched."""
    m = re.search(rb"\n\r?\n", raw)
    head, rest = (raw[:m.start() + 1], raw[m.start() + 1:]) if m else (raw, b"")
    out: list[bytes] = []
    skipping = False
    for line in head.splitlines(keepends=True):
        if line[:1] not in (b" ", b"\t"):
            skipping = bool(_BCC.match(line))
        if not skipping:
            out.append(line)
    return b"".join(out) + rest


class MaybeSubmitted(NetworkError):
    """The connection broke while the import + submission request was on the wire: the server may
    have sent the message (never sent again by itself)."""


def import_email(client: JmapClient, raw: bytes, mailbox_id: str, keywords: dict[str, bool] | None = None,
                 received_at: str | None = None) -> str:
    """Upload `raw` and Email/import it into one mailbox with these keywords; the new email's id.
    The typed error of the import (e.g. overQuota) is raised."""
    blob = client.upload(raw, "message/rfc822")
    item: dict[str, Any] = {"blobId": blob, "mailboxIds": {mailbox_id: True}, "keywords": keywords or {}}
    if received_at:
        item["receivedAt"] = received_at
    res = client.call("Email/import", {"accountId": client.account_id, "emails": {"m": item}})
    created = (res.get("created") or {}).get("m")
    if not isinstance(created, dict) or not isinstance(created.get("id"), str):
        raise _set_error("Email/import", (res.get("notCreated") or {}).get("m") or {})
    return str(created["id"])


@dataclass
class Submitted:
    email_id: str
    submission_id: str
    blob_id: str
    email_state: str | None


def submit(client: JmapClient, raw: bytes, *, mail_from: str, rcpt_to: Sequence[str], drafts_id: str,
           sent_id: str | None, identity_id: str | None = None) -> Submitted:
    """Send `raw` over JMAP: upload (without Bcc), Email/import into Drafts, EmailSubmission/set with
    the envelope (mailFrom, every recipient in rcptTo, Bcc ones included) and onSuccessUpdateEmail
    moving it from Drafts to Sent (kept in Drafts if there is no Sent mailbox). Raises the typed
    error of the import or the submission; nothing is retried here (the outbox decides)."""
    if not rcpt_to:
        raise UsageError("no recipients")
    blob = client.upload(remove_bcc(raw), "message/rfc822")
    if identity_id is None:
        ids = identities(client)
        wanted = mail_from.lower()
        match = [i for i in ids if str(i.get("email", "")).lower() == wanted] or ids
        if not match:
            raise UsageError("the JMAP account has no sending identity")
        identity_id = str(match[0]["id"])
    acc = client.account_id
    batch = client.batch()
    imp = batch.call("Email/import", {"accountId": acc, "emails": {
        "draft": {"blobId": blob, "mailboxIds": {drafts_id: True}, "keywords": {"$seen": True, "$draft": True}}}})
    on_success: dict[str, Any] = {"keywords/$draft": None}
    if sent_id is not None and sent_id != drafts_id:
        on_success.update({f"mailboxIds/{drafts_id}": None, f"mailboxIds/{sent_id}": True})
    sub = batch.call("EmailSubmission/set", {
        "accountId": acc,
        "create": {"send": {"identityId": identity_id, "emailId": "#draft",
                            "envelope": {"mailFrom": {"email": mail_from, "parameters": None},
                                         "rcptTo": [{"email": r, "parameters": None} for r in rcpt_to]}}},
        "onSuccessUpdateEmail": {"#send": on_success}})
    try:
        res = client.send(batch)
    except NetworkError as exc:
        raise MaybeSubmitted(f"{exc} while submitting: the message may have been sent") from None
    imported = res[imp]
    if "draft" not in (imported.get("created") or {}):
        err = (imported.get("notCreated") or {}).get("draft") or {}
        if err.get("type") == "alreadyExists" and isinstance(err.get("existingId"), str):
            # Cyrus keeps one email per blob: these very bytes are on the server already (a drain
            # killed after its submission, or a draft left by a failed cleanup)
            return _existing(client, err["existingId"], blob, identity_id, mail_from, rcpt_to, drafts_id, sent_id)
        raise _set_error("Email/import", err)
    email_id = str(imported["created"]["draft"]["id"])
    try:
        submitted = res[sub]
        if "send" not in (submitted.get("created") or {}):
            raise _set_error("EmailSubmission/set", (submitted.get("notCreated") or {}).get("send") or {})
    except MethodError:
        try:  # the draft imported for it goes again: nothing is left behind in Drafts
            set_emails(client, destroy=[email_id])
        except (MethodError, NetworkError, ProtocolError):
            pass
        raise
    email_state = None
    for name, args in res.all(sub):
        if name == "Email/set":  # the implicit onSuccessUpdateEmail call
            email_state = args.get("newState")
    return Submitted(email_id=email_id, submission_id=str(submitted["created"]["send"].get("id", "")),
                     blob_id=blob, email_state=email_state)


def _existing(client: JmapClient, email_id: str, blob: str, identity_id: str, mail_from: str,
              rcpt_to: Sequence[str], drafts_id: str, sent_id: str | None) -> Submitted:
    """The message is on the server already: in Sent without $draft it went out (a drain killed
    after the submission): not sent twice. Anywhere else it is submitted from where it is."""
    _state, found, _missing = get_emails(client, [email_id], ["id", "mailboxIds", "keywords"])
    e: dict[str, Any] = found[0] if found and isinstance(found[0], dict) else {}
    boxes: dict[str, Any] = e["mailboxIds"] if isinstance(e.get("mailboxIds"), dict) else {}
    keywords: dict[str, Any] = e["keywords"] if isinstance(e.get("keywords"), dict) else {}
    if sent_id is not None and boxes.get(sent_id) and not keywords.get("$draft"):
        return Submitted(email_id=email_id, submission_id="", blob_id=blob, email_state=None)
    acc = client.account_id
    on_success: dict[str, Any] = {"keywords/$draft": None}
    if sent_id is not None:
        on_success["mailboxIds"] = {sent_id: True}
    batch = client.batch()
    sub = batch.call("EmailSubmission/set", {
        "accountId": acc,
        "create": {"send": {"identityId": identity_id, "emailId": email_id,
                            "envelope": {"mailFrom": {"email": mail_from, "parameters": None},
                                         "rcptTo": [{"email": r, "parameters": None} for r in rcpt_to]}}},
        "onSuccessUpdateEmail": {"#send": on_success}})
    try:
        res = client.send(batch)
    except NetworkError as exc:
        raise MaybeSubmitted(f"{exc} while submitting: the message may have been sent") from None
    submitted = res[sub]
    if "send" not in (submitted.get("created") or {}):
        raise _set_error("EmailSubmission/set", (submitted.get("notCreated") or {}).get("send") or {})
    return Submitted(email_id=email_id, submission_id=str(submitted["created"]["send"].get("id", "")),
                     blob_id=blob, email_state=None)


def _set_error(method: str, err: dict[str, Any]) -> MethodError:
    return MethodError(method, str(err.get("type") or "notCreated"), str(err.get("description") or ""), err)
