"""Python's full garbage collections, moved to the moments the user is not typing.

CPython collects its oldest generation when enough objects have survived into it: at any moment,
on the thread that happens to allocate. During a 100k cold fill that was the UI thread in the
middle of a run of keys, 17-45 ms of CPU (90-250 ms of wall time on a busy machine): the longest
stalls measured (issue #10). Most of that garbage is Textual's rendered lines (a Strip caches its
own crops, itself among them: a cycle each), which only a collection frees.

So, once the first screen is drawn: what exists then (modules, widgets, the app) is frozen out of
the collector's sight, the automatic full collection is turned off, and a timer runs it when no
key or click came for IDLE seconds (at the latest every LONGEST seconds, so a key held down for
minutes does not grow the heap without bound). Younger generations are collected as always.
`stop` (the app ending) gives everything back.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

IDLE = 1.0  # seconds without input before a due full collection runs
LONGEST = 60.0  # a due full collection waits at most this long for the user to pause
TICK = 0.5  # how often the timer looks
_OFF = 1 << 30  # the oldest generation's threshold while this runs: never reached


class IdleCollector:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._saved: tuple[int, int, int] | None = None
        self._last_input = 0.0
        self._last_full = 0.0

    @property
    def running(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        if self._saved is not None:
            return
        saved = gc.get_threshold()
        if len(saved) != 3 or not gc.isenabled():  # (another interpreter's collector: left alone)
            return
        self._saved = (saved[0], saved[1], saved[2])
        gc.freeze()
        gc.set_threshold(saved[0], saved[1], _OFF)
        self._last_full = self.clock()

    def stop(self) -> None:
        if self._saved is None:
            return
        gc.set_threshold(*self._saved)
        self._saved = None
        gc.unfreeze()

    def input(self) -> None:
        """A key or a mouse event came in."""
        self._last_input = self.clock()

    def due(self) -> bool:
        """Would CPython have considered a full collection by now (its own count of younger
        collections since the last one)?"""
        return self._saved is not None and gc.get_count()[2] > self._saved[2]

    def tick(self) -> None:
        if not self.due():
            return
        now = self.clock()
        if now - self._last_input >= IDLE or now - self._last_full >= LONGEST:
            gc.collect()
            self._last_full = self.clock()
