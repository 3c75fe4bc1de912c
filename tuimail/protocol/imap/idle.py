"""IDLE (RFC 2177), a command group of ImapConnection like mailbox.py.

We wait on the socket with `selectors` and read whole responses through our buffer (imapclient's
idle_check breaks on a response split across packets, #519/#464). The wait is as long as the
caller wants; the "+" that starts it, each response during it and the answer to DONE come within
the command timeout, and a stream of data without news is bounded like unsolicited data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from tuimail.errors import CommandFailed, NetworkError, ProtocolError
from tuimail.protocol.imap import wire
from tuimail.protocol.imap.responses import Unsolicited, one_line
from tuimail.protocol.imap.session import Handler, Response, Session
from tuimail.protocol.imap.wire import ResponseReader


class Wake(wire.Fileno, Protocol):
    """What IDLE can be woken by besides the server (backends.waker.Waker): a readable fd, and a
    way to empty it once it woke us."""

    def drain(self) -> None: ...


class IdleCommands:
    """IDLE on the selected folder, through the connection's Session."""

    def __init__(self, session: Session):
        self.session = session

    def idle(self, timeout: float, stop: Callable[[], bool], tick: float = 1.0,
             wake: Wake | None = None) -> Unsolicited:
        """IDLE until the server reports something, `stop()` is true, or timeout. Then DONE.

        `wake` (a Waker: fileno() and drain()) is selected on together with the socket: when it
        is given, `stop()` is looked at when it fires, not every `tick` seconds."""
        try:
            return self._idle(timeout, stop, tick, wake)
        except ValueError as exc:  # as in read_until
            raise ProtocolError(f"malformed server response: {exc}") from None

    def _idle(self, timeout: float, stop: Callable[[], bool], tick: float, wake: Wake | None) -> Unsolicited:
        # The wait itself is as long as the caller wants; the "+" and the answer to DONE, and
        # each response during the wait, come within the command timeout.
        s = self.session
        reader = s.live_reader()
        tag = s.next_tag()
        s.send(tag + b" IDLE\r\n")
        idle, done = b"IDLE", b"IDLE (DONE)"

        def cont(resp: Response) -> bool:
            if resp[0].startswith(tag + b" "):
                raise CommandFailed("IDLE", "NO", one_line(resp[0].decode("utf-8", "replace")))
            return False

        self._read_responses(idle, lambda resp: resp[0].startswith(b"+"), cont)
        deadline = time.monotonic() + timeout
        waited = reader.consumed
        while not s.unsolicited.any() and not stop() and time.monotonic() < deadline:
            left = max(0.0, deadline - time.monotonic())
            if not reader.wait_readable(left if wake is not None else min(tick, left), wake):
                if wake is not None:
                    wake.drain()  # (the event it stands for is what stop() looks at)
                continue
            s.guarded(idle, self._one_idle_response)
            if reader.consumed - waited > s.max_unsolicited:
                s.broken = True
                raise ProtocolError(f"{s.where}: server sent more than {s.max_unsolicited >> 20} MB"
                                    " of data during IDLE without news; refused")
        s.send(b"DONE\r\n")
        self._read_responses(done, lambda resp: resp[0].startswith(tag + b" "), lambda resp: False)
        return s.take_unsolicited()

    def _one_idle_response(self, reader: ResponseReader) -> None:
        resp = reader.read_response()
        if resp[0].startswith(b"* BYE"):
            raise NetworkError(f"{self.session.where} closed the session during IDLE")
        self.session.generic_untagged(resp)

    def _read_responses(self, what: bytes, last: Handler, handled: Handler) -> None:
        """Responses through the generic handler until `last(resp)` (inclusive), with read_until's
        bounds (timeout, unsolicited data) and messages, for the IDLE steps that have no tag."""
        s = self.session

        def loop(reader: ResponseReader) -> None:
            while True:
                before = reader.consumed
                resp = reader.read_response()
                if last(resp):
                    return
                if resp[0].startswith(b"* BYE"):
                    raise NetworkError(f"{s.where} closed the session during IDLE")
                if handled(resp):
                    continue
                s.count_unsolicited(what, reader.consumed - before)
                s.generic_untagged(resp)

        s.guarded(what, loop)
