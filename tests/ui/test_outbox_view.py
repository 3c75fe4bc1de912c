"""The Outbox in the app (issue #12 item 5): a message the server refused (5xx from the scripted
SMTP server, tests/support/smtpserver.py) waits in the Outbox section of the `!` list, where the
user reads it, retries it, edits it (it goes back through $EDITOR and the review screen and
replaces the entry) or discards it (asks; its text is kept in a file). The app's real Sender and
store; the SMTP server is real sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.dovecot import submission_installed
from tests.support.smtpserver import ScriptedSMTP, free_port
from tuimail.backends.send import Sender
from tuimail.config.load import parse_config
from tuimail.store.outbox import Outbox
from tuimail.store.postponed import Postponed
from tuimail.ui.screens.failed import ActionsScreen
from tuimail.ui.screens.modals import ConfirmScreen, TextScreen
from tuimail.ui.screens.review import ReviewScreen

from .fixtures import FakeService, screen_text
try:  # aiosmtpd: the sink Dovecot's submission relays to (the test extra)
    from tests.integration import test_outbox_servers as servers
except pytest.skip.Exception:  # (it skips itself without aiosmtpd)
    servers = None
from .test_compose import ADD_TEXT_AND_BCC, ORIGINAL, _config, _editor, _until, _wire

REFUSAL = "554 5.6.0 message refused by policy"

# the editor: the first time it writes the reply; given the Outbox's message, it changes the day
EDIT_OR_WRITE = """
    import sys
    p = sys.argv[1]
    text = open(p, encoding="utf-8").read()
    if "See you there." in text:
        text = text.replace("See you there.", "See you on Saturday.")
    else:
        head, _, body = text.partition("\\n\\n")
        head = head.replace("Bcc: ", "Bcc: secret@example.net")
        text = head + "\\n\\nSee you there.\\n\\n" + body
    open(p, "w", encoding="utf-8").write(text)
"""

@pytest.fixture
def smtp():
    with ScriptedSMTP() as s:
        yield s


QUIT_EDITOR = """
    import sys
    sys.exit(1)
"""


async def _refused(pilot, app, store, smtp) -> None:
    """Reply, send; the server refuses the message at DATA: it waits, failed, in the outbox."""
    smtp.answer("DATA", REFUSAL)
    _wire(app, store, smtp)
    await pilot.press("r")
    await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
    await pilot.press("y")
    await _until(pilot, lambda: [e.state for e in Outbox(store.db).entries()] == ["failed"])


async def _outbox_list(pilot, app) -> ActionsScreen:
    app.main.hlist.focus()
    await pilot.press("!")
    await _until(pilot, lambda: isinstance(app.screen, ActionsScreen) and "Outbox (" in screen_text(app))
    return app.screen


def test_a_refused_message_waits_in_the_outbox_shown_then_retried(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(140, 36)) as pilot:
            await pilot.pause()
            await _refused(pilot, app, store, smtp)
            # the status line says what the server said and where the message waits
            await _until(pilot, lambda: "in the Outbox: ! then e edit" in app.main.status.info.flash)
            flash = app.main.status.info.flash
            assert REFUSAL in flash and flash.index(REFUSAL) < flash.index("in the Outbox")
            assert "in the Outbox: ! then e edit, r retry, d discard" in screen_text(app).splitlines()[-1]
            # the status bar counts it once the line is gone
            app.main.status.info.flash = ""
            app.main.update_status()
            await _until(pilot, lambda: "Outbox 1, 1 failed" in screen_text(app).splitlines()[-1])

            await _outbox_list(pilot, app)
            text = screen_text(app)
            assert "Outbox (1)" in text and "to alice@example.org" in text and "Re: Plans for Friday" in text
            assert f"failed: 127.0.0.1:{smtp.port} refused DATA: {REFUSAL}" in text
            assert "e edit  r retry  d discard  Enter show" in text

            await pilot.press("enter")  # the message as written
            await _until(pilot, lambda: isinstance(app.screen, TextScreen))
            text = screen_text(app)
            assert "See you there." in text and "Bcc: secret@example.net" in text and "State: failed: " in text
            await pilot.press("escape")
            await _until(pilot, lambda: isinstance(app.screen, ActionsScreen))

            await pilot.press("r")  # the server takes it this time; the list follows the drain
            await _until(pilot, lambda: len(smtp.messages) == 1)
            await _until(pilot, lambda: "Nothing waiting, nothing failed." in screen_text(app))
            assert "sending now: Re: Plans for Friday" in screen_text(app)

    asyncio.run(go())
    assert Outbox(store.db).entries() == []
    assert b"See you there." in smtp.messages[0].data


def test_edit_from_the_outbox_replaces_the_message_nothing_doubles(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, EDIT_OR_WRITE)
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(140, 36)) as pilot:
            await pilot.pause()
            await _refused(pilot, app, store, smtp)
            (old,) = Outbox(store.db).entries()
            await _outbox_list(pilot, app)
            await pilot.press("e")  # $EDITOR on its text, then the review screen
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            assert session.instead_of == ("outbox", old.id)
            assert "See you on Saturday." in session.path.read_text()
            d = session.draft
            assert d.to == "Alice Example <alice@example.org>" and d.bcc == "secret@example.net"
            assert d.in_reply_to == "<orig@example.org>" and d.subject == "Re: Plans for Friday"
            await pilot.press("y")
            await _until(pilot, lambda: len(smtp.messages) == 1)
            await _until(pilot, lambda: Outbox(store.db).entries() == [])

    asyncio.run(go())
    (got,) = smtp.messages
    assert b"See you on Saturday." in got.data and b"See you there." not in got.data
    assert b"In-Reply-To: <orig@example.org>" in got.data
    assert sorted(got.rcpts) == ["alice@example.org", "secret@example.net"]


def test_quitting_the_editor_keeps_the_message_and_discard_asks_and_keeps_its_text(make_app, tmp_path,
                                                                                    monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(140, 36)) as pilot:
            await pilot.pause()
            await _refused(pilot, app, store, smtp)
            (old,) = Outbox(store.db).entries()
            _editor(tmp_path, monkeypatch, QUIT_EDITOR)
            await _outbox_list(pilot, app)
            await pilot.press("e")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            assert "exited with status 1" in app.screen.session.error
            await pilot.press("q")  # discard this edit (asks)
            await _until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await _until(pilot, lambda: not isinstance(app.screen, (ConfirmScreen, ReviewScreen)))
            await _until(pilot, lambda: "still waits in the Outbox" in " ".join(
                n.message for n in app._notifications))
            assert [(e.id, e.state) for e in Outbox(store.db).entries()] == [(old.id, "failed")]

            await _outbox_list(pilot, app)
            await pilot.press("d")  # asks; n keeps it
            await _until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "its text is kept in a file" in screen_text(app)
            await pilot.press("n")
            await _until(pilot, lambda: isinstance(app.screen, ActionsScreen))
            await pilot.pause(0.2)
            assert len(Outbox(store.db).entries()) == 1
            await pilot.press("d")
            await _until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await _until(pilot, lambda: "Nothing waiting, nothing failed." in screen_text(app))
            return app.screen.query_one(".note").render().plain

    note = asyncio.run(go())
    assert Outbox(store.db).entries() == [] and smtp.messages == []
    assert note.startswith("discarded, not sent; its text is kept in ")
    kept = Path(note.split("kept in ", 1)[1].strip())
    assert kept.parent.name == "discarded" and str(kept).startswith(str(tmp_path))  # (HOME)
    assert kept.stat().st_mode & 0o777 == 0o600
    data = kept.read_bytes()
    assert b"See you there." in data and b"Bcc: secret@example.net" in data


def test_offline_the_outbox_says_it_waits_for_the_network(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL), offline=True)

    async def go():
        async with app.run_test(size=(140, 36)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            await pilot.press("y")
            await _until(pilot, lambda: len(Outbox(store.db).entries()) == 1)
            await _outbox_list(pilot, app)
            text = screen_text(app)
            assert "waiting" in text and "waiting for the network (ctrl+o: back online)" in text
            assert smtp.messages == []

    asyncio.run(go())


@pytest.mark.skipif(servers is None or not submission_installed(),
                    reason="aiosmtpd, or Dovecot's submission service, is not installed: `make dovecot`")
def test_refused_through_dovecot_submission_then_retried_and_filed_in_sent(make_app, dovecot_factory, tuimail_env,
                                                                           tmp_path, monkeypatch):
    """The real round trip: Dovecot's submission service relays to an aiosmtpd sink that refuses
    the first time; the Outbox shows Dovecot's answer; r sends it and the Sent copy is filed on
    the same Dovecot."""
    sink = servers.Sink()
    sink.port = free_port()
    controller = servers.Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        server = dovecot_factory(submission_relay=sink.port)
        user = server.add_user(password="secret")
        text = user.config_toml(**{"from": f"Tester <{user.name}@example.org>", "undo_send": 0})
        text += f'[accounts.test.smtp]\nhost = "127.0.0.1"\nport = {server.submission_port}\nsecurity = "none"\n'
        cfg = parse_config(text, tmp_path / "config.toml")
        _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
        app, store, svc = make_app(5, config=cfg, service=FakeService(raw=ORIGINAL))
        sink.script["DATA"] = ["554 5.7.1 refused by the relay's policy"]

        async def go():
            async with app.run_test(size=(140, 36)) as pilot:
                await pilot.pause()
                app.main.compose_ctl.make_sender = lambda account: Sender(cfg, account, store_path=store.path)
                await pilot.press("r")
                await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
                await pilot.press("y")
                await _until(pilot, lambda: "in the Outbox: ! then e edit" in app.main.status.info.flash, 20)
                await _outbox_list(pilot, app)
                text = screen_text(app)
                assert "failed: " in text and "554" in text and "Re: Plans for Friday" in text
                await pilot.press("r")
                await _until(pilot, lambda: "Nothing waiting, nothing failed." in screen_text(app), 20)

        asyncio.run(go())
    finally:
        controller.stop()
    ((_f, rcpts, data),) = sink.messages
    assert sorted(rcpts) == ["alice@example.org", "secret@example.net"] and b"secret@example.net" not in data
    (copy,) = servers.sent_copies(user)
    assert b"See you there." in copy and b"Bcc: secret@example.net" in copy
    assert Outbox(store.db).entries() == []


def test_held_for_undo_is_listed_and_left_to_u_a_postponed_one_is_listed_and_discarded(make_app, tmp_path,
                                                                                       monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(30), service=FakeService(raw=ORIGINAL), offline=True)
    Postponed(store.db).add(b"From: me@example.org\r\nTo: carol@example.org\r\nSubject: Half a thought\r\n\r\nhm\r\n",
                            "Drafts", subject="Half a thought")

    async def go():
        async with app.run_test(size=(140, 36)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            await pilot.press("y")
            await _until(pilot, lambda: "u to undo" in app.main.status.info.flash)
            screen = await _outbox_list(pilot, app)
            text = screen_text(app)
            assert "Outbox (2)" in text and "held for undo until" in text
            assert "postponed" in text and "to carol@example.org" in text and "waiting to be stored in Drafts" in text
            screen.query_one("OptionList").highlighted = 2  # (the header, the postponed one, the held one)
            await pilot.press("d")
            await _until(pilot, lambda: "u takes it back" in screen_text(app))
            assert not isinstance(app.screen, ConfirmScreen) and len(Outbox(store.db).entries()) == 1
            await pilot.press("up", "d")
            await _until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await _until(pilot, lambda: "Outbox (1)" in screen_text(app))
            assert "discarded, not sent; its text is kept in " in screen_text(app)

    asyncio.run(go())
    assert Postponed(store.db).count() == 0 and len(Outbox(store.db).entries()) == 1 and smtp.messages == []


def test_a_message_left_failed_by_an_earlier_run_is_counted_in_the_status_bar(make_app):
    app, store, svc = make_app(5, config=_config(0))
    ob = Outbox(store.db)
    ob.fail(ob.add(ORIGINAL, "me@example.org", ["alice@example.org"], subject="Plans"), "550 5.1.1 no such user")

    async def go():
        async with app.run_test(size=(140, 36)) as pilot:
            await _until(pilot, lambda: "Outbox 1, 1 failed" in screen_text(app).splitlines()[-1])
            await _outbox_list(pilot, app)
            assert "failed: 550 5.1.1 no such user" in screen_text(app)

    asyncio.run(go())
