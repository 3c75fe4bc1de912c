"""Waker: a threading.Event that a select() can wait on too (a self-pipe).

`ImapService.wake()` sets it from any thread; the IDLE wait selects on the IMAP socket and on
`fileno()` together, so the worker leaves IDLE as soon as an action is committed (no polling).
The event is the truth; the pipe only interrupts a wait: whoever wakes up drains it and looks
at the event.
"""

from __future__ import annotations

import os
import threading


class Waker:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self._closed = False
        self._lock = threading.Lock()  # (a closed fd's number may be reused: never write to it)

    def set(self) -> None:
        self._event.set()  # first the event, then the byte: a woken select sees the event set
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self._w, b"!")
            except OSError:  # full: a wake-up is already waiting
                pass

    def clear(self) -> None:
        self._event.clear()
        self.drain()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def fileno(self) -> int:
        return self._r

    def drain(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                while os.read(self._r, 4096):
                    pass
            except OSError:  # empty
                pass

    def close(self) -> None:
        """Once no thread selects on it any more."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._r)
                os.close(self._w)
