"""Tags and bulk actions in the TUI against a real Dovecot and the real ImapService (issue 13
item 5): what the user does with the keys reaches the server's folders, as one intent per action."""

from __future__ import annotations

import asyncio
import time

from textual.widgets import Input

from tuimail import paths
from tuimail.store import Store

from .helpers import Cli, msg, server_state, store_state
from .test_reader_ui import _app, _screen, _settle


def _reply(i: int, parent: int, chain: list[int]) -> bytes:
    refs = " ".join(f"<m{p}@example.org>" for p in chain)
    return msg(i, f"Re: plan {parent}", extra=f"In-Reply-To: <m{parent}@example.org>\r\nReferences: {refs}\r\n")


async def _until(pilot, cond, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("not reached in time")
        await pilot.pause(0.1)


async def _type(pilot, app, text: str) -> None:
    await pilot.pause()
    app.screen.query_one(Input).value = text
    await pilot.press("enter")


def _mids(user, folder: str) -> set[str]:
    return set(server_state(user, folder))


def test_tag_move_copy_thread_and_all_read_reach_dovecot(tuimail_env, mailuser, capsys):
    mailuser.deliver("INBOX", msg(1, "plan"))
    mailuser.deliver("INBOX", _reply(2, 1, [1]))
    mailuser.deliver("INBOX", _reply(3, 2, [1, 2]))
    for i in range(4, 21):
        mailuser.deliver("INBOX", msg(i, f"note {i}"), flags="" if i % 2 else "S")
    mailuser.create_folder("Archive")
    mailuser.create_folder("Keep")
    config = tuimail_env.write_config(mailuser.config_toml())
    cli = Cli(config, capsys)
    cli("sync")
    app, store = _app(config)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await _settle(pilot, app)
            screen = app.screen
            hl = screen.hlist
            fid = store.folder_id("INBOX")
            mid = {i: r.message_id for i, r in store.rows(fid, store.id_list(fid)).items()}
            # tag by pattern: the notes 4..7, then `;s` moves them to Archive (one UID MOVE)
            await pilot.press("T")
            await _type(pilot, app, "~s 'note 4' | ~s 'note 5' | ~s 'note 6' | ~s 'note 7'")
            await _settle(pilot, app)
            assert len(hl.tagged) == 4
            tagged_mids = {mid[i] for i in hl.tagged}
            await pilot.press("semicolon", "s")
            await _type(pilot, app, "Archive")
            await _until(pilot, lambda: _mids(mailuser, "Archive") == tagged_mids)
            assert not tagged_mids & _mids(mailuser, "INBOX") and hl.tagged == set()
            # C: a copy of the message under the cursor in Keep, its row there at once (COPYUID)
            await pilot.press("g")
            first = mid[hl.current_uid]
            await pilot.press("C")
            await _type(pilot, app, "Keep")
            await _until(pilot, lambda: _mids(mailuser, "Keep") == {first})
            assert first in _mids(mailuser, "INBOX")
            keep = store.folder_id("Keep")
            await _until(pilot, lambda: store.counts(keep)[0] == 1)
            # ctrl+r: the whole "plan" thread read on the server
            plan = next(i for i, m in mid.items() if m == "<m3@example.org>")
            hl.select_uid(plan)
            await pilot.press("ctrl+r")
            await _until(pilot, lambda: all("\\Seen" in server_state(mailuser)[f"<m{i}@example.org>"]
                                            for i in (1, 2, 3)))
            assert "\\Seen" not in server_state(mailuser)["<m9@example.org>"]
            # ctrl+a: every message of the folder read, in one intent
            await pilot.press("ctrl+a")
            await _until(pilot, lambda: all("\\Seen" in f for f in server_state(mailuser).values()))
            await _until(pilot, lambda: not store.pending())
            await _settle(pilot, app)

    try:
        asyncio.run(go())
    finally:
        store.close()
    cli("sync")  # nothing doubles: the copy's row is the server's one
    assert store_state(folder="Keep") == server_state(mailuser, "Keep")
    assert store_state(folder="Archive") == server_state(mailuser, "Archive")
    assert store_state() == server_state(mailuser)
    with Store(paths.account_store_path("test")) as st:
        assert st.counts(st.folder_id("Keep"))[0] == 1


def test_semicolon_move_of_5000_from_the_keys_is_a_few_uid_move_lines(tuimail_env, mailuser, capsys):
    """The whole path on Dovecot: `T` tags 5,000 of 6,000 messages (scattered: five of every six),
    `;s` moves them to Archive; the client's lines, recorded by a proxy, hold a few UID MOVE
    lines of compact sets, each under 8 KB; the server's folders and the store agree."""
    from tests.support.proxy import FaultProxy

    n = 6000
    mailuser.deliver_many("INBOX", ((msg(i, "stay" if i % 6 == 5 else "go"), "S") for i in range(n)))
    mailuser.create_folder("Archive")
    proxy = FaultProxy(mailuser.imap_port, mailuser.host)
    config = tuimail_env.write_config(mailuser.config_toml(port=proxy.port))
    Cli(config, capsys)("sync")
    app, store = _app(config)

    def server_counts() -> tuple[int, int]:
        with mailuser.client() as c:
            return (c.select_folder("INBOX", readonly=True)[b"EXISTS"],
                    c.select_folder("Archive", readonly=True)[b"EXISTS"])

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await _settle(pilot, app)
            hl = app.screen.hlist
            await pilot.press("T")
            await _type(pilot, app, "~s go")
            await _until(pilot, lambda: len(hl.tagged) == 5000)
            await pilot.press("semicolon", "s")
            await _type(pilot, app, "Archive")
            # the status line says it (the store has it: one transaction), then the server follows
            await _until(pilot, lambda: "moved 5,000 messages to Archive" in _screen(app).splitlines()[-1])
            assert len(hl.uids) == 1000 and hl.tagged == set()
            await _until(pilot, lambda: server_counts() == (1000, 5000), timeout=60)
            await _until(pilot, lambda: not store.pending(), timeout=30)

    try:
        asyncio.run(go())
    finally:
        store.close()
        lines = [line for c in proxy.connections for _, line in c.client_lines]
        proxy.close()
    moves = [ln for ln in lines if b" UID MOVE " in ln[:20]]
    assert 2 <= len(moves) <= 4, [len(m) for m in moves]
    assert max(len(ln) for ln in lines) < 8000
    assert not any(b" UID STORE " in ln[:20] or b" UID COPY " in ln[:20] for ln in lines)  # no per-message fallback
    with Store(paths.account_store_path("test")) as st:
        assert st.counts(st.folder_id("Archive"))[0] == 5000 and st.counts(st.folder_id("INBOX"))[0] == 1000


def test_a_tagged_thread_moved_on_dovecot_comes_back_with_u(tuimail_env, mailuser, capsys):
    """The issue's walk-through on a real server: tag a thread, `;s` moves it (it reaches Dovecot),
    `u` moves it back (one step: the bulk move was one intent)."""
    mailuser.deliver("INBOX", msg(1, "plan"))
    mailuser.deliver("INBOX", _reply(2, 1, [1]))
    mailuser.deliver("INBOX", _reply(3, 2, [1, 2]))
    for i in range(4, 9):
        mailuser.deliver("INBOX", msg(i, f"note {i}"))
    mailuser.create_folder("Archive")
    config = tuimail_env.write_config(mailuser.config_toml())
    Cli(config, capsys)("sync")
    app, store = _app(config, threaded=True)
    thread = {f"<m{i}@example.org>" for i in (1, 2, 3)}

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await _settle(pilot, app)
            hl = app.screen.hlist
            fid = store.folder_id("INBOX")
            by_mid = {r.message_id: i for i, r in store.rows(fid, store.id_list(fid)).items()}
            hl.select_uid(by_mid["<m2@example.org>"])
            await app.screen.run_action("tag_thread")
            await _until(pilot, lambda: len(hl.tagged) == 3)
            await pilot.press("semicolon", "s")
            await _type(pilot, app, "Archive")
            await _until(pilot, lambda: _mids(mailuser, "Archive") == thread)
            await _until(pilot, lambda: not store.pending())
            await pilot.press("u")
            await _until(pilot, lambda: _mids(mailuser, "Archive") == set() and thread <= _mids(mailuser, "INBOX"))
            await _until(pilot, lambda: not store.pending())

    try:
        asyncio.run(go())
    finally:
        store.close()
    assert store_state() == server_state(mailuser) and len(store_state()) == 8
