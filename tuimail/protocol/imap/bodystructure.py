"""IMAP BODYSTRUCTURE -> the ``Part`` tree of tuimail/mail/part.py (whole raw messages go through
tuimail/mail/parse.py into the same model).

``parse_bodystructure`` takes the BODYSTRUCTURE value as imapclient's response parser produces it
(bytes strings, None for NIL, ints, tuples for lists).  Both shapes are accepted for a multipart:
the raw one ``(child, child, b"mixed", ...)`` and imapclient's ``BodyData`` one
``([child, child], b"mixed", ...)``.  Limits follow mutt: 50 levels of nesting, 5000 parts; past
them the structure is cut and a note says so.  Malformed nodes become application/octet-stream
parts with a note; nothing here raises.

Section numbers follow RFC 3501 §6.4.5 (see ``Part``).
"""

from __future__ import annotations

import re

from tuimail.mail.part import (
    MAX_DEPTH,
    MAX_PARTS,
    NOTE_DEPTH,
    NOTE_PARTS,
    Part,
    decode_params,
    normalize_encoding,
)
from tuimail.mail.headers import decode_words

_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a MIME type/subtype: no controls, no spaces


def _s(value) -> str | None:
    """A BODYSTRUCTURE string (bytes) -> str; None stays None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    if isinstance(value, (str, int)):
        return str(value)
    return None


def _i(value) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    if isinstance(value, (bytes, str)):
        try:
            return max(int(value), 0)
        except ValueError:
            return 0
    return 0


def _is_list(value) -> bool:
    return isinstance(value, (tuple, list))


def _params(value) -> dict[str, str]:
    if not _is_list(value):
        return {}
    items = list(value)
    pairs = []
    for k in range(0, len(items) - 1, 2):
        key, val = _s(items[k]), _s(items[k + 1])
        if key:
            pairs.append((key, val or ""))
    return decode_params(pairs)


def _disposition(value) -> tuple[str | None, dict[str, str]]:
    if _is_list(value) and value:
        kind = _s(value[0])
        return (kind.strip().lower() if kind else None), _params(value[1] if len(value) > 1 else None)
    if isinstance(value, (bytes, str)):  # some old servers send a bare string
        kind = _s(value) or ""
        return (kind.strip().lower() or None), {}
    return None, {}


def _env_addresses(value) -> str:
    """An envelope address list ((name adl mailbox host) ...) -> 'Name <m@h>, ...' (names decoded)."""
    if not _is_list(value):
        return ""
    out = []
    for addr in list(value)[:100]:
        if not _is_list(addr) or len(addr) < 4:
            continue
        name, mailbox, host = _s(addr[0]), _s(addr[2]), _s(addr[3])
        if host is None:  # RFC 3501 group syntax: start (mailbox = group name) / end markers
            continue
        email = f"{mailbox or ''}@{host}"
        name = decode_words(name) if name and "=?" in name else name
        if name:
            quoted = _QUOTE_RE.sub(r"\\\g<0>", name)
            out.append(f'"{quoted}" <{email}>')
        else:
            out.append(email)
    return ", ".join(out)


_QUOTE_RE = re.compile(r'["\\]')


def _envelope(env) -> dict[str, str]:
    """ENVELOPE (date subject from sender reply-to to cc bcc in-reply-to message-id) -> headers."""
    if not _is_list(env) or len(env) < 7:
        return {}
    env = list(env)
    subject = _s(env[1]) or ""
    out = {"date": _s(env[0]) or "", "subject": decode_words(subject) if "=?" in subject else subject,
           "from": _env_addresses(env[2]), "to": _env_addresses(env[5]), "cc": _env_addresses(env[6])}
    return {k: v for k, v in out.items() if v}


class _Walker:
    def __init__(self) -> None:
        self.count = 0
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def node(self, data, leaf_section: str, multi_section: str, prefix: str, depth: int) -> Part:
        self.count += 1
        try:
            if not _is_list(data) or not data:
                raise ValueError("not a list")
            if _is_list(data[0]):
                return self.multipart(data, multi_section, prefix, depth)
            return self.single(data, leaf_section, depth)
        except RecursionError:
            raise
        except Exception:
            self.note(f"malformed body structure at part {leaf_section}")
            return Part(leaf_section, "application", "octet-stream")

    def multipart(self, data, section: str, prefix: str, depth: int) -> Part:
        first = data[0]
        if isinstance(first, list) and (not first or _is_list(first[0])):
            kids, rest = list(first), list(data[1:])  # imapclient BodyData shape
        else:
            n = 0
            while n < len(data) and _is_list(data[n]):
                n += 1
            kids, rest = list(data[:n]), list(data[n:])
        subtype = (_s(rest[0]) if rest else None) or "mixed"
        subtype = subtype.strip().lower()
        part = Part(section, "multipart", subtype if _TOKEN_RE.fullmatch(subtype) else "mixed")
        part.params = _params(rest[1] if len(rest) > 1 else None)
        part.disposition, dparams = _disposition(rest[2] if len(rest) > 2 else None)
        if depth >= MAX_DEPTH:
            self.note(NOTE_DEPTH)
            return part
        for index, kid in enumerate(kids, 1):
            if self.count >= MAX_PARTS:
                self.note(NOTE_PARTS)
                break
            sec = f"{prefix}.{index}" if prefix else str(index)
            part.children.append(self.node(kid, sec, sec, sec, depth + 1))
        return part

    def single(self, data, section: str, depth: int) -> Part:
        f = list(data) + [None] * max(0, 12 - len(data))
        maintype = (_s(f[0]) or "application").strip().lower() or "application"
        subtype = (_s(f[1]) or "octet-stream").strip().lower() or "octet-stream"
        if not (_TOKEN_RE.fullmatch(maintype) and _TOKEN_RE.fullmatch(subtype)):  # as message.py: RFC 2045 tokens only
            maintype, subtype = "application", "octet-stream"
        part = Part(section, maintype, subtype)
        part.params = _params(f[2])
        part.content_id = _s(f[3])
        part.description = _s(f[4])
        part.encoding = normalize_encoding(_s(f[5]))
        part.size = _i(f[6])
        if maintype == "text":
            part.lines = _i(f[7])
            ext = 8
        elif maintype == "message" and subtype in ("rfc822", "global") and _is_list(f[8]):
            part.lines = _i(f[9])
            ext = 10
            part.headers = _envelope(f[7])
            if depth >= MAX_DEPTH:
                self.note(NOTE_DEPTH)
            elif self.count >= MAX_PARTS:
                self.note(NOTE_PARTS)
            else:
                part.children.append(self.node(f[8], section + ".1", section + ".TEXT", section, depth + 1))
        else:
            ext = 7
        part.disposition, dparams = _disposition(f[ext + 1])
        part.filename = dparams.get("filename") or part.params.get("name") or None
        return part


def parse_bodystructure(data) -> tuple[Part, list[str]]:
    """BODYSTRUCTURE (imapclient's parsed form) -> (root Part, notes).  Never raises."""
    walker = _Walker()
    try:
        root = walker.node(data, "1", "TEXT", "", 0)
    except RecursionError:  # only reachable with absurd input shapes; keep the promise anyway
        walker.note("malformed body structure")
        root = Part("1", "application", "octet-stream")
    return root, walker.notes
