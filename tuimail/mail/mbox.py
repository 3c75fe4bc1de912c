"""A message as an mbox entry (mutt's "save to file", issue 13 item 5): pure, no I/O.

    entry(raw, now) -> b"From sender@example.org Mon Jan  1 00:00:39 2024\\n" + the message + b"\\n"

The From_ line names the envelope sender (Return-Path, else the From address, else
MAILER-DAEMON) and the date the message was sent (its Date header, else `now`), in asctime form
and UTC. Line ends become LF, as mbox files hold them. Quoting is mboxrd's: a body line that
starts with any number of ">" then "From " gets one more ">", so that a reader splitting on
"From " lines never cuts a message and a reader that unquotes gets the message back exactly.
"""

from __future__ import annotations

import re
import time
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

from tuimail.mail.addresses import parse_addresses

_FROM_LINE = re.compile(rb"^(>*From )", re.M)
_SAFE_SENDER = re.compile(r"[^\s<>\"]{1,256}")


def is_mbox(head: bytes) -> bool:
    """The start of a file is an mbox's (or the file is empty: anything may follow)."""
    return head == b"" or head.startswith(b"From ")


def _sender(headers) -> str:
    for value in (headers.get("Return-Path"), headers.get("From")):
        addrs = parse_addresses(str(value)) if value else []
        for _name, addr in addrs:
            if addr and _SAFE_SENDER.fullmatch(addr):
                return addr
    return "MAILER-DAEMON"


def _sent_at(headers, now: float) -> float:
    value = headers.get("Date")
    if value:
        try:
            return parsedate_to_datetime(str(value)).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return now


def from_line(raw: bytes, now: float) -> bytes:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    headers = BytesHeaderParser().parsebytes(head + b"\n\n")
    try:
        stamp = time.asctime(time.gmtime(_sent_at(headers, now)))
    except (OverflowError, OSError, ValueError):
        stamp = time.asctime(time.gmtime(now))
    return f"From {_sender(headers)} {stamp}\n".encode("ascii", "replace")


def entry(raw: bytes, now: float | None = None) -> bytes:
    """One mbox entry: the From_ line, the message (LF line ends, >From quoted), a blank line."""
    now = time.time() if now is None else now
    body = raw.replace(b"\r\n", b"\n")
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return from_line(raw, now) + _FROM_LINE.sub(rb">\1", body) + b"\n"
