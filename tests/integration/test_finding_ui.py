"""Finding mail in the app against a real Dovecot and the real ImapService (issue #13): `l` limit,
`/` search in the list, and searches across every folder of two accounts as virtual folders
(the [searches] table with live counts, `S` ad hoc), acting on a result in its own folder."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC

from tuimail import paths
from tuimail.config.load import load_config
from tuimail.store import Store
from tuimail.backends.imap.service import ImapService
from tuimail.ui.app import TuimailApp

from .helpers import Cli, server_state

NOW = 1_704_153_600  # 2024-01-02 00:00 UTC


def mail(i: int, sender: str, subject: str, body: str = "hello\r\n") -> bytes:
    return (f"From: {sender}\r\nTo: me@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, 01 Jan 2024 {i % 24:02d}:00:00 +0000\r\nMessage-ID: <f{i}@example.org>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()


HADDAD = "Omar Haddad <omar@haddad.example>"


def _fill(user, other=None) -> None:
    user.deliver("INBOX", mail(1, HADDAD, "budget draft"))  # unread
    user.deliver("INBOX", mail(2, HADDAD, "budget final"), flags="S")
    user.deliver("INBOX", mail(3, HADDAD, "lunch?"))  # unread
    user.deliver("INBOX", mail(4, "Bea <bea@example.org>", "Invoice 42"))  # unread, not Haddad
    user.deliver("INBOX", mail(5, "Cy <cy@example.org>", "notes", "the word zanzibar is here\r\n"), flags="S")
    user.deliver("INBOX", mail(6, "Di <di@example.org>", "holiday"), flags="S")
    user.deliver("Archive", mail(7, "Ed <ed@example.org>", "old notes", "zanzibar again\r\n"), flags="S")
    user.deliver("Kept", mail(9, "Gil <gil@example.org>", "kept"), flags="S")
    if other is not None:
        other.deliver("INBOX", mail(8, "Fay <fay@example.org>", "other account", "Zanzibar, third\r\n"),
                      flags="S")


def _screen(app) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def _list_text(app) -> list[str]:
    hl = app.screen.hlist
    return [r.subject for r in hl.source.rows(list(hl.uids)).values()] if hl.source is not None else [
        hl.store.row(hl.folder_id, u).subject for u in hl.uids]


async def _settle(pilot, app, t: float = 0.3) -> None:
    await pilot.pause(t)
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _until(pilot, app, cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        await _settle(pilot, app, 0.1)


async def _type(pilot, text: str) -> None:
    from tuimail.ui.widgets.line_prompt import LinePrompt
    await _until(pilot, pilot.app, lambda: isinstance(pilot.app.screen, LinePrompt), 5)
    for ch in text:
        await pilot.press({" ": "space", "~": "tilde"}.get(ch, ch))
    await pilot.press("enter")


def _app(config_path, accounts=("test",)):
    cfg = load_config(config_path)
    stores = {a: Store(paths.account_store_path(a)) for a in accounts}
    services = {a: ImapService(cfg, cfg.account(a)) for a in accounts}
    return TuimailApp(cfg, stores, services, clock=lambda: NOW, tz=UTC), stores


def test_limit_to_unread_mail_from_one_sender_and_back(tuimail_env, mailuser, capsys):
    _fill(mailuser)
    config = tuimail_env.write_config(mailuser.config_toml())
    Cli(config, capsys)("sync")
    app, stores = _app(config)

    async def go():
        async with app.run_test(size=(160, 40), notifications=True) as pilot:
            await _settle(pilot, app)
            assert len(app.screen.hlist.uids) == 6
            await pilot.press("l")
            await _type(pilot, "~f haddad ~U")
            await _settle(pilot, app)
            assert sorted(_list_text(app)) == ["budget draft", "lunch?"]
            screen = _screen(app)
            assert "limit: ~f haddad ~U (2 of 6)" in screen
            assert "budget draft" in screen and "holiday" not in screen and "budget final" not in screen
            # a malformed pattern: one line at the bad token, the limit stays as it was
            await pilot.press("l")
            await _type(pilot, "~f haddad ~Y")
            await _settle(pilot, app)
            toasts = [n.message for n in app._notifications]
            assert any("▶~Y" in t and "column 11" in t for t in toasts), toasts
            assert sorted(_list_text(app)) == ["budget draft", "lunch?"]
            # `l` and Enter alone: the whole folder again
            await pilot.press("l")
            await _type(pilot, "")
            await _settle(pilot, app)
            assert len(app.screen.hlist.uids) == 6 and "limit:" not in _screen(app)
            # `/` moves the cursor to the next match, and `.` on, wrapping
            await pilot.press("g", "slash")
            await _type(pilot, "~s notes")
            await _settle(pilot, app)
            assert app.screen.hlist.current_row().subject == "notes"
            await pilot.press("/")
            await _type(pilot, "nobody-at-all")
            await _settle(pilot, app)
            assert any("not found: nobody-at-all" in n.message for n in app._notifications)
            assert app.screen.hlist.current_row().subject == "notes"  # (the cursor stays)

    try:
        asyncio.run(go())
    finally:
        for s in stores.values():
            s.close()


def test_search_all_folders_of_two_accounts_finds_a_body_word_and_acts_on_a_result(
        tuimail_env, dovecot, mailuser, capsys):
    other = dovecot.add_user()
    _fill(mailuser, other)
    text = (mailuser.config_toml("test") + "\n" + other.config_toml("other")
            + '\n[searches]\n"unread haddad" = "~f haddad ~U"\n')
    config = tuimail_env.write_config(text)
    Cli(config, capsys)("sync")
    app, stores = _app(config, ("test", "other"))

    async def go():
        async with app.run_test(size=(160, 40), notifications=True) as pilot:
            await _until(pilot, app, lambda: "unread haddad 2" in _screen(app))
            assert "unread haddad 2" in _screen(app)  # the saved search, counted
            # a body-only word, across folders and accounts: online, the servers are asked
            await pilot.press("S")
            await _type(pilot, "~b zanzibar")
            await _until(pilot, app, lambda: app.screen.hlist.source is not None)
            hl = app.screen.hlist
            assert hl.source is not None
            found = sorted((e.account, e.folder) for e in (hl.source.entry(k) for k in hl.uids))
            assert found == [("other", "INBOX"), ("test", "Archive"), ("test", "INBOX")], found
            screen = _screen(app)
            assert "search: ~b zanzibar (3 found)" in screen and "/ ~b zanzibar" in screen
            # `/` in the results: the cursor goes to the match, wherever it is
            await pilot.press("slash")
            await _type(pilot, "~s old")
            await _settle(pilot, app)
            assert hl.source.entry(hl.uids[hl.cursor]).folder == "Archive"
            assert "[test:Archive] old notes" in _screen(app)
            # flag the one in the other account's INBOX: the flag reaches that server
            at = next(k for k in hl.uids if hl.source.entry(k).account == "other")
            hl.move_cursor(list(hl.uids).index(at))
            await pilot.press("F")
            await _settle(pilot, app)
            assert "\\Flagged" in hl.current_row().flags or "flagged" in hl.current_row().flags
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if "\\Flagged" in server_state(other)["<f8@example.org>"]:
                    break
                await pilot.pause(0.2)
            assert "\\Flagged" in server_state(other)["<f8@example.org>"]
            # open a result: it is read from its own folder and account
            await pilot.press("enter")
            await _settle(pilot, app)
            assert "Zanzibar, third" in _screen(app)
            # move the result in the first account's INBOX to Kept: it goes there on the server
            await pilot.press("tab")
            hl = app.screen.hlist
            entries = {k: hl.source.entry(k) for k in hl.uids}
            at = next(k for k, e in entries.items() if (e.account, e.folder) == ("test", "INBOX"))
            hl.move_cursor(list(hl.uids).index(at))
            hl.focus()
            await pilot.press("s")
            await _until(pilot, app, lambda: type(app.screen).__name__ == "PickerScreen", 5)
            for ch in "Kept":
                await pilot.press(ch)
            await pilot.press("enter")
            await _settle(pilot, app)
            assert len(hl.uids) == 2  # (the row left the results at once)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "<f5@example.org>" not in server_state(mailuser, "Kept"):
                await pilot.pause(0.2)
            assert "<f5@example.org>" in server_state(mailuser, "Kept")
            assert "<f5@example.org>" not in server_state(mailuser, "INBOX")
            # the saved search's count follows a flag change (one of Haddad's read in INBOX)
            app.screen.open_folder("test", stores["test"].folder_id("INBOX"))
            await _settle(pilot, app)
            hl = app.screen.hlist
            idx = next(i for i, u in enumerate(hl.uids)
                       if hl.store.row(hl.folder_id, u).subject == "budget draft")
            hl.move_cursor(idx)
            hl.focus()
            await pilot.press("N")
            deadline = time.monotonic() + 5
            while "unread haddad 1" not in _screen(app) and time.monotonic() < deadline:
                await _settle(pilot, app, 0.3)
            assert "unread haddad 1" in _screen(app)

    try:
        asyncio.run(go())
    finally:
        for s in stores.values():
            s.close()


def test_limit_on_a_body_word_asks_the_server_online_and_says_what_it_could_not_decide_offline(
        tuimail_env, mailuser, capsys):
    _fill(mailuser)
    config = tuimail_env.write_config(mailuser.config_toml())
    Cli(config, capsys)("sync")  # (headers only: no body is cached)
    async def go(app, offline: bool):
        async with app.run_test(size=(160, 40), notifications=True) as pilot:
            await _settle(pilot, app)
            await pilot.press("l")
            await _type(pilot, "~b zanzibar")
            await _settle(pilot, app)
            toasts = [n.message for n in app._notifications]
            if offline:
                assert _list_text(app) == [] and "limit: ~b zanzibar (0 of 6)" in _screen(app)
                assert any(t.startswith("offline: ~b zanzibar not decided for 6 messages") for t in toasts), toasts
            else:
                assert _list_text(app) == ["notes"] and "limit: ~b zanzibar (1 of 6)" in _screen(app)
                assert not toasts, toasts

    for offline in (False, True):
        app, stores = _app(config)
        app.offline = offline
        try:
            asyncio.run(go(app, offline))
        finally:
            for s in stores.values():
                s.close()
