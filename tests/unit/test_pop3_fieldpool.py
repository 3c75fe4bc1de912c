"""The helper that works out a long header download's fingerprints and row fields beside the sync
(backends/pop3/fieldpool.py): the same answers as working them out in place, in order, for
windows larger than a socket's buffer both ways; a helper that dies or answers garbage changes
nothing but the speed."""

from __future__ import annotations

import os
import signal

from tuimail.backends.pop3 import fieldpool
from tuimail.backends.pop3.fieldpool import FieldPool, work_out

NOW = 1_700_000_000.0


def head(i: int, refs: int = 3) -> bytes:
    more = b"".join(b"\r\n <r%d.%d@example.org>" % (i, k) for k in range(refs))
    return (b"From: =?UTF-8?Q?J=C3=BCrgen?= <j%d@example.org>\r\nTo: b@example.org\r\nSubject: message %d\r\n"
            b"Message-ID: <m%d@example.org>\r\nReferences: <r0@example.org>%s\r\n"
            b"Date: Mon, 1 Jan 2024 10:00:%02d +0000\r\n\r\n" % (i, i, i, more, i % 60))


def windows() -> list[list[tuple[bytes, int]]]:
    # the second window is several MB (long References lines): more than either socket buffer
    return [[(head(i), 1000 + i) for i in range(n, n + 50)] for n in (0, 50)] + [
        [(head(i, refs=400), 30000 + i) for i in range(100, 400)], [(head(9999)[:-2] + b"X: y\r\n\r\n", 7)]]


def test_the_pool_answers_as_in_place_in_order():
    ws = windows()
    with FieldPool(NOW) as pool:
        assert pool.pid is not None and pool.pid != os.getpid()
        for w in ws:  # all sent before any is taken: the helper's answers wait in the socket
            pool.submit(w)
        got = [pool.take() for _ in ws]
    assert got == [work_out(w, NOW, True) for w in ws]
    assert got[0][0][1][4] == "message 0" and got[0][0][1][1] == "Jürgen <j0@example.org>"


def test_a_helper_that_dies_or_answers_garbage_changes_nothing_but_the_speed(monkeypatch):
    ws = windows()
    with FieldPool(NOW) as pool:
        pool.submit(ws[0])
        assert pool.take() == work_out(ws[0], NOW, True)
        os.kill(pool.pid, signal.SIGKILL)
        pool.submit(ws[1])
        pool.submit(ws[2])
        assert pool.take() == work_out(ws[1], NOW, True)
        assert pool.take() == work_out(ws[2], NOW, True)
    assert pool.pid is None  # reaped

    def broken(window, now, headers_only):
        raise ValueError("a bug in the helper")

    monkeypatch.setattr(fieldpool, "work_out", broken)  # (the helper is forked with it)
    with FieldPool(NOW) as pool:
        monkeypatch.undo()
        pool.submit(ws[0])
        assert pool.take() == work_out(ws[0], NOW, True)


def test_the_helper_keeps_nothing_of_the_sync_open(tmp_path):
    """Its only descriptor past stdio is its socket: a file the sync holds (the store, the
    server's connection, the socket to the app) is not held open by the helper."""
    held = open(tmp_path / "store", "wb")
    try:
        with FieldPool(NOW) as pool:
            pool.submit([(head(1), 1)])  # (answered: the helper is past its start)
            assert pool.take() == work_out([(head(1), 1)], NOW, True)
            fds = sorted(int(f) for f in os.listdir(f"/proc/{pool.pid}/fd"))
            mine = [int(f) for f in os.listdir(f"/proc/{pool.pid}/fd")
                    if os.readlink(f"/proc/{pool.pid}/fd/{f}") == str(tmp_path / "store")]
    finally:
        held.close()
    assert mine == [] and len([f for f in fds if f > 2]) == 1, fds


def test_a_helper_that_hangs_is_given_up_and_killed(monkeypatch):
    import time
    monkeypatch.setattr(fieldpool, "HELPER_WAIT", 0.3)
    w = windows()[0]
    t = time.monotonic()
    with monkeypatch.context() as m:
        m.setattr(fieldpool, "work_out", lambda window, now, headers_only: time.sleep(3600))
        pool = FieldPool(NOW)  # (forked with the hanging work_out)
    with pool:
        pid = pool.pid
        pool.submit(w)
        assert pool.take() == work_out(w, NOW, True)
        assert pool.pid is None
    assert time.monotonic() - t < 3
    try:
        os.kill(pid, 0)
        raise AssertionError("the hung helper still runs")
    except ProcessLookupError:
        pass
