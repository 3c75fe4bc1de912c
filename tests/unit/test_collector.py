"""The UI's garbage collector policy (ui/collector.py): full collections wait for a pause."""

from __future__ import annotations

import gc

from tuimail.ui import collector as mod
from tuimail.ui.collector import IdleCollector


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_full_collections_wait_for_a_pause_and_stop_gives_everything_back(monkeypatch):
    before = gc.get_threshold()
    clock = Clock()
    c = IdleCollector(clock)
    full: list[int] = []

    def count(phase, info):
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    try:
        c.start()
        assert c.running and gc.get_threshold()[2] == mod._OFF and gc.get_freeze_count() > 0
        c.start()  # (twice: still one set of saved thresholds)
        gc.callbacks.append(count)
        monkeypatch.setattr(mod.gc, "get_count", lambda: (0, 0, before[2] + 1))  # one is due
        c.input()
        clock.t += mod.IDLE / 2
        c.tick()
        assert not full  # typing: it waits
        clock.t += mod.IDLE
        c.tick()
        assert len(full) == 1  # a pause: it runs
        c.input()
        clock.t += mod.LONGEST
        c.input()
        c.tick()
        assert len(full) == 2  # typing for too long: it runs anyway
        monkeypatch.setattr(mod.gc, "get_count", lambda: (0, 0, 0))
        clock.t += 2 * mod.LONGEST
        c.tick()
        assert len(full) == 2  # nothing due: nothing done
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        c.stop()
    assert not c.running and gc.get_threshold() == before and gc.get_freeze_count() == 0
    c.stop()  # (twice: harmless)
