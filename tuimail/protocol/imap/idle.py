"""IDLE (RFC 2177), a mixin of ImapConnection like mailbox.py.

We wait on the socket with `selectors` and read whole responses through our buffer (imapclient's
idle_check breaks on a response split across packets, #519/#464). The wait is as long as the
caller wants; the "+" that starts it, each response during it and the answer to DONE come within
the command timeout, and a stream of data without news is bounded like unsolicited data.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tuimail.errors import CommandFailed, NetworkError, ProtocolError
from tuimail.protocol.imap.responses import Unsolicited, one_line


class IdleCommands:
    def idle(self, timeout: float, stop: Callable[[], bool], tick: float = 1.0, wake=None) -> Unsolicited:
        """IDLE until the server reports something, `stop()` is true, or timeout. Then DONE.

        `wake` (a Waker: fileno() and drain()) is selected on together with the socket: when it
        is given, `stop()` is looked at when it fires, not every `tick` seconds."""
        try:
            return self._idle(timeout, stop, tick, wake)
        except ValueError as exc:  # as in read_until
            raise ProtocolError(f"malformed server response: {exc}") from None

    def _idle(self, timeout: float, stop: Callable[[], bool], tick: float, wake=None) -> Unsolicited:
        # The wait itself is as long as the caller wants; the "+" and the answer to DONE, and
        # each response during the wait, come within the command timeout.
        self._tagnum += 1
        tag = b"T%d" % self._tagnum
        self._send(tag + b" IDLE\r\n")
        idle, done = b"IDLE", b"IDLE (DONE)"

        def cont(resp) -> bool:
            if resp[0].startswith(tag + b" "):
                raise CommandFailed("IDLE", "NO", one_line(resp[0].decode("utf-8", "replace")))
            return False

        self._read_responses(idle, lambda resp: resp[0].startswith(b"+"), cont)
        deadline = time.monotonic() + timeout
        waited = self.reader.consumed
        while not self.unsolicited.any() and not stop() and time.monotonic() < deadline:
            left = max(0.0, deadline - time.monotonic())
            if not self.reader.wait_readable(left if wake is not None else min(tick, left), wake):
                if wake is not None:
                    wake.drain()  # (the event it stands for is what stop() looks at)
                continue
            self._guarded(idle, self._one_idle_response)
            if self.reader.consumed - waited > self.max_unsolicited:
                self.broken = True
                raise ProtocolError(f"{self.where}: server sent more than {self.max_unsolicited >> 20} MB"
                                    " of data during IDLE without news; refused")
        self._send(b"DONE\r\n")
        self._read_responses(done, lambda resp: resp[0].startswith(tag + b" "), lambda resp: False)
        return self.take_unsolicited()

    def _one_idle_response(self) -> None:
        resp = self.reader.read_response()
        if resp[0].startswith(b"* BYE"):
            raise NetworkError(f"{self.where} closed the session during IDLE")
        self._generic_untagged(resp)

    def _read_responses(self, what: bytes, last: Callable[[list[bytes]], bool], handled) -> None:
        """Responses through the generic handler until `last(resp)` (inclusive), with read_until's
        bounds (timeout, unsolicited data) and messages, for the IDLE steps that have no tag."""
        def loop():
            reader = self.reader
            while True:
                before = reader.consumed
                resp = reader.read_response()
                if last(resp):
                    return
                if resp[0].startswith(b"* BYE"):
                    raise NetworkError(f"{self.where} closed the session during IDLE")
                if handled(resp):
                    continue
                self._unsolicited(what, reader.consumed - before)
                self._generic_untagged(resp)

        self._guarded(what, loop)
