"""Thread order is written in bounded transactions (issue 10.4): a first fill of a big folder
must not hold the write lock for the whole order while a user's flag waits behind it."""

from __future__ import annotations

import threading
import time

from tuimail.mail.thread import thread_order
from tuimail.store import Store, threads
from tuimail.store.threads import THREADS_ALL, THREADS_CLEAN
from tuimail.store.writer import Intent, IntentWriter
from tests.support.rows import v6rows

N = 10_000


def _filled(path) -> tuple[Store, int]:
    store = Store(path)
    fid = store.upsert_folder("INBOX", "/", (), None)
    rows = []
    for uid in range(1, N + 1):
        parent = f"<{uid - 1}@x>" if uid % 4 else None  # threads of four
        rows.append((uid, 0, "", 1_700_000_000 + uid * 60, "f", "t", "", "s", f"<{uid}@x>", parent, parent or "",
                     1, 0))
    store.insert_headers(fid, v6rows(rows))
    return store, fid


def test_set_threads_commits_in_bounded_chunks(tmp_path):
    store, fid = _filled(tmp_path / "s.sqlite3")
    commits: list[str] = []
    store.db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    seen_mid_way: list[tuple[int, bool]] = []
    other = Store(tmp_path / "s.sqlite3")
    real = threads.yield_to_intents

    def between(path, limit=0.05):  # between two transactions: what another connection reads
        seen_mid_way.append((other.threads_state(fid), other.thread_view(fid)[2]))
        real(path, limit)

    threads.yield_to_intents = between
    try:
        store.set_threads(fid, thread_order(store.headers_for_threading(fid)))
    finally:
        threads.yield_to_intents = real
    store.db.set_trace_callback(None)
    expected = -(-N // threads.ROWS_PER_TX)
    assert len(commits) == expected > 1
    assert seen_mid_way and all(s == (THREADS_ALL, True) for s in seen_mid_way)  # half written
    assert store.threads_state(fid) == THREADS_CLEAN and not other.thread_view(fid)[2]
    info = store.thread_info(fid)
    assert len(info) == N and sorted(u for u, _d, _r in info) == list(range(1, N + 1))
    # the same order as one transaction writes
    ref, rfid = _filled(tmp_path / "r.sqlite3")
    old = threads.ROWS_PER_TX
    threads.ROWS_PER_TX = 10 ** 9
    try:
        ref.set_threads(rfid, thread_order(ref.headers_for_threading(rfid)))
    finally:
        threads.ROWS_PER_TX = old
    assert ref.thread_info(rfid) == info
    for s in (store, other, ref):
        s.close()


def test_a_queued_intent_gets_the_lock_between_chunks(tmp_path):
    """The writer thread waits a chunk, not the whole order."""
    store, fid = _filled(tmp_path / "s.sqlite3")
    done = threading.Event()
    done_at: list[float] = []

    def on_done(intent, uids, error):
        assert error is None and uids == [5]
        done_at.append(time.monotonic())
        done.set()

    writer = IntentWriter(store.path, on_done)
    holding = threading.Event()
    t0 = [0.0]

    def slow_chunk(sql):
        if sql.startswith("INSERT OR REPLACE INTO threads") and not holding.is_set():
            holding.set()
            t0[0] = time.monotonic()
            writer.submit(Intent("flags", fid, (5,), add=("flagged",)))
            time.sleep(0.05)  # the writer is queued behind this chunk's transaction

    store.db.set_trace_callback(slow_chunk)
    try:
        store.set_threads(fid, thread_order(store.headers_for_threading(fid)))
    finally:
        store.db.set_trace_callback(None)
    end = time.monotonic()
    assert done.wait(10)
    assert done_at[0] < end  # between two chunks, not after the whole order
    assert writer.close(5)
    assert store.row(fid, 5).flagged and [e.msg_id for e in store.pending()] == [5]
    store.close()


def test_writer_reports_a_store_error_and_goes_on(tmp_path):
    store, fid = _filled(tmp_path / "s.sqlite3")
    results = []
    writer = IntentWriter(store.path, lambda i, u, e: results.append((i.ids, u, e)))
    writer.submit(Intent("flags", fid, (1,), add=("bad flag",)))  # refused: a space in a flag
    writer.submit(Intent("flags", fid, (2,), add=("flagged",)))
    assert writer.close(5)
    assert isinstance(results[0][2], ValueError) and results[0][1] == []
    assert results[1][1:] == ([2], None)
    store.close()


def test_a_sync_window_commits_in_bounded_chunks(tmp_path):
    """insert_headers: a 5000-row window is several short transactions, each row whole, the
    pending intents applied to every chunk."""
    from tuimail.store import store as store_mod

    store = Store(tmp_path / "s.sqlite3")
    fid = store.upsert_folder("INBOX", "/", (), None)
    store.insert_headers(fid, v6rows([(1, 0, "", 1_700_000_000, "f", "t", "", "s", "<1@x>", None, "", 1, 0)]))
    store.set_flags(fid, [1], add=("flagged",))  # a pending intent on a row the window brings again
    commits: list[str] = []
    store.db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    rows = [(uid, 0, "\\Seen", 1_700_000_000 + uid, "f", "t", "", "s", f"<{uid}@x>", None, "", 1, 0)
            for uid in range(5000, 0, -1)]  # newest first (the store appends them in the order given)
    ids = store.insert_headers(fid, v6rows(rows))
    assert len(ids) == 5000 and ids[-1] == 1 and ids[0] == 2  # (uid 1 was stored: it keeps its id)
    store.db.set_trace_callback(None)
    assert len(commits) == -(-5000 // store_mod.ROWS_PER_TX) > 1
    assert len(store.id_list(fid, "date", False)) == 5000
    assert store.row(fid, 1).flags == {"flagged", "seen"} and store.row(fid, 2).flags == {"seen"}
    store.close()
