"""Undo in the TUI (issue #13 item 6), on the store only (FakeService replays nothing): `u` says
what it undid and the row is drawn as before; a move on the wire is undone once the server
answered; the history is in the palette. Against Dovecot: tests/integration/test_undo_ui.py."""

from __future__ import annotations

from tuimail.ui.screens.undo import UndoScreen

from .fixtures import run, screen_text, settle, wait_until


def test_u_undoes_a_flag_and_says_so(make_app):
    app, store, _svc = make_app(20)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            main = app.main
            uid = main.hlist.current_uid
            before = set(store.row(fid, uid).flags)
            await pilot.press("F")
            await wait_until(pilot, lambda: store.undo.latest() is not None)
            assert set(store.row(fid, uid).flags) != before
            await pilot.press("u")
            await wait_until(pilot, lambda: main.status.info.flash.startswith("undone:"))
            assert main.status.info.flash in ("undone: flagged 1 message", "undone: unflagged 1 message")
            assert set(store.row(fid, uid).flags) == before
            await pilot.press("u")
            await settle(pilot, app)
            assert set(store.row(fid, uid).flags) == before  # nothing left: said, nothing changed

    run(go())


def test_opening_a_message_is_not_an_undoable_action(make_app):
    app, store, _svc = make_app(20)

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            await pilot.press("d")  # to Trash
            await pilot.press("enter")  # opens the next one: marked read, not in the history
            await settle(pilot, app)
            await pilot.pause(0.3)
            await pilot.press("u")
            await wait_until(pilot, lambda: app.main.status.info.flash.startswith("undone:"))
            assert app.main.status.info.flash == "undone: moved 1 message to Trash"

    run(go())


def test_a_move_on_the_wire_is_undone_once_the_server_answered(make_app):
    app, store, _svc = make_app(20)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            main = app.main
            uid = main.hlist.current_uid
            await pilot.press("d")
            await wait_until(pilot, lambda: store.undo.latest() is not None)
            claimed = store.journal_claim(fid)  # the worker sends it now
            await pilot.press("u")
            await pilot.pause(0.3)
            assert uid not in main.hlist.uids and not main.status.info.flash.startswith("undone:")
            store.journal_release(e.id for e in claimed)  # (the connection was cut: not sent)
            await wait_until(pilot, lambda: main.status.info.flash.startswith("undone:"), timeout=5)
            await wait_until(pilot, lambda: uid in main.hlist.uids)
            assert store.pending() == []

    run(go())


def test_the_history_is_in_the_palette_and_enter_undoes_one(make_app):
    app, store, _svc = make_app(20)
    fid = store.folder_id("INBOX")

    async def go():
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, app)
            main = app.main
            first = main.hlist.current_uid
            await pilot.press("d")  # to Trash
            await pilot.press("j", "j", "N")  # another message: read / unread
            await wait_until(pilot, lambda: len(store.undo.history()) == 2)
            await pilot.press("colon", *"undo history", "enter")
            await settle(pilot, app)
            assert isinstance(app.screen, UndoScreen)
            lines = [ln for ln in screen_text(app).splitlines() if "message" in ln and ":" in ln]
            assert "marked 1 message" in lines[0] and "moved 1 message to Trash" in lines[1]
            await pilot.press("down", "enter")  # the move: the later read change is on another message
            await wait_until(pilot, lambda: main.status.info.flash == "undone: moved 1 message to Trash")
            await wait_until(pilot, lambda: first in main.hlist.uids)
            assert [e.state for e in store.undo.history()] == ["done", "undone"]
            assert store.pending_folders() == {"INBOX"}  # the read change still goes out
            assert store.row(fid, first) is not None

    run(go())
