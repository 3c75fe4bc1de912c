"""Python's full garbage collections, moved to the moments the user is not typing.

CPython collects its oldest generation when enough objects have survived into it: at any moment,
on the thread that happens to allocate. During a 100k cold fill that was the UI thread in the
middle of a run of keys, 17-45 ms of CPU (90-250 ms of wall time on a busy machine): the longest
stalls measured (issue #10). Most of that garbage is Textual's rendered lines (a Strip caches its
own crops, itself among them: a cycle each), which only a collection frees.

So, once the first screen is drawn: what exists then (modules, widgets, the app) is frozen out of
the collector's sight, the automatic collections of the two older generations are turned off, and
a timer runs the one CPython would have run when no key or click came for IDLE seconds (at the
latest every LONGEST seconds, so a key held down for minutes does not grow the heap without bound).
The middle generation's passes cost ~10 ms each on the UI thread during a fill (measured after the
full ones had moved: the largest stalls left), so it waits for a pause too. Only the youngest
generation (a few hundred objects) is collected as always. `stop` (the app ending) gives
everything back.

Before the first screen, nothing is collected at all (`hold_for_start`, called by run_app before
Textual is imported): a start-up allocates a few hundred thousand objects, nearly all of which
live on (modules, classes, the widgets), and CPython's collections of them cost 30-50 ms of the
first screen (measured: ~180 young passes, middle ones, and a 13 ms full pass just before the
list's first paint). `start` turns the collector back on, with the start-up frozen.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

IDLE = 1.0  # seconds without input before a due full collection runs
LONGEST = 60.0  # a due full collection waits at most this long for the user to pause
TICK = 0.5  # how often the timer looks
_OFF = 1 << 30  # the oldest generation's threshold while this runs: never reached
_held = False  # hold_for_start() turned the collector off


def hold_for_start() -> None:
    """No collection until the first screen is drawn (IdleCollector.start) or release_start()."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def release_start() -> None:
    """The collector back on if hold_for_start() turned it off (start does this, and so does the
    app's end should it never draw a first screen)."""
    global _held
    if _held:
        _held = False
        gc.enable()


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
        release_start()
        saved = gc.get_threshold()
        if len(saved) != 3 or not gc.isenabled():  # (another interpreter's collector: left alone)
            return
        self._saved = (saved[0], saved[1], saved[2])
        gc.freeze()
        gc.set_threshold(saved[0], _OFF, _OFF)
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

    def due(self) -> int | None:
        """The oldest generation CPython would have collected by now (its own counts of younger
        collections since the last one of each), or None."""
        if self._saved is None:
            return None
        count = gc.get_count()
        if count[2] > self._saved[2]:
            return 2
        if count[1] > self._saved[1]:
            return 1
        return None

    def tick(self) -> None:
        generation = self.due()
        if generation is None:
            return
        now = self.clock()
        if now - self._last_input >= IDLE or now - self._last_full >= LONGEST:
            gc.collect(generation)
            self._last_full = self.clock()
