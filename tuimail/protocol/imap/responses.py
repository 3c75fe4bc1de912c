"""What IMAP responses become: result types, the response regexes and small decoders.

Shared by the session (session.py) and the command groups (mailbox.py, literals.py, idle.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imapclient import imap_utf7

from tuimail.errors import ProtocolError
from tuimail.mail.headers import HEADER_FIELDS as _FIELDS
from tuimail.protocol.imap import wire
from tuimail.protocol.tls import one_line  # noqa: F401  (the IMAP modules' name for it)

# the header FETCH's field list: the fields mail.headers.summarize reads
HEADER_FIELDS = " ".join(_FIELDS).encode("ascii")


@dataclass
class FolderEntry:
    name: str
    delimiter: str | None
    attrs: tuple[str, ...]
    role: str | None = None
    status: dict = field(default_factory=dict)

    @property
    def selectable(self) -> bool:
        return not any(a.lower() in ("\\noselect", "\\nonexistent") for a in self.attrs)


@dataclass
class SelectResult:
    exists: int = 0
    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    nomodseq: bool = False
    vanished: list[tuple[int, int]] = field(default_factory=list)  # (lo, hi) runs
    changed: list[tuple[int, tuple[str, ...], int | None]] = field(default_factory=list)


@dataclass(slots=True)
class HeaderItem:
    uid: int
    flags: tuple[str, ...]
    modseq: int | None
    size: int
    header: bytes


@dataclass
class Unsolicited:
    """What the server told us without being asked (during any command or IDLE)."""

    exists: int | None = None
    expunged: bool = False  # EXPUNGE by sequence number (no QRESYNC): needs a full uid check
    vanished: list[tuple[int, int]] = field(default_factory=list)  # (lo, hi) runs, merged
    flags: list[tuple[int, tuple[str, ...], int | None]] = field(default_factory=list)
    seq_flags: bool = False  # FETCH without UID (flag change by seq number): needs a flag resync

    def any(self) -> bool:
        return bool(self.exists is not None or self.expunged or self.vanished or self.flags or self.seq_flags)


_FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")
_UID_RE = re.compile(rb"UID (\d+)")
_MODSEQ_RE = re.compile(rb"MODSEQ \((\d+)\)")
_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")
_IDATE_RE = re.compile(rb'INTERNALDATE "([^"\r\n]{1,40})"')


def parse_internaldate(raw: bytes) -> int | None:
    """RFC 3501 date-time ("17-Jul-1996 02:44:25 -0700", day space-padded) -> Unix seconds."""
    from datetime import datetime
    try:
        return int(datetime.strptime(raw.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z").timestamp())
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None


def internaldate_handler(out: dict[int, int]):
    """The untagged-response handler of UID FETCH (UID INTERNALDATE): fills out {uid: ts}."""
    def handler(resp) -> bool:
        head = resp[0]
        if len(resp) == 1 and b" FETCH " in head[:24]:
            um, dm = _UID_RE.search(head), _IDATE_RE.search(head)
            if um and dm:
                ts = parse_internaldate(dm.group(1))
                if ts is not None:
                    out[num(um.group(1))] = ts
                return True
        return False
    return handler
_UNTAGGED_NUM = re.compile(rb"\* (\d+) ([A-Za-z]+)")


def vanished_set(head: bytes) -> bytes:
    """The set of a '* VANISHED [(EARLIER)] set' line."""
    rest = head[len(b"* VANISHED "):]
    if rest.upper().startswith(b"(EARLIER) "):
        rest = rest[len(b"(EARLIER) "):]
    return rest


def encode_mailbox(name: str) -> bytes:
    return wire.quote(imap_utf7.encode(name))


_flag_lists: dict[bytes, tuple[str, ...]] = {}  # a folder has a handful of distinct flag lists


def _flags(raw: bytes) -> tuple[str, ...]:
    hit = _flag_lists.get(raw)
    if hit is None:
        # \Recent is a per-session flag: storing it would make every sync look like a change
        hit = tuple(f for f in raw.decode("utf-8", "replace").split() if f != "\\Recent")
        if len(_flag_lists) < 1000:
            _flag_lists[bytes(raw)] = hit
    return hit



# (numbers of more than 18 digits do not match: the generic handler refuses them, see _num)
_HDR_FAST = re.compile(rb"\* \d+ FETCH \(UID (\d{1,18}) FLAGS \(([^)]*)\)(?: MODSEQ \((\d{1,18})\))?"
                       rb" RFC822\.SIZE (\d{1,18})"
                       rb" BODY\[HEADER\.FIELDS \([^)]*\)\] \{(\d+)\}\r\n")


def scan_header_fetches(reader: wire.ResponseReader, out: list, cap: int | None = None) -> None:
    """Consume every complete header FETCH response of the usual shape at the buffer's head
    (ValueError past `cap` items in `out`)."""
    buf = reader.buf  # a bytearray that _fill() extends in place
    pos = 0
    match = _HDR_FAST.match
    limit = reader.max_literal
    try:
        while True:
            if buf.find(b"\r\n", pos) < 0:
                del buf[:pos]
                pos = 0
                reader._fill()
                continue
            m = match(buf, pos)
            if m is None:
                return
            end = m.end()
            n = int(m.group(5))
            if n > limit:
                raise ProtocolError(f"server announced a {n}-byte literal (limit {limit}); refused")
            lit_end = end + n
            while len(buf) < lit_end + 3:
                reader._fill()
            if buf[lit_end:lit_end + 3] != b")\r\n":
                return
            mod = m.group(3)
            if cap is not None and len(out) >= cap:
                raise ValueError("more FETCH answers than messages asked for")
            out.append(HeaderItem(int(m.group(1)), _flags(m.group(2)), int(mod) if mod else None,
                                  int(m.group(4)), bytes(buf[end:lit_end])))
            pos = lit_end + 3
            if pos > 1 << 20:
                del buf[:pos]
                pos = 0
    finally:
        del buf[:pos]


_MAX_NUM = (1 << 63) - 1  # what the store (SQLite INTEGER) can hold; UIDs are 32-bit, mod-sequences 63-bit


def num(digits: bytes) -> int:
    """A number from a response; ValueError (ProtocolError in read_until) unless 0..2^63-1."""
    if len(digits) > 19 or not digits.isdigit() or int(digits) > _MAX_NUM:
        raise ValueError(f"bad number {bytes(digits[:24])!r}")
    return int(digits)


def mailbox_name(tok) -> str:
    if isinstance(tok, int):
        tok = str(tok).encode()
    if tok is None:
        return ""
    try:
        return imap_utf7.decode(tok)
    except Exception:
        return tok.decode("utf-8", "replace")


def status_dict(toks) -> dict:
    d = wire.pairs(toks if isinstance(toks, tuple) else ())
    return {k.decode().upper(): v for k, v in d.items() if isinstance(v, int)}


def flag_arg(flag: str) -> bytes:
    b = flag.encode("utf-8")
    if not re.fullmatch(rb"\\?[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+", b):
        raise ValueError(f"invalid IMAP flag {flag!r}")
    return b


def command_name(cmd: bytes) -> str:
    """The command's name for a message: "SELECT", "UID FETCH"."""
    words = cmd.split(b" ", 2)
    return b" ".join(words[:2] if words[0].upper() == b"UID" else words[:1]).decode("ascii", "replace")


