"""Opening a POP3 message: from its stored copy (the store holds the whole message once it is
downloaded), parsed by mail/parse.py into the same Part model and MessageContent the IMAP reader
gives, so the reader and `tuimail read` show it alike. A header-only copy (headers_first) gets
its body from the caller (`retr`: one UIDL + RETR) first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from tuimail.core.content import Attachment, InlinePart, MessageContent
from tuimail.errors import NotCached, UsageError
from tuimail.mail.addresses import format_address_list
from tuimail.mail.headers import parse_date
from tuimail.mail.inline import inline_plan, is_message, message_headers
from tuimail.mail.parse import ParsedMessage, parse_message
from tuimail.mail.part import Part, attachments, choose_text_part
from tuimail.mail.render import render_part_text
from tuimail.mail.sanitize import sanitize_line, sanitize_strict
from tuimail.store import Store
from tuimail.store.pop3ledger import LedgerEntry, Pop3Ledger

# (ledger entry) -> the whole message from the server, or raises NotCached/NetworkError
Retr = Callable[[LedgerEntry], bytes]


class Pop3Reader:
    def __init__(self, store: Store, retr: Retr | None, prefer_html: bool = False):
        self.store = store
        self.ledger = Pop3Ledger(store)
        self.retr = retr
        self.prefer_html = prefer_html

    def _fid(self, folder: str) -> int:
        fi = self.store.folder(folder, counts=False)
        if fi is None:
            raise NotCached(f"folder {sanitize_line(folder)!r} is not in the local store; run `tuimail sync` first")
        return fi.id

    def raw(self, folder: str, id: int) -> bytes:
        """The whole message; RETR'd now (and stored) if only its headers were downloaded."""
        fid = self._fid(folder)
        if self.store.row(fid, id) is None:
            raise NotCached(f"message {id} is not in {sanitize_line(folder)!r} (run `tuimail sync`)")
        got = self.ledger.message(id)
        if got is None:
            raise NotCached(f"message {id} has no stored copy")
        raw, entry = got
        if entry is not None and not entry.has_body:
            if self.retr is None:
                raise NotCached(f"only the headers of message {id} are downloaded")
            raw = self.retr(entry)
            self.ledger.set_body(entry.id, raw)
        return raw

    def parsed(self, folder: str, id: int) -> ParsedMessage:
        return parse_message(self.raw(folder, id))

    def open(self, folder: str, id: int, more: bool = False) -> MessageContent:
        msg = self.parsed(folder, id)
        row = self.store.row(self._fid(folder), id)
        headers = []
        if row is not None:
            headers = [("From", sanitize_strict(format_address_list(row.from_))),
                       ("To", sanitize_strict(format_address_list(row.to))),
                       ("Cc", sanitize_strict(format_address_list(row.cc))),
                       ("Date", _format_date(row.date) if row.date else ""),
                       ("Subject", sanitize_line(row.subject))]
            headers = [(k, v) for k, v in headers if v or k in ("From", "Subject")]
        content = self._content(folder, id, msg, msg.root, list(msg.notes), headers)
        _index_body(self.store, id, content.text)
        return content

    def open_attached(self, folder: str, id: int, section: str) -> MessageContent:
        msg = self.parsed(folder, id)
        part = msg.root.find(section)
        if part is None or not is_message(part) or not part.children:
            raise UsageError(f"part {sanitize_line(section)} of message {id} is not an attached message")
        content = self._content(folder, id, msg, part.children[0], list(msg.notes), _safe_headers(part))
        return replace(content, section=section,
                       notes=[f"a message attached to message {id} (part {section})", *content.notes])

    def part(self, folder: str, id: int, section: str) -> bytes:
        return self.parsed(folder, id).part_bytes(section)

    def _content(self, folder: str, id: int, msg: ParsedMessage, root: Part, notes: list[str],
                 headers) -> MessageContent:
        prefer = "html" if self.prefer_html else "plain"
        chosen = choose_text_part(root, prefer)
        plan = inline_plan(root, prefer, chosen)
        links: list[str] = []
        text = ""
        if chosen is not None:
            text, links = render_part_text(msg.part_raw(chosen.section), chosen)
        elif not plan:
            text = f"(no text part; {len(attachments(root))} attachment(s))"
        inline = []
        for step in plan:
            head = _safe_headers(step.part) if step.kind == "message" else []
            shown = step.text if step.kind == "message" else step.part
            if shown is None:
                inline.append(InlinePart(step.title, head, "(no text part)", step.depth, step.part.section))
                continue
            body, more_links = render_part_text(msg.part_raw(shown.section), shown, link_base=len(links))
            links.extend(more_links)
            inline.append(InlinePart(step.title, head, body, step.depth, step.part.section))
        for p in _walk(root):
            if p.label and p.label not in notes:
                notes.append(p.label)
        atts = [Attachment(p.section, sanitize_strict(p.filename or f"part-{p.section}"), p.mimetype, p.size,
                           p.encoding, p.label) for p in attachments(root)]
        return MessageContent(folder, id, headers, text, links, atts, notes, more=False, inline=inline)


def _index_body(store: Store, id: int, text: str) -> None:
    """The text shown, for the search of bodies (~b); derived data: a failure is not the reader's."""
    import sqlite3

    from tuimail.errors import StoreError
    from tuimail.store.search import index_body
    try:
        index_body(store, id, text)
    except (sqlite3.Error, StoreError):
        pass


def _format_date(ts: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M", time.localtime(ts))


def _safe_headers(part: Part) -> list[tuple[str, str]]:
    out = []
    for name, value in message_headers(part):
        if name in ("From", "To", "Cc"):
            out.append((name, sanitize_strict(format_address_list(value))))
        elif name == "Date" and (ts := parse_date(value)) is not None:
            out.append((name, _format_date(ts)))
        else:
            out.append((name, sanitize_line(value)))
    return out


def _walk(part: Part):
    stack = [part]
    while stack:
        p = stack.pop()
        yield p
        stack.extend(reversed(p.children))
