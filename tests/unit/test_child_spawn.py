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


def test_the_connection_frames_objects_and_ends_as_the_listener_expects():
    """child.Connection (in place of multiprocessing's): objects both ways, a message that does
    not unpickle raises with the stream still in step, EOFError at the other end's close,
    OSError once closed here (ChildLink._listen and serve_commands rely on each)."""
    import pickle
    import socket
    import struct
    import threading

    import pytest

    from tuimail.backends.child import Connection

    a, b = socket.socketpair()
    ours, theirs = Connection(a.detach()), Connection(b.detach())
    ours.send(("event", {"n": 1}, None))
    assert theirs.recv() == ("event", {"n": 1}, None)
    big = b"x" * (3 << 20)  # (more than one read, and more than the socket holds: sent from a thread)
    sender = threading.Thread(target=theirs.send, args=(big,))
    sender.start()
    assert ours.recv() == big
    sender.join()
    bad = b"\x80\x05garbage"
    theirs._sock.sendall(struct.pack("!I", len(bad)) + bad)  # type: ignore[union-attr]
    theirs.send("after")
    with pytest.raises(pickle.UnpicklingError):
        ours.recv()
    assert ours.recv() == "after"
    theirs.close()
    with pytest.raises(EOFError):
        ours.recv()
    ours.close()
    ours.close()  # (twice: nothing)
    with pytest.raises(OSError):
        ours.send(1)
    with pytest.raises(OSError):
        ours.recv()
