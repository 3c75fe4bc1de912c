"""The rows of a long headers_first download worked out in a helper process beside the sync.

A POP3 first download's header phase is CPU-bound in one process: per TOP answer ~6 us to read
it off the wire, ~5 us for its fingerprint, ~13 us for its row's fields (mail/headers.py) and
~12 us to store it. Measured (5,000 messages, 2 CPUs): once the app had drawn its first screen,
the sync was the only busy process and the other CPU idle. Here the fingerprints and fields go to
a forked helper a window at a time, while the sync reads the next window and stores the one
before: the two halves of the work run side by side.

`FieldPool.submit(window)` sends (raw, size) pairs; `take()` returns the oldest window's
[(fingerprint, fields)], in order. Both are pure functions of their inputs (plan.fingerprint,
ledger.row_fields), so a helper that fails or dies changes nothing but the speed: `take` then
works the window out here, as it does after HELPER_WAIT seconds without an answer (a helper that
hung is killed). The I/O never waits on a full socket while the other side waits on it (select
both ways). The helper ends when the socket closes (close(), or the sync dies).
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import socket
import struct
import time
from collections import deque

from tuimail.backends.pop3.ledger import row_fields
from tuimail.backends.pop3.plan import fingerprint

_LEN = struct.Struct("!I")
HELPER_WAIT = 10.0  # seconds without an answer (or room to send) before the helper is given up
_MAXFD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1 << 16

Window = list[tuple[bytes, int]]  # (TOP answer, size from LIST)
Fields = list[tuple[str, tuple]]  # (fingerprint, row fields)


def work_out(window: Window, now: float, headers_only: bool) -> Fields:
    return [(fingerprint(raw, size), row_fields(raw, size, now, headers_only)) for raw, size in window]


class FieldPool:
    def __init__(self, now: float, headers_only: bool = True) -> None:
        self.now, self.headers_only = now, headers_only
        self._sent: deque[Window] = deque()  # submitted, result not taken yet
        self._inbuf = bytearray()
        self._results: deque[Fields | None] = deque()  # None: the helper could not work it out
        self._sock: socket.socket | None = None
        self.pid: int | None = None
        ours, theirs = socket.socketpair()
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            raise
        if pid == 0:  # the helper (forked from the sync's thread: it touches nothing but its socket)
            code = 0
            try:
                # nothing else of the sync's stays open here: its socket to the app, the server's
                # connection and the store's file end with the sync, whatever this helper does
                keep = theirs.fileno()
                os.closerange(3, keep)
                os.closerange(keep + 1, _MAXFD)
                import gc
                gc.freeze()
                _serve(theirs, now, headers_only)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.pid, self._sock = pid, ours

    def submit(self, window: Window) -> None:
        self._sent.append(window)
        if self._sock is None:
            return
        data = marshal.dumps(window)
        out = memoryview(_LEN.pack(len(data)) + data)
        try:
            while out:
                readable, writable, _ = select.select([self._sock], [self._sock], [], HELPER_WAIT)
                if not readable and not writable:  # stuck: the rest is worked out here
                    self._lost()
                    return
                if readable:
                    self._read_some()
                if writable and self._sock is not None:
                    out = out[self._sock.send(out[:1 << 18]):]
                elif self._sock is None:
                    return
        except OSError:
            self._lost()

    def take(self) -> Fields:
        """The oldest submitted window's [(fingerprint, fields)]."""
        window = self._sent.popleft()
        while not self._results and self._sock is not None:
            if not select.select([self._sock], [], [], HELPER_WAIT)[0]:
                self._lost()  # no answer for HELPER_WAIT seconds: worked out here
                break
            self._read_some()
        got = self._results.popleft() if self._results else None
        return got if got is not None and len(got) == len(window) else work_out(window, self.now, self.headers_only)

    def _read_some(self) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(1 << 18)
        except OSError:
            chunk = b""
        if not chunk:
            self._lost()
            return
        self._inbuf += chunk
        while (frame := _next_frame(self._inbuf)) is not None:
            try:
                self._results.append(marshal.loads(frame))
            except (ValueError, EOFError, TypeError):
                self._results.append(None)

    def _lost(self) -> None:
        """The helper is gone: what it did not answer is worked out here."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        self._reap()

    def close(self) -> None:
        self._lost()

    def _reap(self) -> None:
        """Wait for the helper to end (its socket's end); one that does not within a second is
        killed (it cannot hold anything of the sync's: it keeps no descriptor but its socket)."""
        if self.pid is None:
            return
        deadline = time.monotonic() + 1.0
        try:
            while not os.waitpid(self.pid, os.WNOHANG)[0]:
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.002)
        except (ChildProcessError, ProcessLookupError):
            pass
        self.pid = None

    def __enter__(self) -> FieldPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _next_frame(buf: bytearray) -> bytes | None:
    """The first length-prefixed frame complete in `buf`, taken out of it; None if there is none."""
    if len(buf) < 4:
        return None
    n = _LEN.unpack_from(buf)[0]
    if len(buf) < 4 + n:
        return None
    frame = bytes(buf[4:4 + n])
    del buf[:4 + n]
    return frame


def _serve(sock: socket.socket, now: float, headers_only: bool) -> None:
    buf = bytearray()
    while True:
        while (frame := _next_frame(buf)) is None:
            chunk = sock.recv(1 << 18)
            if not chunk:
                return
            buf += chunk
        window = marshal.loads(frame)
        try:
            data = marshal.dumps(work_out(window, now, headers_only))
        except Exception:
            data = marshal.dumps(None)
        sock.sendall(_LEN.pack(len(data)) + data)
