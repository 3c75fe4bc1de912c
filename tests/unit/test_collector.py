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
        assert c.running and gc.get_threshold()[1:] == (mod._OFF, mod._OFF) and gc.get_freeze_count() > 0
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


def test_the_middle_generation_waits_for_a_pause_too(monkeypatch):
    """Its passes were the largest UI-thread stalls left during a 100k fill (~10 ms each)."""
    before = gc.get_threshold()
    clock = Clock()
    c = IdleCollector(clock)
    runs: list[int] = []

    def count(phase, info):
        if phase == "start":
            runs.append(info["generation"])

    try:
        c.start()
        gc.callbacks.append(count)
        monkeypatch.setattr(mod.gc, "get_count", lambda: (0, before[1] + 1, 0))  # a middle one is due
        c.input()
        clock.t += mod.IDLE / 2
        c.tick()
        assert 1 not in runs  # typing: it waits
        clock.t += mod.IDLE
        c.tick()
        assert 1 in runs and 2 not in runs  # a pause: that generation, not a full collection
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        c.stop()
    assert gc.get_threshold() == before
