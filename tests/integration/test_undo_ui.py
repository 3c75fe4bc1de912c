"""Undo in the TUI against a real Dovecot and the real ImapService (issue #13 item 6): `d` moves to
Trash and the worker carries it to the server; `u` offline says what it undid and the move back
waits; online, the message is back in INBOX on the server (checked on a separate connection).
The history (`U`) lists the actions newest first, Enter undoes one, and it is there again after
a restart."""

from __future__ import annotations

import asyncio
import time

from tuimail.ui.screens.undo import UndoScreen

from .helpers import Cli, msg, server_state
from .test_reader_ui import _app, _screen, _settle


async def _until(pilot, what, cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def test_delete_undo_offline_then_online_and_the_history_after_a_restart(tuimail_env, mailuser, capsys):
    mailuser.deliver_many("INBOX", ((msg(i, f"note {i}"), "S") for i in range(3)))
    config = tuimail_env.write_config(mailuser.config_toml())
    Cli(config, capsys)("sync")
    app, store = _app(config)

    def in_trash() -> bool:
        return "<m2@example.org>" in server_state(mailuser, "Trash")

    async def first():
        async with app.run_test(size=(100, 24)) as pilot:
            await _settle(pilot, app)
            main = app.main
            await pilot.press("d")  # the newest, on top: note 2
            await _until(pilot, "the move on the server", in_trash)
            assert "note 2" not in _screen(app)
            await pilot.press("ctrl+o")  # offline
            await pilot.press("u")
            await _until(pilot, "the status line", lambda: "undone:" in main.status.info.flash)
            assert main.status.info.flash == "undone: moved 1 message to Trash"
            await pilot.pause(0.5)
            assert in_trash()  # offline: the move back waits in the journal
            await pilot.press("ctrl+o")  # online
            await _until(pilot, "the move back on the server",
                         lambda: not in_trash() and "<m2@example.org>" in server_state(mailuser))
            await _until(pilot, "the row back in the list", lambda: "note 2" in _screen(app))
            await pilot.press("g", "F")  # flag note 2 (the newest, on top)
            await _until(pilot, "the flag on the server",
                         lambda: "\\Flagged" in server_state(mailuser).get("<m2@example.org>", ()))
            await pilot.press("U")
            await _settle(pilot, app)
            assert isinstance(app.screen, UndoScreen)
            lines = [ln for ln in _screen(app).splitlines() if "message" in ln]
            assert "flagged 1 message" in lines[0] and "note 2" in lines[0]
            assert "moved 1 message to Trash" in lines[1] and "(undone)" in lines[1]
            await pilot.press("enter")
            await _until(pilot, "the unflag on the server",
                         lambda: server_state(mailuser)["<m2@example.org>"] == {"\\Seen"})
            assert main.status.info.flash == "undone: flagged 1 message"
            await pilot.press("u")  # nothing left
            await pilot.pause(0.2)
            assert server_state(mailuser, "Trash") == {} and len(server_state(mailuser)) == 3

    try:
        asyncio.run(first())
    finally:
        store.close()

    app2, store2 = _app(config)  # a restart: the history is in the store

    async def second():
        async with app2.run_test(size=(100, 24)) as pilot:
            await _settle(pilot, app2)
            await pilot.press("U")
            await _settle(pilot, app2)
            text = _screen(app2)
            assert "flagged 1 message" in text and "moved 1 message to Trash" in text
            await pilot.press("escape")

    try:
        asyncio.run(second())
    finally:
        store2.close()
