"""The MIME part model shared by whole-message parsing (parse.py) and the IMAP backend's
BODYSTRUCTURE parsing (protocol/imap/bodystructure.py): the ``Part`` tree, parameter decoding
(RFC 2231 / stray RFC 2047), choosing the part to display, listing attachments, and lossy
transfer/charset decoding.
"""

from __future__ import annotations

import binascii
import re
import urllib.parse
from dataclasses import dataclass, field
from collections.abc import Iterator

from tuimail.mail.charset import decode_bytes
from tuimail.mail.headers import decode_words

# mutt's limits for a message's MIME structure; past them the structure is cut and noted.
MAX_DEPTH = 50
MAX_PARTS = 5000
NOTE_PARTS = f"message truncated: more than {MAX_PARTS} parts"
NOTE_DEPTH = f"message truncated: nesting deeper than {MAX_DEPTH} levels"

__all__ = [
    "Part", "decode_params", "split_header_params", "choose_text_part", "attachments",
    "decode_transfer", "decode_text",
]


@dataclass(eq=False)
class Part:
    """One MIME entity.  ``section`` is the IMAP section string: "1", "1.2"; a single-part
    message's body is "1" (as IMAP numbers it); a multipart root is "TEXT"; the multipart body
    of a message/rfc822 part at "N" is "N.TEXT" and its children are "N.1", "N.2"..."""

    section: str
    maintype: str = "text"
    subtype: str = "plain"
    params: dict[str, str] = field(default_factory=dict)
    content_id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    size: int = 0
    lines: int | None = None
    disposition: str | None = None
    filename: str | None = None  # decoded, NOT made safe: sanitize_strict() it, never trust as a path
    children: list[Part] = field(default_factory=list)
    # message/rfc822 parts: the attached message's From, To, Cc, Date, Subject (lower-case names;
    # decoded, NOT sanitised), from the BODYSTRUCTURE envelope or the parsed headers
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def mimetype(self) -> str:
        return f"{self.maintype}/{self.subtype}"

    @property
    def charset(self) -> str | None:
        return self.params.get("charset") or None

    @property
    def is_multipart(self) -> bool:
        return self.maintype == "multipart"

    @property
    def is_attachment(self) -> bool:
        if self.maintype == "multipart":
            return False
        if self.disposition == "attachment":
            return True
        if self.maintype == "text":
            return bool(self.filename) and self.disposition != "inline"
        return True  # image, application, audio, video, message/rfc822...: a non-text leaf

    @property
    def label(self) -> str | None:
        """"signed (PGP/MIME)", "encrypted (S/MIME)"... for crypto containers, else None."""
        mime = self.mimetype
        proto = self.params.get("protocol", "").strip().lower()
        if mime == "multipart/signed":
            if "pgp" in proto:
                return "signed (PGP/MIME)"
            if "pkcs7" in proto:
                return "signed (S/MIME)"
            return "signed"
        if mime == "multipart/encrypted":
            return "encrypted (PGP/MIME)" if "pgp" in proto or not proto else "encrypted"
        if mime in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
            if self.params.get("smime-type", "").lower() == "signed-data":
                return "signed (S/MIME)"
            return "encrypted (S/MIME)"
        return None

    def walk(self) -> Iterator[Part]:
        """This part and every descendant, depth first, in order (iterative)."""
        stack = [self]
        while stack:
            part = stack.pop()
            yield part
            stack.extend(reversed(part.children))

    def find(self, section: str) -> Part | None:
        for part in self.walk():
            if part.section == section:
                return part
        return None


# ---------------------------------------------------------------------------- parameters

_CONT_RE = re.compile(r"^(.+?)\*(\d{1,4})(\*?)$")
_MAX_SEGMENTS = 500


def decode_params(pairs) -> dict[str, str]:
    """(name, value) pairs -> {lower-case name: decoded value}; RFC 2231 (``name*``,
    ``name*0*``...) and stray RFC 2047 words (``name="=?utf-8?B?...?="``) decoded; first wins."""
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    segments: dict[str, dict[int, tuple[str, bool]]] = {}
    for key, value in pairs:
        key = (key or "").strip().lower()
        value = value if isinstance(value, str) else ""
        if not key:
            continue
        m = _CONT_RE.match(key)
        if m is not None:
            segs = segments.setdefault(m.group(1), {})
            if len(segs) < _MAX_SEGMENTS:
                segs.setdefault(int(m.group(2)), (value, bool(m.group(3))))
        elif key.endswith("*"):
            extended.setdefault(key[:-1], _decode_2231(value))
        else:
            plain.setdefault(key, value)
    for name, segs in segments.items():
        charset, chunks = None, []
        for n in sorted(segs):
            value, encoded = segs[n]
            if n == 0 and encoded and value.count("'") >= 2:
                charset, _, value = value.split("'", 2)
            chunks.append(urllib.parse.unquote_to_bytes(value) if encoded else value.encode("utf-8"))
        extended.setdefault(name, decode_bytes(b"".join(chunks), charset or "utf-8"))
    result = {}
    for key, value in plain.items():
        result[key] = decode_words(value) if "=?" in value else value
    result.update(extended)
    return result


def _decode_2231(value: str) -> str:
    charset = None
    if value.count("'") >= 2:
        charset, _, value = value.split("'", 2)
    return decode_bytes(urllib.parse.unquote_to_bytes(value), charset or "utf-8")


# A ';'-separated segment: runs of plain characters or quoted strings (possessive: no backtracking).
_SEGMENT_RE = re.compile(r'(?:[^;"]++|"(?:[^"\\]++|\\.)*+"?)++')
_UNESCAPE_RE = re.compile(r"\\(.)")


def split_header_params(value: str | None) -> tuple[str, list[tuple[str, str]]]:
    """'text/plain; charset="utf-8"; name=a.txt' -> ('text/plain', [('charset', 'utf-8'), ...]).
    Quotes are removed, backslash escapes undone; garbage segments are skipped."""
    if not value:
        return "", []
    segs = _SEGMENT_RE.findall(value[:65536])
    if not segs:
        return "", []
    main = segs[0].strip() if not value.lstrip().startswith(";") else ""
    pairs = []
    for seg in segs[0 if main == "" else 1 :]:
        key, eq, val = seg.partition("=")
        if not eq:
            continue
        val = val.strip()
        if val.startswith('"'):
            val = val[1:-1] if len(val) > 1 and val.endswith('"') else val[1:]
            if "\\" in val:
                val = _UNESCAPE_RE.sub(r"\1", val)
        pairs.append((key.strip(), val))
    return main, pairs


# ---------------------------------------------------------------------------- choosing


_BLANK_SIZE = 4  # octets: a body of at most this size holds nothing but line breaks


def choose_text_part(root: Part, prefer: str = "plain") -> Part | None:
    """The part to display: text/plain of an alternative (text/html with prefer="html", when
    no plain exists, or when the plain one is empty by its size), the first displayable text part of a
    mixed; attachments are skipped, an encrypted container yields None, message/rfc822 parts are not
    entered (they are attachments)."""
    return _choose(root, "html" if prefer == "html" else "plain", 0)


def _choose(part: Part, prefer: str, depth: int) -> Part | None:
    if depth > 60:
        return None
    if part.maintype == "multipart":
        kids = part.children
        sub = part.subtype
        if not kids or sub == "encrypted":
            return None
        if sub == "alternative":
            found = [c for c in (_choose(k, prefer, depth + 1) for k in kids) if c is not None]
            if not found:
                return None
            matching = [c for c in found if c.subtype == prefer]
            if prefer == "plain" and matching and all(c.size <= _BLANK_SIZE for c in matching):
                # An empty plain alternative beside a real HTML one (some mailers send that).
                matching = [c for c in found if c.subtype == "html" and c.size > _BLANK_SIZE] or matching
                if matching[0].subtype == "html":
                    return matching[-1]
            if matching:
                return matching[0] if prefer == "plain" else matching[-1]
            other = "html" if prefer == "plain" else "plain"
            matching = [c for c in found if c.subtype == other]
            return matching[-1] if matching else found[-1]
        if sub == "signed":
            return _choose(kids[0], prefer, depth + 1)
        if sub == "related":
            start = part.params.get("start", "").strip().strip("<>")
            first = next((k for k in kids if start and (k.content_id or "").strip("<>") == start), kids[0])
            return _choose(first, prefer, depth + 1)
        for kid in kids:
            if kid.is_attachment:
                continue
            chosen = _choose(kid, prefer, depth + 1)
            if chosen is not None:
                return chosen
        return None
    if part.maintype == "text" and not part.is_attachment and part.subtype != "rfc822-headers":
        return part  # (a bounce's returned headers are not its text: they are shown titled, inline)
    return None


def attachments(root: Part) -> list[Part]:
    """Leaves to offer as attachments, in order: every attachment leaf (a message/rfc822 part
    counts as one leaf), plus inline text parts outside any multipart/alternative that are not
    the displayed part (so a second inline text part is never hidden).  Not the chosen part."""
    chosen = choose_text_part(root)
    result = []
    stack: list[tuple[Part, bool]] = [(root, False)]
    while stack:
        part, in_alt = stack.pop()
        if part.maintype == "multipart":
            alt = in_alt or part.subtype == "alternative"
            stack.extend((kid, alt) for kid in reversed(part.children))
            continue
        if part is chosen:
            continue
        if part.is_attachment or (part.maintype == "text" and not in_alt):
            result.append(part)
    return result


# ---------------------------------------------------------------------------- decoding

_B64_DELETE = bytes(c for c in range(256) if not (chr(c).isalnum() and c < 128) and c not in b"+/")


def _b64decode(data: bytes) -> bytes:
    data = data.translate(None, _B64_DELETE)
    if len(data) % 4 == 1:
        data = data[:-1]
    data += b"=" * (-len(data) % 4)
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        return b""


def _uudecode(data: bytes) -> bytes:
    out = []
    started = False
    for line in data.splitlines():
        if not started:
            started = line.startswith(b"begin ")
            continue
        stripped = line.strip()
        if stripped == b"end":
            break
        if not stripped or stripped == b"`":
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except (binascii.Error, ValueError):
            try:  # badly padded line: decode what the length byte says it holds
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out.append(binascii.a2b_uu(line[:nbytes]))
            except (binascii.Error, ValueError, IndexError):
                continue
    return b"".join(out) if started else data


def normalize_encoding(encoding: str | None) -> str:
    """' Base64;' -> 'base64'; '7-bit' -> '7bit'; missing -> '7bit'."""
    if not encoding:
        return "7bit"
    enc = encoding.strip().strip("\"'").split(";", 1)[0].strip().lower()
    if not enc:
        return "7bit"
    enc = enc.split()[0]
    return {"7-bit": "7bit", "8-bit": "8bit", "quoted_printable": "quoted-printable",
            "qp": "quoted-printable", "uuencode": "x-uuencode", "x-uue": "x-uuencode",
            "uue": "x-uuencode"}.get(enc, enc)


def decode_transfer(data: bytes, encoding: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding; tolerant of garbage, never raises.  Unknown encodings
    (7bit, 8bit, binary, anything else) return the data as is."""
    if not data:
        return b""
    enc = normalize_encoding(encoding)
    try:
        if enc == "base64":
            return _b64decode(data)
        if enc == "quoted-printable":
            return binascii.a2b_qp(data)
        if enc == "x-uuencode":
            return _uudecode(data)
    except Exception:
        return data
    return data


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes -> str in ``charset``; unknown/misspelled charsets fall back to UTF-8 then latin-1
    (Windows-1252), lossy; never raises."""
    return decode_bytes(data, charset)
