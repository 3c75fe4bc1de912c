"""Address headers (From, To, Cc) as RFC 5322 reads them: display names without their quoting,
comments and escapes, addresses without comments and spaces.

``email.utils.getaddresses`` folds comments into the name ('Pete(A wonderful \\) chap)' became
'Pete (A wonderful ) chap his account his host)') and is quadratic on some garbage;
``email.headerregistry`` (policy.default) parses right but costs ~100 µs a header. This scanner
is linear and bounded, and is used only where a name is shown (never on the header-sync path,
which stores the decoded header as it came): the list's From column, the reader's headers.

    Pete(A wonderful \\) chap) <pete(his account)@silly.test(his host)>  -> ("Pete", "pete@silly.test")
    "Giant; \\"Big\\" Box" <sysservices@example.net>  -> ('Giant; "Big" Box', "sysservices@example.net")
    jdoe@one.test (John Doe)  -> ("John Doe", "jdoe@one.test")   (the old form: a comment names it)
    A Group: Ed Jones <c@a.test>, joe@where.test;  -> [("Ed Jones", "c@a.test"), ("", "joe@where.test")]
"""

from __future__ import annotations

import re

from tuimail.mail.headers import decode_words
from tuimail.mail.sanitize import sanitize_strict

__all__ = ["parse_addresses", "format_address_list", "short_from", "sender_name"]

_MAX = 20000  # characters of a header looked at
_ATOM_RE = re.compile(r'[^\s"()<>,:;\\]+')
_PLAIN_RE = re.compile(r'^\s*([^"()<>,:;\\@]*?)\s*<([^<>"()\s,;:\\]*)>\s*$')


def _delimited(s: str, i: int, close: str, nested: bool) -> tuple[str, int]:
    """The text opened at s[i] up to its `close` (nested "(" ... ")" for a comment), backslash
    escapes undone, and the index after it (the end of `s` if it never closes)."""
    out, n, depth = [], len(s), 1
    i += 1
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            out.append(s[i + 1])
            i += 2
            continue
        if nested and c == "(":
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), n


def _comment(s: str, i: int) -> tuple[str, int]:
    """The text of the comment opening at s[i] == "(" (nested, escapes undone), index after it."""
    text, i = _delimited(s, i, ")", nested=True)
    return " ".join(text.split()), i


def _quoted(s: str, i: int) -> tuple[str, int]:
    """The content of the quoted string opening at s[i] == '"', index after it."""
    return _delimited(s, i, '"', nested=False)


def _angle(s: str, i: int) -> tuple[str, int]:
    """The address inside <...> opening at s[i], comments and whitespace removed."""
    out: list[str] = []
    n = len(s)
    i += 1
    while i < n:
        c = s[i]
        if c == ">":
            return _no_route("".join(out)), i + 1
        if c == "(":
            _, i = _comment(s, i)
            continue
        if c == '"':
            text, i = _quoted(s, i)
            out.append(f'"{text}"')
            continue
        if not c.isspace():
            out.append(c)
        i += 1
    return _no_route("".join(out)), n


def _no_route(addr: str) -> str:
    """'@relay.test:mary@example.net' (an obsolete source route) -> 'mary@example.net'."""
    if addr.startswith("@") and ":" in addr:
        return addr.split(":", 1)[1]
    return addr


def _scan(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    words: list[str] = []  # the phrase (display name), unquoted
    raw: list[str] = []  # the same tokens as written (an addr-spec without <>)
    comments: list[str] = []
    addr: str | None = None
    group: str | None = None
    group_count = 0
    i, n = 0, len(s)

    def finish() -> None:
        nonlocal addr, group_count
        if addr is not None:
            name = " ".join(words) or " ".join(comments)
            out.append((name, addr))
            group_count += 1
        elif raw:
            text = "".join(raw)
            if "@" in text:  # addr-spec, its comment (the old form) names it
                out.append((" ".join(comments), text))
            else:  # a name without an address (garbage, or an address-less list entry)
                out.append((" ".join(words), ""))
            group_count += 1
        words.clear()
        raw.clear()
        comments.clear()
        addr = None

    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
            continue
        if c == "(":
            text, i = _comment(s, i)
            if text:
                comments.append(text)
        elif c == '"':
            text, i = _quoted(s, i)
            words.append(" ".join(text.split()))
            raw.append(f'"{text}"')
        elif c == "<":
            addr, i = _angle(s, i)
        elif c == ",":
            finish()
            i += 1
        elif c == ":" and addr is None and group is None:
            group, group_count = " ".join(words), 0  # "Team: a@x, b@y;"
            words.clear()
            raw.clear()
            comments.clear()
            i += 1
        elif c == ";" and group is not None:
            finish()
            if not group_count and group:
                out.append((group, ""))  # "undisclosed-recipients:;"
            group = None
            i += 1
        else:
            m = _ATOM_RE.match(s, i)
            if m is None:  # a stray special (">", "\\", ":" or ";" out of place): part of the text
                words.append(c)
                raw.append(c)
                i += 1
                continue
            words.append(m.group())
            raw.append(m.group())
            i = m.end()
    finish()
    if group is not None and not group_count and group:
        out.append((group, ""))
    return out


def parse_addresses(value: str | None) -> list[tuple[str, str]]:
    """Address header -> [(display name, address)]; names decoded (RFC 2047), unquoted, comments
    out; empty entries dropped; never raises. Not sanitised."""
    if not value:
        return []
    value = value[:_MAX]
    if "=?" in value:
        value = decode_words(value, address=True)
    m = _PLAIN_RE.match(value)
    if m is not None:  # the common 'Name <addr>' / '<addr>' needs no scanner
        pairs = [(" ".join(m.group(1).split()), m.group(2))]
    else:
        try:
            pairs = _scan(value)
        except Exception:  # defensive: the scanner indexes within bounds
            pairs = []
    result = []
    for name, addr in pairs:
        if "=?" in name:  # an encoded word inside quotes (not allowed, sent anyway)
            name = " ".join(decode_words(name).split())
        if name or addr:
            result.append((name, addr))
    if not result and value.strip():
        result.append((" ".join(value.split()), ""))
    return result


def format_address_list(value: str | None) -> str:
    """'Name <a@b>, c@d' display form of an address header (not sanitised)."""
    parts = []
    for name, addr in parse_addresses(value):
        if name and addr and name != addr:
            parts.append(f"{name} <{addr}>")
        else:
            parts.append(name or addr)
    return ", ".join(parts)


def short_from(value: str | None) -> str:
    """Display name of the first address, else the address itself (the list's From column)."""
    if not value:
        return ""
    pairs = parse_addresses(value)
    if not pairs:
        return value.strip()
    name, addr = pairs[0]
    return name.strip("'\" ") or addr


def sender_name(from_: str) -> str:
    """The display name of a From header ('"Pete" (a comment) <p@x>' -> 'Pete'), else the address.
    Zero-width and bidi characters are shown (sanitize_strict), as in the reader: 'pay\u200bpal'
    must not pass for 'paypal'."""
    return sanitize_strict(short_from(from_))
