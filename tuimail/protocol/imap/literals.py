"""Commands that carry literals (RFC 3501 §4.3, RFC 7888 LITERAL+/LITERAL-): SEARCH (a string
argument with CR/LF or 8-bit goes as one) and APPEND.

A command group of ImapConnection (see connection.py): `Session.send_command` renders the parts
with `wire.render` and waits for the server's continuation request (`Session.await_continuation`)
before each synchronising literal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tuimail.protocol.imap import uidset, wire
from tuimail.protocol.imap.mailbox import MAX_SEARCH_UIDS
from tuimail.protocol.imap.responses import encode_mailbox, flag_arg, num
from tuimail.protocol.imap.session import Command, Response, Session

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def internaldate_arg(when: datetime | float) -> bytes:
    """An APPEND date-time: "06-Dec-2026 03:21:03 +0000" (English month names whatever the locale).
    A naive datetime is taken as local time; a number as seconds since the epoch."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.astimezone()
    else:
        when = datetime.fromtimestamp(float(when)).astimezone()
    off = when.utcoffset()
    mins = int(off.total_seconds() // 60) if off is not None else 0
    sign = "+" if mins >= 0 else "-"
    mins = abs(mins)
    return (f'"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d} {when:%H:%M:%S}'
            f' {sign}{mins // 60:02d}{mins % 60:02d}"').encode()


class LiteralCommands:
    """The commands whose arguments may go as literals: SEARCH with strings from data, APPEND."""

    def __init__(self, session: Session):
        self.session = session

    def search_uids(self, criteria: bytes | list[bytes | wire.Literal] = b"ALL") -> list[int]:
        """UID SEARCH; ESEARCH's compact 'ALL' answer where the server offers it. criteria: bytes,
        or parts with literals (`wire.string(data)`): non-ASCII ones make it CHARSET UTF-8."""
        found: list[int] = []
        esearch = self.session.has("ESEARCH")
        parts = [criteria] if isinstance(criteria, bytes) else list(criteria)
        cmd_parts: list[bytes | wire.Literal] = [b"UID SEARCH " + (b"RETURN (ALL) " if esearch else b"")
                                                 + (b"CHARSET UTF-8 " if wire.has_8bit(parts) else b""), *parts]
        plain = [p for p in cmd_parts if isinstance(p, bytes)]
        cmd: Command = b"".join(plain) if len(plain) == len(cmd_parts) else cmd_parts

        def handler(resp: Response) -> bool:
            head = resp[0]
            up = head[:12].upper()
            if up.startswith(b"* ESEARCH"):
                toks = wire.tokenize(resp)
                for i, t in enumerate(toks):
                    if isinstance(t, bytes) and t.upper() == b"ALL" and i + 1 < len(toks):
                        val = toks[i + 1]
                        found.extend(uidset.parse(str(val) if isinstance(val, int) else val,
                                                  limit=MAX_SEARCH_UIDS - len(found)))
                return True
            if up.startswith(b"* SEARCH"):
                found.extend(num(x) for x in head[8:].split() if x.isdigit())
                if len(found) > MAX_SEARCH_UIDS:
                    raise ValueError(f"more than {MAX_SEARCH_UIDS} uids in a SEARCH answer")
                return True
            return False

        self.session.command(cmd, handler)
        return found

    def append(self, folder: str, message: bytes, flags: Iterable[str] = (),
               internaldate: datetime | float | None = None) -> int | None:
        """APPEND the message to `folder`; its new uid where the server says (UIDPLUS APPENDUID),
        else None. The message goes as a literal (8-bit as it is; NUL is refused)."""
        head = b"APPEND " + encode_mailbox(folder)
        fl = [flag_arg(f) for f in flags]
        if fl:
            head += b" (" + b" ".join(fl) + b")"
        if internaldate is not None:
            head += b" " + internaldate_arg(internaldate)
        _, text = self.session.command([head + b" ", wire.Literal(message)])
        code, arg = wire.resp_code(text)
        if code == b"APPENDUID":
            words = arg.split()
            if len(words) == 2 and words[1].isdigit():
                return int(words[1])
        return None
