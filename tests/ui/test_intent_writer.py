"""The UI thread never waits on SQLite's write lock (issue 10.4): intents go to a writer thread,
the row is repainted from the overlay at once, a failed write comes back as a toast."""

from __future__ import annotations

import sqlite3
import threading
import time

from tuimail.store.store import Store

from .fixtures import run, screen_text, settle

# A key press through the pilot (the handler, then a repaint) on a busy 2-core machine; waiting
# on the lock, as before, took the whole hold (1-3 s). The bench measures the stall itself.
PRESS_LIMIT = 0.25


def _hold_write_lock(path, release: threading.Event, held: threading.Event, limit: float = 3.0) -> threading.Thread:
    """Another connection takes the write lock (as the sync's thread-order transaction does)."""

    def hold():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(limit)
        conn.execute("COMMIT")
        conn.close()

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert held.wait(5)
    return t


def _line(app, uid: int) -> str:
    """The list's line of `uid`, as drawn (the flag columns first)."""
    hl = app.main.hlist
    idx = list(hl.uids).index(uid)
    return hl.render_line(idx - hl.scroll_offset.y).text


async def _timed_press(pilot, key: str) -> float:
    t0 = time.perf_counter()
    await pilot.press(key)
    return time.perf_counter() - t0


def test_keys_answer_while_another_connection_holds_the_write_lock(make_app):
    app, store, svc = make_app(50)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j")  # uid 2: seen, not flagged
            assert app.main.hlist.current_uid == 2
            release, held = threading.Event(), threading.Event()
            holder = _hold_write_lock(store.path, release, held)
            try:
                took = [await _timed_press(pilot, "F"), await _timed_press(pilot, "N")]
                # the flags are on screen while the lock is still held
                line = _line(app, 2)
                assert line[:3] == "N! ", line
                assert store.pending() == []  # not written yet: the writer waits, not the UI
                assert max(took) < PRESS_LIMIT, took
                took.append(await _timed_press(pilot, "d"))  # a move after the flags
                assert 2 not in app.main.hlist.uids
                assert max(took) < PRESS_LIMIT, took
            finally:
                release.set()
                holder.join(5)
            assert app.intent_writers["test"].flush(10)
            await settle(pilot, app)
            entries = store.pending()
            assert [(e.op, e.msg_id, e.add_flags, e.remove_flags, e.dest) for e in entries] == [
                ("flags", 2, ("flagged",), ("seen",), None), ("move", 2, (), (), "Trash")]
            assert entries[0].id < entries[1].id
            row = store.row(fid, 2)
            assert row.flagged and not row.seen
            assert ("wake",) in svc.calls

    run(go())


def _disk_full_once_released(monkeypatch) -> threading.Event:
    """Every flag write waits for the returned event, then fails as a full disk does."""
    go_on = threading.Event()

    def full(self, *a, **kw):
        go_on.wait(5)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "set_flags", full)
    return go_on


def test_a_failed_write_puts_the_row_back_and_says_why(make_app, monkeypatch):
    app, store, _svc = make_app(50)
    fid = store.folder_id("INBOX")
    go_on = _disk_full_once_released(monkeypatch)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j")
            before = _line(app, 2)
            assert before[:3] == "   "
            await pilot.press("F")
            assert _line(app, 2)[:3] == " ! "  # at once, before the write
            go_on.set()
            assert app.intent_writers["test"].flush(10)
            await settle(pilot, app)
            assert _line(app, 2) == before  # undone
            toasts = [n.message for n in app._notifications]
            assert any("disk full" in m and "nothing was lost" in m for m in toasts), toasts
            assert "Traceback" not in screen_text(app)
            assert store.pending() == [] and not store.row(fid, 2).flagged
            # the next key works again on the row as stored
            monkeypatch.undo()
            await pilot.press("F")
            assert app.intent_writers["test"].flush(10)
            await settle(pilot, app)
            assert store.row(fid, 2).flagged

    run(go())


def test_quit_writes_the_queued_intents_first(make_app):
    app, store, _svc = make_app(50)
    fid = store.folder_id("INBOX")
    release, held = threading.Event(), threading.Event()

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("j")
            holder = _hold_write_lock(store.path, release, held, limit=1.0)  # released after ~1 s
            took = [await _timed_press(pilot, "F"), await _timed_press(pilot, "j"), await _timed_press(pilot, "d")]
            assert max(took) < PRESS_LIMIT, took
            assert store.pending() == []
            await pilot.press("q")
            holder.join(5)

    run(go())
    assert [(e.op, e.msg_id) for e in store.pending()] == [("flags", 2), ("move", 3)]
    assert store.row(fid, 2).flagged


def test_threaded_list_keeps_its_order_while_the_sync_writes_it_in_chunks(make_app):
    from tuimail.mail.thread import thread_order
    from tuimail.store.threads import THREADS_CLEAN, THREADS_WRITING

    app, store, _svc = make_app(50)
    fid = store.folder_id("INBOX")
    store.set_threads(fid, thread_order(store.headers_for_threading(fid)))

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            hl = app.main.hlist
            hl.set_order(threaded=True)
            await settle(pilot, app)
            before = list(hl.uids)
            # the sync is between two transactions of a new order: half of it is new
            with store.transaction():
                store.db.execute("UPDATE threads SET pos = -pos WHERE folder_id = ? AND id <= 25", (fid,))
                store.db.execute("UPDATE folders SET threads_dirty = ? WHERE id = ?", (THREADS_WRITING, fid))
            hl.rows_changed(reset=True)
            await pilot.pause(0.5)
            await settle(pilot, app)
            assert list(hl.uids) == before  # not the half-written order
            with store.transaction():
                store.db.execute("UPDATE folders SET threads_dirty = ? WHERE id = ?", (THREADS_CLEAN, fid))
            await pilot.pause(0.5)
            await settle(pilot, app)
            assert list(hl.uids) != before and sorted(hl.uids) == sorted(before)  # the whole new one

    run(go())


def test_quit_says_which_queued_intent_failed(make_app, monkeypatch):
    app, store, _svc = make_app(50)
    go_on = _disk_full_once_released(monkeypatch)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("F")
            threading.Timer(0.3, go_on.set).start()  # fails while `q` waits for it
            await pilot.press("q")

    run(go())
    assert app.exit_line and "1 action not saved" in app.exit_line and "disk full" in app.exit_line, app.exit_line
    assert store.pending() == []
