"""Parse a whole raw message (corpus tests, POP3, messages fetched whole) into the same ``Part``
model as BODYSTRUCTURE, with sections numbered as IMAP numbers them.

This does not use ``email.message_from_bytes``: its parser recurses (about 1000 nested
multiparts raise RecursionError) and needs ~4 s for 100,000 parts even with compat32, so it
cannot be bounded from outside.  The splitter below is small and bounded instead: header lines
are read up to the first blank (or non-header) line, a multipart body is cut at its boundary
lines with one regex scan, nesting stops at 50 levels and the walk at 5000 parts (mutt's
limits), each noted.  It never raises: any failure degrades to showing the raw text with a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tuimail.mail.charset import decode_bytes
from tuimail.mail.headers import parse_header_block
from tuimail.mail.part import MAX_DEPTH, MAX_PARTS, NOTE_DEPTH, NOTE_PARTS
from tuimail.mail.part import Part, attachments, choose_text_part, decode_params, decode_transfer
from tuimail.mail.part import normalize_encoding, split_header_params
from tuimail.mail.render import render_part_text
from tuimail.mail.sanitize import sanitize

__all__ = ["ParsedMessage", "parse_message"]

_MAX_HEADER_BYTES = 256 * 1024

_HEADER_LINE_RE = re.compile(rb"[!-9;-~]+[ \t]*:|[ \t]")
_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(eq=False)
class ParsedMessage:
    headers: dict[str, str]  # lower-case name -> decoded value (not sanitised)
    root: Part
    text: str  # readable, sanitised text of the chosen part (notes first)
    attachments: list[Part]
    notes: list[str]
    links: list[str] = field(default_factory=list)  # link targets numbered in ``text`` (sanitised)
    raw: bytes = field(default=b"", repr=False)
    spans: dict[str, tuple[int, int, str]] = field(default_factory=dict, repr=False)

    def part_bytes(self, section: str) -> bytes:
        """The transfer-decoded content of the part with this IMAP section ("" if unknown)."""
        span = self.spans.get(section)
        if span is None:
            return b""
        start, end, encoding = span
        return decode_transfer(self.raw[start:end], encoding)

    def part_raw(self, section: str) -> bytes:
        """The still transfer-encoded bytes of a part, as IMAP ``BODY[section]`` returns them."""
        span = self.spans.get(section)
        return self.raw[span[0] : span[1]] if span else b""


class _Splitter:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.count = 0
        self.notes: list[str] = []
        self.spans: dict[str, tuple[int, int, str]] = {}

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def split_headers(self, start: int, end: int) -> tuple[bytes, int]:
        """(header block bytes, body start) of the entity in raw[start:end]."""
        raw = self.raw
        pos = start
        limit = min(end, start + _MAX_HEADER_BYTES)
        if raw.startswith(b"From ", pos):  # an mbox "From " line
            nl = raw.find(b"\n", pos, limit)
            pos = nl + 1 if nl >= 0 else end
        hstart = pos
        while pos < limit:
            nl = raw.find(b"\n", pos, end)
            line_end = nl + 1 if nl >= 0 else end
            line = raw[pos:line_end]
            if line in (b"\n", b"\r\n", b"\r"):
                return raw[hstart:pos], line_end
            if not _HEADER_LINE_RE.match(line):
                break  # no blank line before the body: it starts here
            pos = line_end
        return raw[hstart:pos], pos

    def entity(self, start: int, end: int, leaf_sec: str, multi_sec: str, prefix: str,
               depth: int, default: tuple[str, str] = ("text", "plain")) -> tuple[Part, dict]:
        self.count += 1
        block, body = self.split_headers(start, end)
        headers = parse_header_block(block) if block else {}
        ctype, cparams = split_header_params(headers.get("content-type"))
        maintype, _, subtype = ctype.lower().partition("/")
        maintype, subtype = maintype.strip(), subtype.strip()
        if not (_TOKEN_RE.match(maintype or "-") and _TOKEN_RE.match(subtype or "-")) or not subtype:
            maintype, subtype = default  # RFC 2045: invalid or missing -> the default type
        params = decode_params(cparams)
        multipart = maintype == "multipart"
        part = Part(multi_sec if multipart else leaf_sec, maintype, subtype, params)
        part.encoding = normalize_encoding(headers.get("content-transfer-encoding"))
        part.content_id = headers.get("content-id") or None
        part.description = headers.get("content-description") or None
        dtype, dparams = split_header_params(headers.get("content-disposition"))
        part.disposition = dtype.strip().lower() or None
        part.filename = decode_params(dparams).get("filename") or params.get("name") or None
        part.size = max(end - body, 0)
        self.spans[part.section] = (body, end, part.encoding)
        if multipart:
            if depth >= MAX_DEPTH:
                self.note(NOTE_DEPTH)
                part.maintype, part.subtype = "application", "octet-stream"
            else:
                self.multipart(part, body, end, prefix, depth)
            if part.maintype != "multipart" and part.section != leaf_sec:
                # degraded to a leaf: number it as one ("TEXT" -> "1")
                self.spans[leaf_sec] = self.spans.pop(part.section)
                part.section = leaf_sec
        elif maintype == "message" and subtype in ("rfc822", "global") and \
                part.encoding in ("7bit", "8bit", "binary"):
            if depth >= MAX_DEPTH:
                self.note(NOTE_DEPTH)
            elif self.count >= MAX_PARTS:
                self.note(NOTE_PARTS)
            else:
                inner, inner_headers = self.entity(body, end, leaf_sec + ".1", leaf_sec + ".TEXT", leaf_sec,
                                                   depth + 1)
                part.children.append(inner)
                part.headers = {k: inner_headers[k] for k in ("from", "to", "cc", "date", "subject")
                                if inner_headers.get(k)}
        elif maintype == "text":
            part.lines = self.raw.count(b"\n", body, end)
        return part, headers

    def multipart(self, part: Part, body: int, end: int, prefix: str, depth: int) -> None:
        boundary = part.params.get("boundary", "")
        if not boundary or len(boundary) > 200:
            self.note(f"malformed MIME: multipart without a usable boundary (part {part.section or 'TEXT'})")
            part.maintype, part.subtype = "text", "plain"
            return
        raw = self.raw
        delim = re.compile(b"--" + re.escape(boundary.encode("utf-8", "replace")) + rb"(--)?[ \t]*\r?$", re.M)
        starts: list[tuple[int, int]] = []  # (delimiter line start, content start)
        closed = False
        for m in delim.finditer(raw, body, end):
            s = m.start()
            if s > body and raw[s - 1] != 0x0A:  # must begin a line
                continue
            nl = raw.find(b"\n", m.end(), end)
            content = nl + 1 if nl >= 0 else end
            starts.append((s, content))
            if m.group(1):
                closed = True
                break
            if len(starts) > MAX_PARTS + 1:
                break
        if not starts or (closed and len(starts) == 1):
            self.note(f"malformed MIME: boundary not found (part {part.section}); shown as text")
            part.maintype, part.subtype = "text", "plain"
            return
        if not closed:
            starts.append((end, end))
        default = ("message", "rfc822") if part.subtype == "digest" else ("text", "plain")
        for index in range(len(starts) - 1):
            if self.count >= MAX_PARTS:
                self.note(NOTE_PARTS)
                break
            cstart, cend = starts[index][1], starts[index + 1][0]
            if cend > cstart and raw[cend - 1] == 0x0A:  # the line break before a delimiter
                cend -= 1                               # belongs to the delimiter
                if cend > cstart and raw[cend - 1] == 0x0D:
                    cend -= 1
            cend = max(cend, cstart)
            sec = f"{prefix}.{index + 1}" if prefix else str(index + 1)
            kid, _ = self.entity(cstart, cend, sec, sec, sec, depth + 1, default)
            part.children.append(kid)


def _count_label(n: int) -> str:
    return f"{n} attachment" + ("" if n == 1 else "s")


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse a whole RFC 5322 message.  Bounded in time and depth; never raises."""
    raw = bytes(raw or b"")
    splitter = _Splitter(raw)
    try:
        root, headers = splitter.entity(0, len(raw), "1", "TEXT", "", 0)
        notes = splitter.notes
        atts = attachments(root)
        chosen = choose_text_part(root)
        links: list[str] = []
        if chosen is not None:
            span = splitter.spans.get(chosen.section)
            data = raw[span[0] : span[1]] if span else b""
            text, links = render_part_text(data, chosen)
            if not text.strip():
                text = "(empty message)" if not atts else f"(empty text part; {_count_label(len(atts))})"
        else:
            label = root.label
            what = f"{label} message, no readable text part" if label and "encrypted" in label else "no text part"
            text = f"({what}; {_count_label(len(atts))})"
    except Exception as exc:  # RecursionError included; degrade to the raw text
        splitter = _Splitter(raw)
        block, body = splitter.split_headers(0, len(raw))
        try:
            headers = parse_header_block(block)
        except Exception:
            headers = {}
        notes = [f"could not parse the MIME structure ({type(exc).__name__}); showing the raw text"]
        root = Part("1", "text", "plain", size=len(raw) - body)
        splitter.spans = {"1": (body, len(raw), "7bit")}
        atts, links = [], []
        text = sanitize(decode_bytes(raw[body:], None)) or "(empty message)"
    if notes:
        text = "".join(f"[{sanitize(n)}]\n" for n in notes) + "\n" + text
    return ParsedMessage(headers, root, text, atts, list(notes), links, raw, splitter.spans)
