"""Header decoding on the hot path of a header sync (100k messages).

Everything here is tolerant: no input bytes or string can make a public function raise.
Results are decoded but NOT sanitised: callers apply ``sanitize_line``/``sanitize_strict`` when
they display a value.

Speed: ``summarize`` of a typical 400-byte block costs 3.5-4x less than ``email`` with the
compat32 policy measured in the same run (tests/unit/test_mail_headers.py checks >= 2.5x),
because it does only what the list needs: str methods (not regexes) split and unfold, RFC 2047
decoding runs only where ``=?`` occurs, and the common date form skips email.utils.
"""

from __future__ import annotations

import binascii
import email.utils
import re
from collections.abc import Mapping

from tuimail.mail.charset import decode_bytes

__all__ = [
    "HEADER_FIELDS",
    "parse_header_block",
    "decode_words",
    "parse_date",
    "parse_msgids",
    "first_msgid",
    "guess_has_attachment",
    "has_attachment",
    "summarize",
]

HEADER_FIELDS = (
    "FROM", "TO", "CC", "SUBJECT", "DATE", "MESSAGE-ID", "IN-REPLY-TO", "REFERENCES", "CONTENT-TYPE",
)

# Address headers: decoded display names that contain specials are re-quoted so the value can
# still be split into addresses ("Smith, John" must not become two addresses).
_ADDRESS_HEADERS = frozenset(
    ("from", "to", "cc", "bcc", "reply-to", "sender", "resent-from", "resent-to", "resent-cc",
     "mail-followup-to", "mail-reply-to", "return-receipt-to", "disposition-notification-to")
)

# ---------------------------------------------------------------------------- block parsing

_LOWER = {n.title(): n.lower() for n in HEADER_FIELDS}
_LOWER.update({n: n.lower() for n in HEADER_FIELDS})
_LOWER.update({"Message-Id": "message-id", "Message-ID": "message-id", "CC": "cc", "Cc": "cc"})


def _decode_block(raw: bytes) -> str:
    """Bytes that are not valid UTF-8 as a whole, decoded line by line."""
    # Per line: a UTF-8 subject beside a latin-1 name must not spoil each other.
    # (A continuation line is judged on its own; that is close enough for broken mail.)
    out = []
    for line in raw.split(b"\n"):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(decode_bytes(line, None))
    return "\n".join(out)


_FIELD_RE = re.compile(r"^([!-9;-~]+)[ \t]*:[ \t]*(.*)$", re.M)
# Senders, list names and thread subjects repeat across a folder: decoding each distinct
# encoded value once halves the header-sync cost on real mail (bounded, cleared when full).
_decoded: dict[tuple[str, bool], str] = {}
_DECODED_MAX = 50_000


def _decode_cached(value: str, address: bool) -> str:
    key = (value, address)
    hit = _decoded.get(key)
    if hit is None:
        if len(_decoded) >= _DECODED_MAX:
            _decoded.clear()
        hit = _decoded[key] = decode_words(value, address=address)
    return hit


def parse_header_block(raw: bytes) -> dict[str, str]:
    """Header block bytes -> {lower-case name: unfolded, RFC 2047-decoded value}.

    The block ends at the first empty line.  The first occurrence of a field wins; lines that
    are not a field (garbage, an mbox "From " line) are skipped.  Never raises for any input.
    """
    if not raw:
        return {}
    if isinstance(raw, str):  # tolerate callers holding text already
        text = raw
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = _decode_block(bytes(raw))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    end = text.find("\n\n")  # the blank line that ends the block (a body may follow)
    if end >= 0:
        text = text[:end] if end else text.lstrip("\n").split("\n\n", 1)[0]
    if "\n " in text or "\n\t" in text:  # unfold in C: continuation lines start with WSP
        text = text.replace("\n ", " ").replace("\n\t", " ")
    result: dict[str, str] = {}
    lower = _LOWER.get
    for name, value in _FIELD_RE.findall(text):
        key = lower(name) or name.lower()
        if key not in result:
            result[key] = value.rstrip()
    if "=?" in text:
        for key, value in result.items():
            if "=?" in value:
                result[key] = _decode_cached(value, key in _ADDRESS_HEADERS)
    return result


# ---------------------------------------------------------------------------- RFC 2047

# charset, encoding, encoded text.  Encoded text may (against the RFC) hold spaces: broken
# encoders emit them in Q words; '?' ends it, which bounds the match.
_WORD_RE = re.compile(r"=\?([^?\s]{1,80})\?([BbQq])\?([^?]*)\?=")
_B64_DELETE = bytes(c for c in range(256) if not (chr(c).isalnum() and c < 128) and c not in b"+/")
_ADDR_SPECIALS = re.compile(r'[,;:<>@()\[\]"\\]')


def _b64(data: str) -> bytes:
    raw = data.encode("ascii", "ignore").translate(None, _B64_DELETE)
    if len(raw) % 4 == 1:
        raw = raw[:-1]
    raw += b"=" * (-len(raw) % 4)
    try:
        return binascii.a2b_base64(raw)
    except (binascii.Error, ValueError):
        return b""


def _q(data: str) -> bytes:
    raw = data.encode("utf-8", "replace").replace(b"_", b" ")
    try:
        return binascii.a2b_qp(raw)
    except (binascii.Error, ValueError):
        return raw


def decode_words(value: str, address: bool = False) -> str:
    """Decode RFC 2047 encoded words in ``value``; lossy, never raises.

    Whitespace between adjacent encoded words is dropped, and adjacent words in the same charset
    are decoded together (a multi-byte character may be split across two words).  With
    ``address=True`` a decoded run containing address specials is returned quoted (unless it is
    already inside quotes), so the value can still be split into addresses.
    """
    if not value or "=?" not in value:
        return value or ""
    try:
        return _decode_words(value, address)
    except Exception:  # defensive: a decoder bug must not break a header sync
        return value


def _decode_words(value: str, address: bool) -> str:
    out: list[str] = []
    pos = 0
    run_charset: str | None = None
    run_bytes: list[bytes] = []
    run_start = 0

    def flush() -> None:
        nonlocal run_charset
        if run_bytes:
            text = decode_bytes(b"".join(run_bytes), run_charset)
            if address and _ADDR_SPECIALS.search(text):
                text = text.replace("\\", "\\\\").replace('"', '\\"')
                if not (run_start > 0 and value[run_start - 1] == '"'):
                    text = '"' + text + '"'
            out.append(text)
            run_bytes.clear()
        run_charset = None

    for m in _WORD_RE.finditer(value):
        gap = value[pos : m.start()]
        if gap and (run_charset is None or gap.strip()):
            flush()
            out.append(gap)
        # else: whitespace between two encoded words is dropped
        charset, enc, data = m.group(1), m.group(2), m.group(3)
        charset = charset.split("*", 1)[0].lower()  # RFC 2231 language: =?utf-8*en?Q?...?=
        chunk = _b64(data) if enc in "Bb" else _q(data)
        if run_charset is not None and charset != run_charset:
            flush()
        if not run_bytes:
            run_start = m.start()
        run_charset = charset
        run_bytes.append(chunk)
        pos = m.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------- dates

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_MONTHS.update({m.title(): i for m, i in list(_MONTHS.items())})
# parse_date's fast path takes "Tue, 1 Jul 2003 10:52:37 +0200"; everything else (zone names,
# two-digit years, missing seconds...) goes to email.utils.
_MAX_EPOCH = 253402300799  # 9999-12-31 23:59:59 UTC
_day_cache: dict[tuple[str, str, str], int] = {}


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (proleptic Gregorian; Howard Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _epoch(y: int, mo: int, d: int, hh: int, mi: int, ss: int, offset: int) -> int | None:
    if not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= hh <= 24 and 0 <= mi <= 59 and 0 <= ss <= 61):
        return None
    t = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - offset
    return min(max(t, 0), _MAX_EPOCH)  # clamp absurd years (before 1970 / after 9999)


def parse_date(value: str | None) -> int | None:
    """RFC 5322 date -> epoch seconds UTC, or None when unparseable.  Never raises.

    Years before 1970 clamp to 0 and after 9999 to the end of 9999.
    """
    if not value:
        return None
    # Fast path for the form nearly every mailer writes: "Tue, 1 Jul 2003 10:52:37 +0200"
    # (day name optional, anything after the zone ignored); a split beats a regex here.
    parts = value.split(None, 6)
    if parts and parts[0][-1] == ",":
        del parts[0]
    if len(parts) >= 5:
        d, mon, y, hms, tz = parts[:5]
        if len(hms) == 8 and len(tz) == 5 and (tz[0] == "+" or tz[0] == "-") and len(y) == 4:
            key = (d, mon, y)
            days = _day_cache.get(key)
            try:
                if days is None:
                    month = _MONTHS.get(mon) or _MONTHS.get(mon[:3].lower())
                    day = int(d)
                    if month is not None and 1 <= day <= 31:
                        days = _days_from_civil(int(y), month, day)
                        if len(_day_cache) > 20000:
                            _day_cache.clear()
                        _day_cache[key] = days
                if days is not None and hms[2] == ":" and hms[5] == ":":
                    hh, mi, ss = int(hms[:2]), int(hms[3:5]), int(hms[6:])
                    if hh < 25 and mi < 60 and ss < 62:
                        t = days * 86400 + hh * 3600 + mi * 60 + ss
                        offset = int(tz[1:3]) * 3600 + int(tz[3:5]) * 60
                        t = t + offset if tz[0] == "-" else t - offset
                        return t if 0 <= t <= _MAX_EPOCH else min(max(t, 0), _MAX_EPOCH)
            except ValueError:
                pass
    try:
        p = email.utils.parsedate_tz(value[:200])
        if p is None:
            return None
        year = p[0]
        if 100 <= year < 1000:  # Y2K-era bug: 103 means 2003 (parsedate_tz maps 2-digit years)
            year += 1900
        return _epoch(year, p[1], p[2], p[3], p[4], p[5], p[9] or 0)
    except Exception:
        return None


# ---------------------------------------------------------------------------- message-ids

_MSGID_FAST_RE = re.compile(r"<[^<>\s]+>")
_MSGID_RE = re.compile(r"<\s*([^<>\s]+?)\s*>")
_BARE_ID_RE = re.compile(r"[^\s<>,;\"()]+@[^\s<>,;\"()]+")
_MAX_REFS = 200


def parse_msgids(value: str | None) -> list[str]:
    """Message-IDs ``<...>`` in order, tolerant of garbage (``< a@b >`` is trimmed; bare ``a@b``
    tokens are bracketed when no bracketed id exists).  Long lists keep the first id (the thread
    root) and the last 199."""
    if not value:
        return []
    ids = _MSGID_FAST_RE.findall(value)
    if not ids:
        ids = ["<" + i + ">" for i in _MSGID_RE.findall(value)]
        if not ids:
            ids = ["<" + i + ">" for i in _BARE_ID_RE.findall(value)]
    if len(ids) > _MAX_REFS:
        ids = ids[:1] + ids[-(_MAX_REFS - 1):]
    return ids


def first_msgid(value: str | None) -> str | None:
    """The first Message-ID in ``value`` (bracketed), or None."""
    if not value:
        return None
    if value[0] == "<" and value[-1] == ">" and value.find(">") == len(value) - 1 and " " not in value:
        return value
    m = _MSGID_FAST_RE.search(value)
    if m is not None:
        return m.group()
    m = _MSGID_RE.search(value)
    if m is not None:
        return "<" + m.group(1) + ">"
    m = _BARE_ID_RE.search(value)
    return "<" + m.group() + ">" if m is not None else None


# ---------------------------------------------------------------------------- content type

_ATTACHMENT_MAINTYPES = frozenset(("application", "image", "audio", "video"))
_attach_cache: dict[str, bool] = {}


def guess_has_attachment(content_type: str | None) -> bool:
    """Guess from the top-level Content-Type whether the message carries attachments.

    True: multipart/mixed, application/*, image/*, audio/*, video/*, message/rfc822.
    False: text/*, multipart/alternative, multipart/related (inline images), other multiparts
    (signed/encrypted/report: unknown without BODYSTRUCTURE), missing.
    """
    if not content_type:
        return False
    hit = _attach_cache.get(content_type)
    if hit is None:
        mime = content_type.split(";", 1)[0].strip().lower()
        hit = mime in ("multipart/mixed", "message/rfc822") or mime.split("/", 1)[0] in _ATTACHMENT_MAINTYPES
        if len(_attach_cache) < 5000:
            _attach_cache[content_type] = hit
    return hit


# ---------------------------------------------------------------------------- summary


# summarize's fields found directly in a block with CRLF line ends (POP3 TOP answers and IMAP
# literals): only the lines of these fields are looked at, not every Received or X- line. The
# value runs to the next line that is not a continuation; the names match in ASCII only, as
# _FIELD_RE's name class does. Results are parse_header_block's for these fields, exactly
# (tests/unit/test_headers_summary.py compares both on the corpus and on generated blocks).
# (The lookahead on the first letter lets most lines fail at once: 2.5 us for a 15-line block
# against 3.8 us without it.)
_SUMMARY_RE = re.compile(
    r"\r\n(?=[CDFIMRSTcdfimrst])"
    r"(?i:(from|to|cc|subject|date|message-id|in-reply-to|references|content-type))[ \t]*:[ \t]*"
    r"([^\r]*(?:\r\n[ \t][^\r]*)*)", re.A)
_CONTENT_TYPE_RE = re.compile(r"\r\n(?=[Cc])(?i:(content-type))[ \t]*:[ \t]*([^\r]*(?:\r\n[ \t][^\r]*)*)", re.A)


def _summary_fields(raw: bytes, fields: re.Pattern[str] = _SUMMARY_RE) -> dict[str, str]:
    """parse_header_block(raw) restricted to summarize's fields (HEADER_FIELDS), or to those
    `fields` matches (one of the patterns above)."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        nl = text.count("\n")
        # the fast path wants every line break a CRLF and a first line that is not empty (the
        # general path's blank-line rules and per-line charset guessing cover the rest)
        if text and text.count("\r") == nl and text.count("\r\n") == nl and not text.startswith("\r\n"):
            end = text.find("\r\n\r\n")
            if end >= 0:
                text = text[:end]
            out: dict[str, str] = {}
            lower = _LOWER.get
            for name, value in fields.findall("\r\n" + text):
                key = lower(name) or name.lower()
                if key in out:
                    continue  # the first occurrence wins
                if "\r" in value:  # unfolded as parse_header_block does: CRLF + space or tab -> one space
                    value = value.replace("\r\n ", " ").replace("\r\n\t", " ").lstrip(" \t")
                value = value.rstrip()
                if "=?" in value:
                    value = _decode_cached(value, key in _ADDRESS_HEADERS)
                out[key] = value
            return out
    return parse_header_block(raw)


def has_attachment(raw: bytes) -> bool:
    """summarize(raw)["has_attachment"] alone: the block's Content-Type. Never raises."""
    try:
        return guess_has_attachment(_summary_fields(raw, _CONTENT_TYPE_RE).get("content-type"))
    except Exception:
        return False


def summarize(raw: bytes) -> dict:
    """What the sync engine stores per message, from a HEADER.FIELDS block (or any header
    block: the other fields are not looked at).  Never raises."""
    try:
        h = _summary_fields(raw)
    except Exception:
        h = {}
    return summary_of(h)


def summary_of(h: Mapping[str, str]) -> dict:
    """The stored fields from a block's decoded headers (lower-case names): summarize's second
    half, also what its tests compare parse_header_block's reading with."""
    get = h.get
    refs = parse_msgids(get("references"))
    return {
        "from_": get("from", ""),
        "to": get("to", ""),
        "cc": get("cc", ""),
        "subject": get("subject", ""),
        "date": parse_date(get("date")),
        "message_id": first_msgid(get("message-id")),
        "in_reply_to": first_msgid(get("in-reply-to")),
        "references": " ".join(refs),
        "has_attachment": guess_has_attachment(get("content-type")),
    }
