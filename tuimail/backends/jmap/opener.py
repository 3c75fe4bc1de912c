"""Opening a JMAP message: Email/get of its bodyStructure, then the blob of the text part only
(attachments are downloaded when the user saves or opens one), rendered like the IMAP reader's.

The JSON bodyStructure becomes the shared MIME model (mail/part.py) with the JMAP partId as the
section; a blob is the part's content with the transfer encoding already undone. Structures and
parts are cached in the body cache under the Email id (immutable, account-wide), so a message is
readable offline once opened. An attached message (message/rfc822) is a blob: opening it downloads
and parses that blob (mail/parse.py).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from typing import Any

from tuimail.core.content import Attachment, MessageContent
from tuimail.errors import NotCached, TuimailError, UsageError
from tuimail.mail.addresses import format_address_list
from tuimail.mail.parse import parse_message
from tuimail.mail.part import MAX_DEPTH, MAX_PARTS, Part, attachments, choose_text_part, split_header_params
from tuimail.mail.part import decode_params
from tuimail.mail.render import render_part_text
from tuimail.mail.sanitize import sanitize_line, sanitize_strict
from tuimail.protocol.jmap import JmapClient
from tuimail.store import BodyCache, Store

CACHE = "@jmap"  # the body cache's "folder": an Email id names the message in every mailbox
BODY_PROPERTIES = ["partId", "blobId", "size", "name", "type", "charset", "disposition", "cid", "headers",
                   "subParts"]
MAX_TEXT = 16 << 20  # a text part larger than this is not downloaded whole (save it instead)
MAX_BLOB = 200 << 20


class Reader:
    def __init__(self, store: Store, bodies: BodyCache, client: JmapClient | None, prefer_html: bool = False):
        self.store, self.bodies, self.client, self.prefer_html = store, bodies, client, prefer_html

    def _sid(self, folder: str, id: int) -> tuple[int, str]:
        fi = self.store.folder(folder, counts=False)
        if fi is None:
            raise NotCached(f"folder {sanitize_line(folder)!r} is not in the local store; run `tuimail sync` first")
        sid = self.store.sid_of([id]).get(id)
        if sid is None:
            raise NotCached(f"message {id} is not in the local store (run `tuimail sync`)")
        return fi.id, sid

    def _client(self) -> JmapClient:
        if self.client is None:
            raise NotCached("offline, and this message is not cached")
        return self.client

    def structure(self, folder: str, id: int) -> tuple[int, str, dict[str, Any]]:
        fid, sid = self._sid(folder, id)
        data = self.bodies.get_structure(CACHE, 0, sid)
        if isinstance(data, str):
            import json
            return fid, sid, json.loads(data)
        client = self._client()
        res = client.call("Email/get", {"accountId": client.account_id, "ids": [sid],
                                        "properties": ["id", "blobId", "bodyStructure"],
                                        "bodyProperties": BODY_PROPERTIES})
        found = res.get("list") or []
        if not found:
            raise NotCached(f"message {id} is no longer on the server")
        email = found[0]
        import json
        self.bodies.put_structure(CACHE, 0, sid, json.dumps(email))
        return fid, sid, email

    def open(self, folder: str, id: int, more: bool = False) -> MessageContent:
        fid, sid, email = self.structure(folder, id)
        root, notes = to_parts(email.get("bodyStructure"))
        row = self.store.row(fid, id)
        headers: list[tuple[str, str]] = []
        if row is not None:
            headers = [("From", sanitize_strict(format_address_list(row.from_))),
                       ("To", sanitize_strict(format_address_list(row.to))),
                       ("Cc", sanitize_strict(format_address_list(row.cc))),
                       ("Date", time.strftime("%a, %d %b %Y %H:%M", time.localtime(row.date)) if row.date else ""),
                       ("Subject", sanitize_line(row.subject))]
            headers = [(k, v) for k, v in headers if v or k in ("From", "Subject")]
        prefer = "html" if self.prefer_html else "plain"
        part = choose_text_part(root, prefer)
        text, links = "", list[str]()
        if part is not None:
            if part.size > MAX_TEXT:
                text = f"[the text part is {part.size // 1024} KB: save it to read it]"
            else:
                text, links = render_part_text(self._blob(sid, part), part)
                _index_body(self.store, id, text)
        else:
            text = f"(no text part; {len(attachments(root))} attachment(s))"
        for p in root.walk():
            if p.label and p.label not in notes:
                notes.append(p.label)
        atts = [Attachment(p.section, sanitize_strict(p.filename or f"part-{p.section}"), p.mimetype, p.size,
                           p.encoding, p.label) for p in attachments(root)]
        return MessageContent(folder, id, headers, text, links, atts, notes)

    def _blob(self, sid: str, part: Part, limit: int = MAX_BLOB) -> bytes:
        cached = self.bodies.get_part(CACHE, 0, sid, part.section)
        if cached is not None and cached[1]:
            return cached[0]
        blob = part.params.get("x-jmap-blob")
        if not blob:
            return b""
        data = self._client().download(blob, name=part.filename or "part", type_=part.mimetype, max_bytes=limit)
        self.bodies.put_part(CACHE, 0, sid, part.section, data, True, part.size)
        return data

    def part(self, folder: str, id: int, section: str) -> bytes:
        _fid, sid, email = self.structure(folder, id)
        root, _ = to_parts(email.get("bodyStructure"))
        p = root.find(section)
        if p is None:
            raise UsageError(f"message {id} has no part {sanitize_line(section)}")
        return self._blob(sid, p)

    def raw(self, folder: str, id: int) -> bytes:
        _fid, sid, email = self.structure(folder, id)
        blob = email.get("blobId")
        if not isinstance(blob, str):
            raise NotCached(f"message {id} has no blob on the server")
        return self._blob(sid, Part("", "message", "rfc822", params={"x-jmap-blob": blob}))

    def open_attached(self, folder: str, id: int, section: str) -> MessageContent:
        data = self.part(folder, id, section)
        parsed = parse_message(data)
        h = parsed.headers
        headers = [(name, sanitize_strict(format_address_list(h.get(name.lower(), ""))) if name in ("From", "To", "Cc")
                    else sanitize_line(h.get(name.lower(), ""))) for name in ("From", "To", "Cc", "Date", "Subject")]
        headers = [(k, v) for k, v in headers if v or k in ("From", "Subject")]
        content = MessageContent(folder, id, headers, parsed.text, parsed.links,
                                 [Attachment(p.section, sanitize_strict(p.filename or f"part-{p.section}"), p.mimetype,
                                             p.size, p.encoding, p.label) for p in parsed.attachments],
                                 list(parsed.notes))
        return replace(content, section=section,
                       notes=[f"a message attached to message {id} (part {section})", *content.notes])


def _index_body(store: Store, id: int, text: str) -> None:
    """The shown text goes into the search index (~b), as the IMAP opener does; a store that
    cannot take it (full disk, locked) never keeps the message from opening."""
    from tuimail.store.search import index_body
    try:
        index_body(store, id, text)
    except (sqlite3.Error, TuimailError):
        pass


def to_parts(body: Any) -> tuple[Part, list[str]]:
    """A JMAP bodyStructure -> the Part tree (section = partId; multiparts are numbered like IMAP's
    so they have a section too), bounded like the MIME parser (depth, part count)."""
    notes: list[str] = []
    count = [0]

    def build(node: Any, section: str, depth: int) -> Part:
        count[0] += 1
        if not isinstance(node, dict):
            return Part(section)
        ctype = str(node.get("type") or "text/plain").lower()
        main, _, sub = ctype.partition("/")
        params: dict[str, str] = {}
        for h in node.get("headers") or []:
            if isinstance(h, dict) and str(h.get("name", "")).lower() == "content-type":
                _v, pairs = split_header_params(str(h.get("value") or ""))
                params = decode_params(pairs)
        if node.get("charset"):
            params["charset"] = str(node["charset"])
        if node.get("blobId"):
            params["x-jmap-blob"] = str(node["blobId"])
        pid = node.get("partId")
        part = Part(str(pid) if pid else section, main or "text", sub or "plain", params=params,
                    content_id=node.get("cid") if isinstance(node.get("cid"), str) else None,
                    encoding="binary", size=int(node.get("size") or 0) if isinstance(node.get("size"), int) else 0,
                    disposition=str(node["disposition"]).lower() if node.get("disposition") else None,
                    filename=str(node["name"]) if node.get("name") else None)
        kids = node.get("subParts") or []
        if kids and main == "multipart":
            if depth >= MAX_DEPTH:
                notes.append(f"message truncated: nesting deeper than {MAX_DEPTH} levels")
                return part
            for i, kid in enumerate(kids, 1):
                if count[0] >= MAX_PARTS:
                    notes.append(f"message truncated: more than {MAX_PARTS} parts")
                    break
                part.children.append(build(kid, f"{section}.{i}" if section != "TEXT" else str(i), depth + 1))
        return part

    return build(body, "TEXT", 0), notes
