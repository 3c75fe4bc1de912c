"""backends/child.py's choice between a fork and a fresh interpreter (the fork itself, against a real
server, is tests/integration/test_pop3_process.py's first-run test)."""

from __future__ import annotations

import os
import subprocess

from tuimail.backends import child


def test_no_fork_once_a_store_was_opened_or_a_thread_runs(tmp_path, monkeypatch):
    from tuimail.store import Store
    Store(tmp_path / "s.sqlite3").close()  # (this process has opened a store connection)
    assert not child.can_fork()
    monkeypatch.setattr("tuimail.store.db._opened", 0)
    monkeypatch.setattr(child.threading, "active_count", lambda: 2)
    assert not child.can_fork()
    monkeypatch.setattr(child.threading, "active_count", lambda: 1)
    assert child.can_fork() == hasattr(os, "fork")
    monkeypatch.setenv("TUIMAIL_SPAWN", "1")
    assert not child.can_fork()


def test_a_failed_fork_falls_back_to_a_fresh_interpreter(monkeypatch):
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(child, "can_fork", lambda: True)
    monkeypatch.setattr(child.os, "fork", no_fork)
    proc, pipe = child.spawn("tuimail.backends.pop3.process")
    try:
        assert isinstance(proc, subprocess.Popen)
    finally:
        pipe.close()  # the child reads EOF before its setup and ends
        assert proc.wait(30) == 0
