"""Opening a message: BODYSTRUCTURE, then only the text part, in a bounded partial fetch, and
the text parts it shows inline (an attached message's text, a bounce's delivery status).

Cached structure and parts are used first (offline reading); nothing is fetched for attachments
until the user saves or opens one. Runs on whichever thread owns `conn` (the on-demand fetcher).

Messages are named by their local id (what the UI and the CLI hold); the store maps it to the
server id, the IMAP uid. The body cache is keyed by (folder, UIDVALIDITY, server id).
"""

from __future__ import annotations

import sqlite3
import time
from typing import NamedTuple
from dataclasses import replace

from tuimail.errors import NotCached, TuimailError, UsageError
from tuimail.mail.addresses import format_address_list
from tuimail.mail.headers import parse_date
from tuimail.mail.inline import inline_plan, is_message, message_headers
from tuimail.mail.part import attachments, choose_text_part, decode_transfer
from tuimail.protocol.imap.bodystructure import parse_bodystructure
from tuimail.mail.render import render_part_text
from tuimail.mail.sanitize import sanitize_line, sanitize_strict
from tuimail.protocol.imap.connection import ImapConnection
from tuimail.store import BodyCache, Store
from tuimail.core.content import Attachment, InlinePart, MessageContent
from tuimail.backends.imap.state import FolderState

SLICE = 256 * 1024  # first slice of a text part; "load more" fetches the rest
_UNCACHED = "[not cached: open the message online to see this part]"


class MessageOpener:
    def __init__(self, store: Store, bodies: BodyCache, conn: ImapConnection | None, prefer_html: bool = False):
        self.store = store
        self.bodies = bodies
        self.conn = conn  # None when offline
        self.prefer_html = prefer_html

    def _folder(self, folder: str):
        fi = self.store.folder(folder, counts=False)
        uidvalidity = FolderState.load(fi.state if fi is not None else None).uidvalidity
        if fi is None or uidvalidity is None:
            raise NotCached(f"folder {sanitize_line(folder)!r} is not in the local store; run `tuimail sync` first")
        return _Folder(fi.id, uidvalidity)

    def _ids(self, fi, id: int) -> tuple[str, int]:
        """(server id, IMAP uid) of the message with local id `id`."""
        sid = self.store.sid_of([id]).get(id)
        if sid is None or not sid.isdigit():
            raise NotCached(f"message {id} is not in the local store (run `tuimail sync`)")
        return sid, int(sid)

    def _select(self, folder: str) -> ImapConnection:
        if self.conn is None:
            raise NotCached("offline, and this message is not cached")
        if self.conn.selected != folder:
            self.conn.select(folder, readonly=True)
        return self.conn

    def structure(self, folder: str, id: int):
        fi = self._folder(folder)
        sid, uid = self._ids(fi, id)
        fi = fi._replace(sid=sid, uid=uid)
        bs = self.bodies.get_structure(folder, fi.uidvalidity, sid)
        if bs is None:
            bs = self._select(folder).fetch_bodystructure(uid)
            if bs is None:
                raise NotCached(f"message {id} is no longer on the server")
            self.bodies.put_structure(folder, fi.uidvalidity, sid, bs)
        return fi, bs

    def open(self, folder: str, uid: int, more: bool = False) -> MessageContent:
        """Message `uid` (its local id) of `folder`."""
        fi, bs = self.structure(folder, uid)
        root, notes = parse_bodystructure(bs)
        row = self.store.row(fi.id, uid)
        headers = []
        if row is not None:
            # display names parsed (quotes, escapes and comments out), then made safe to show;
            # zero-width and bidi characters shown, not dropped (a look-alike sender)
            headers = [("From", sanitize_strict(format_address_list(row.from_))),
                       ("To", sanitize_strict(format_address_list(row.to))),
                       ("Cc", sanitize_strict(format_address_list(row.cc))),
                       ("Date", _format_date(row.date) if row.date else ""),
                       ("Subject", sanitize_line(row.subject))]
            headers = [(k, v) for k, v in headers if v or k in ("From", "Subject")]
        return self._content(folder, fi, uid, root, notes, headers, more)

    def open_attached(self, folder: str, uid: int, section: str) -> MessageContent:
        """The message attached to message `uid` at `section` (message/rfc822), as a message of
        its own: its headers, text, attached messages and attachments (sections stay the outer
        message's, so saving one of its attachments fetches just that part)."""
        fi, bs = self.structure(folder, uid)
        root, notes = parse_bodystructure(bs)
        part = root.find(section)
        if part is None or not is_message(part) or not part.children:
            raise UsageError(f"part {sanitize_line(section)} of message {uid} is not an attached message")
        content = self._content(folder, fi, uid, part.children[0], notes, _safe_headers(part), True)
        return replace(content, section=section,
                       notes=[f"a message attached to message {uid} (part {section})", *content.notes])

    def _content(self, folder: str, fi, uid: int, root, notes: list[str], headers, more: bool) -> MessageContent:
        prefer = "html" if self.prefer_html else "plain"
        part = choose_text_part(root, prefer)
        plan = inline_plan(root, prefer, part)
        links: list[str] = []
        text, partial = "", False
        if part is not None:
            data, complete = self._text_data(folder, fi, uid, part, more)
            partial = not complete
            if partial:
                data = _cut_partial(data, part.encoding)
            text, links = render_part_text(data, part)
            if not partial:
                _index_body(self.store, uid, text)
            if partial:
                text += f"\n\n[showing {len(data) // 1024} KB of {part.size // 1024} KB — load more]"
        elif not plan:
            text = f"(no text part; {len(attachments(root))} attachment(s))"
        inline = [self._inline(folder, fi, uid, step, links) for step in plan]
        for p in _walk(root):
            if p.label and p.label not in notes:
                notes.append(p.label)
        atts = [Attachment(p.section, sanitize_strict(p.filename or _unnamed(p)), p.mimetype, p.size,
                           p.encoding, p.label) for p in attachments(root)]
        return MessageContent(folder, uid, headers, text, links, atts, notes, more=partial, inline=inline,
                              uncached=any(p.text is _UNCACHED for p in inline))

    def _text_data(self, folder: str, fi, uid: int, part, more: bool) -> tuple[bytes, bool]:
        """The transfer-encoded bytes of a part to show (the cache first), whole or its first SLICE."""
        cached = self.bodies.get_part(folder, fi.uidvalidity, fi.sid, part.section)
        if cached is not None and (cached[1] or not more):
            return cached
        conn = self._select(folder)
        want_all = more or part.size <= SLICE
        got = conn.fetch_section(fi.uid, part.section, 0, None if want_all else SLICE)
        data = got or b""
        complete = want_all or len(data) < SLICE
        self.bodies.put_part(folder, fi.uidvalidity, fi.sid, part.section, data, complete, part.size)
        return data, complete

    def _inline(self, folder: str, fi, uid: int, step, links: list[str]) -> InlinePart:
        """One attached message or delivery report: only its text part is fetched."""
        headers = _safe_headers(step.part) if step.kind == "message" else []
        shown = step.text if step.kind == "message" else step.part
        if shown is None:
            return InlinePart(step.title, headers, "(no text part)", step.depth, step.part.section)
        try:
            data, complete = self._text_data(folder, fi, uid, shown, False)
        except NotCached:
            return InlinePart(step.title, headers, _UNCACHED, step.depth, step.part.section)
        if not complete:
            data = _cut_partial(data, shown.encoding)
        text, more_links = render_part_text(data, shown, link_base=len(links))
        links.extend(more_links)
        if not complete:
            text += f"\n\n[showing {len(data) // 1024} KB of {shown.size // 1024} KB: save the part for the rest]"
        if step.kind == "message":
            inner = [p for p in attachments(step.part.children[0]) if not is_message(p)]
            if inner:  # its own attachments: listed once it is opened (v, Enter on it)
                names = ", ".join(sanitize_strict(p.filename or _unnamed(p)) for p in inner[:5])
                more = f" and {len(inner) - 5} more" if len(inner) > 5 else ""
                text += f"\n\n[its attachments: {names}{more}; v, then Enter on this message, to open it]"
        return InlinePart(step.title, headers, text, step.depth, step.part.section)

    def raw(self, folder: str, uid: int) -> bytes:
        fi = self._folder(folder)
        sid, imap_uid = self._ids(fi, uid)
        cached = self.bodies.get_part(folder, fi.uidvalidity, sid, "")
        if cached is not None and cached[1]:
            return cached[0]
        data = self._select(folder).fetch_section(imap_uid, "")
        if data is None:
            raise NotCached(f"message {uid} is no longer on the server")
        return data

    def part(self, folder: str, uid: int, section: str) -> bytes:
        fi, bs = self.structure(folder, uid)
        root, _ = parse_bodystructure(bs)
        p = next((x for x in _walk(root) if x.section == section), None)
        cached = self.bodies.get_part(folder, fi.uidvalidity, fi.sid, section)
        if cached is not None and cached[1]:
            data = cached[0]
        else:
            data = self._select(folder).fetch_section(fi.uid, section) or b""
        return decode_transfer(data, p.encoding if p else "")


class _Folder(NamedTuple):
    """The folder of a message being read, with the ids the server knows it by."""

    id: int
    uidvalidity: int
    sid: str = ""
    uid: int = 0


def _index_body(store: Store, id: int, text: str) -> None:
    """The shown text goes into the search index (~b); a store that cannot take it (full disk,
    locked) never keeps the message from opening."""
    from tuimail.store.search import index_body
    try:
        index_body(store, id, text)
    except (sqlite3.Error, TuimailError):
        pass


def _format_date(ts: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M", time.localtime(ts))


def _unnamed(p) -> str:
    """The name shown for an attachment without one: an attached message by its subject."""
    subject = p.headers.get("subject") if is_message(p) else None
    if subject:
        return f"{subject}.eml"
    return _NAMES.get(p.mimetype, f"part-{p.section}")


_NAMES = {"message/delivery-status": "delivery-status.txt", "text/rfc822-headers": "returned-headers.txt",
          "message/disposition-notification": "read-receipt.txt"}


def _safe_headers(part) -> list[tuple[str, str]]:
    """An attached message's headers, display names parsed, made safe to show."""
    out = []
    for name, value in message_headers(part):
        if name in ("From", "To", "Cc"):
            out.append((name, sanitize_strict(format_address_list(value))))
        elif name == "Date" and (ts := parse_date(value)) is not None:
            out.append((name, _format_date(ts)))  # as the message's own Date is shown
        else:
            out.append((name, sanitize_line(value)))
    return out


def _walk(part):
    stack = [part]
    while stack:
        p = stack.pop()
        yield p
        stack.extend(reversed(p.children))


def _cut_partial(data: bytes, encoding: str) -> bytes:
    """A slice may end inside a base64 quantum or a QP escape: cut back to a clean boundary."""
    enc = (encoding or "").lower()
    if enc == "base64":
        body = data.rstrip()
        last_nl = body.rfind(b"\n")
        return body[:last_nl + 1] if last_nl > 0 else body[: len(body) - len(body) % 4]
    if enc == "quoted-printable":
        last_nl = data.rfind(b"\n")
        return data[:last_nl + 1] if last_nl > 0 else data
    return data
