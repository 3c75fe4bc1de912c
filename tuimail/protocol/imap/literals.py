"""Commands that carry literals (RFC 3501 §4.3, RFC 7888 LITERAL+/LITERAL-): SEARCH (a string
argument with CR/LF or 8-bit goes as one), APPEND, and the wait for the server's continuation
request before a synchronising literal.

A mixin of ImapConnection (see imap.py): `send_command` renders the parts with `wire.render` and
calls `_await_continuation` before each synchronising literal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tuimail.errors import CommandFailed, NetworkError, ProtocolError
from tuimail.protocol.imap import uidset, wire
from tuimail.protocol.imap.mailbox import MAX_SEARCH_UIDS
from tuimail.protocol.imap.responses import command_name, encode_mailbox, flag_arg, num, one_line

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
    def _nonsync(self, n: int) -> bool:
        """Whether an n-byte literal may go as {n+} (no wait for the server's "+")."""
        return self.has("LITERAL+") or (self.has("LITERAL-") and n <= wire.LITERAL_MINUS_MAX)

    def _await_continuation(self, tag: bytes, cmd: bytes) -> None:
        """Read to the server's "+" before a synchronising literal. A tagged NO/BAD instead ends
        the command (the literal is not sent: the connection stays usable); a tagged OK would
        make the literal's bytes a command of their own, so the connection is given up."""

        def wait() -> None:
            reader = self.reader
            while True:
                before = reader.consumed
                resp = reader.read_response()
                head = resp[0]
                if head.startswith(b"+"):
                    return
                if head.startswith(tag + b" "):
                    status, _, text = head[len(tag) + 1:].partition(b" ")
                    status_s = status.decode("ascii", "replace").upper()
                    if self.log:
                        self.log("S: " + head[:200].decode("utf-8", "replace"))
                    if status_s in ("NO", "BAD"):
                        raise CommandFailed(command_name(cmd), status_s, one_line(text))
                    raise ProtocolError(f"{self.where} answered {command_name(cmd)} before its literal was sent")
                if head.startswith(b"* BYE"):
                    raise NetworkError(f"{self.where} closed the session: {one_line(head[6:])}")
                if head.startswith(b"* "):
                    self._unsolicited(cmd, reader.consumed - before)
                    self._generic_untagged(resp)
                    continue
                raise ProtocolError(f"unexpected server response: {head[:60]!r}")

        self._guarded(cmd, wait)

    def search_uids(self, criteria: bytes | list[bytes | wire.Literal] = b"ALL") -> list[int]:
        """UID SEARCH; ESEARCH's compact 'ALL' answer where the server offers it. criteria: bytes,
        or parts with literals (`wire.string(data)`): non-ASCII ones make it CHARSET UTF-8."""
        found: list[int] = []
        esearch = self.has("ESEARCH")
        parts = [criteria] if isinstance(criteria, bytes) else list(criteria)
        cmd = [b"UID SEARCH " + (b"RETURN (ALL) " if esearch else b"")
               + (b"CHARSET UTF-8 " if wire.has_8bit(parts) else b""), *parts]
        if all(isinstance(p, bytes) for p in cmd):
            cmd = b"".join(cmd)

        def handler(resp):
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

        self.command(cmd, handler)
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
        _, text = self.command([head + b" ", wire.Literal(message)])
        code, arg = wire.resp_code(text)
        if code == b"APPENDUID":
            words = arg.split()
            if len(words) == 2 and words[1].isdigit():
                return int(words[1])
        return None
