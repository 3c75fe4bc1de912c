"""Writing mail from the app (issue #12): reply with a scripted $EDITOR, the review screen, send
through the outbox to a scripted SMTP server (tests/support/smtpserver.py), undo within the
window, a parse error that keeps the text. The service is the UI tests' fake (it hands over the
original's raw bytes); the Sent copy is filed by backends/send.py, tested against Dovecot and
the demo in tests/integration (test_outbox_servers.py, test_demo_smtp.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import textwrap

import pytest

from tests.support.smtpserver import ScriptedSMTP
from tuimail.backends.send import Sender
from tuimail.config.model import Account, Config, UIConfig
from tuimail.protocol.smtp import SmtpSettings
from tuimail.store.outbox import Outbox
from tuimail.store.postponed import Postponed
from tuimail.ui.screens.review import ReviewScreen

from .fixtures import FakeService, screen_text

ORIGINAL = (
    b"From: Alice Example <alice@example.org>\r\n"
    b"To: Me <me@example.org>\r\n"
    b"Cc: bob@example.org\r\n"
    b"Subject: Plans for Friday\r\n"
    b"Date: Fri, 15 Mar 2024 11:00:00 +0000\r\n"
    b"Message-ID: <orig@example.org>\r\n"
    b"References: <root@example.org>\r\n"
    b"\r\n"
    b"Shall we meet at noon?\r\n"
)


class NoSentCopy(Sender):
    save_sent = False  # type: ignore[assignment]  # the fake service has no IMAP Sent folder


def _config(undo: float) -> Config:
    acc = Account(name="test", kind="imap", host="localhost", port=143, security="none", username="me",
                  password="x", from_address="Me <me@example.org>", undo_send=undo)
    return Config(accounts={"test": acc}, ui=UIConfig(theme="dark"))


def _editor(tmp_path, monkeypatch, body: str) -> None:
    """$EDITOR: a python script (run as an argument list, no shell) that edits the file in place."""
    script = tmp_path / "editor.py"
    script.write_text(textwrap.dedent(body))
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")


ADD_TEXT_AND_BCC = """
    import sys
    p = sys.argv[1]
    text = open(p, encoding="utf-8").read()
    head, _, body = text.partition("\\n\\n")
    head = head.replace("Bcc: ", "Bcc: secret@example.net")
    open(p, "w", encoding="utf-8").write(head + "\\n\\nSee you there.\\n\\n" + body)
"""


@pytest.fixture
def smtp():
    with ScriptedSMTP() as s:
        yield s


def _wire(app, store, smtp) -> None:
    def make(account):
        return NoSentCopy(None, account, store_path=store.path,
                          settings=SmtpSettings("127.0.0.1", smtp.port, "none", timeout=5))

    app.main.compose_ctl.make_sender = make


async def _until(pilot, cond, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out")


def test_reply_in_the_editor_is_sent_without_bcc(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0.3), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            review = app.screen
            session = review.session
            assert session.error == "" and session.path.stat().st_mode & 0o777 == 0o600
            assert session.path.parent.stat().st_mode & 0o777 == 0o700
            d = session.draft
            assert d.to == "Alice Example <alice@example.org>" and d.subject == "Re: Plans for Friday"
            assert d.bcc == "secret@example.net"
            await pilot.press("y")
            await _until(pilot, lambda: "sending in" in app.main.status.info.flash)
            await _until(pilot, lambda: len(smtp.messages) == 1)
            await _until(pilot, lambda: not session.path.exists())
            return session

    asyncio.run(go())
    (got,) = smtp.messages
    assert got.mail_from == "me@example.org"
    assert sorted(got.rcpts) == ["alice@example.org", "secret@example.net"]
    data = got.data
    assert b"\r\nBcc:" not in data and b"secret@example.net" not in data
    assert b"In-Reply-To: <orig@example.org>" in data
    assert b"References: <root@example.org> <orig@example.org>" in data.replace(b"\r\n ", b" ")
    assert b"Subject: Re: Plans for Friday" in data
    assert b"See you there." in data and b"> Shall we meet at noon?" in data
    assert b"On Fri, 15 Mar 2024 11:00 +0000, Alice Example <alice@example.org> wrote:" in data
    assert Outbox(store.db).entries() == []


def test_undo_within_the_window_sends_nothing_and_brings_the_review_back(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(30), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            await pilot.press("y")
            await _until(pilot, lambda: "u to undo" in app.main.status.info.flash)
            assert len(Outbox(store.db).entries()) == 1
            await pilot.press("u")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            assert app.screen.session is session and "undone" in session.error
            assert Outbox(store.db).entries() == [] and session.path.exists()
            assert "See you there." in session.path.read_text()
            await pilot.press("q")  # discard asks
            await pilot.pause()
            await pilot.press("y")
            await _until(pilot, lambda: not session.path.exists())

    asyncio.run(go())
    assert smtp.messages == []


def test_u_undoes_the_most_recent_thing_an_action_after_the_send_first(make_app, tmp_path, monkeypatch, smtp):
    """One `u` for the undo history and the send (controllers/undo.py): a flag made while the
    message waits in its window is undone first, the next `u` takes the send back."""
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(30), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            main = app.main
            await pilot.press("N")  # before the send: read / unread
            await _until(pilot, lambda: len(store.undo.history()) == 1)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            await pilot.press("y")
            await _until(pilot, lambda: "u to undo" in main.status.info.flash)
            await pilot.press("F")  # after the send
            await _until(pilot, lambda: len(store.undo.history()) == 2)
            await pilot.press("u")
            await _until(pilot, lambda: main.status.info.flash.startswith("undone: "))
            assert "flagged 1 message" in main.status.info.flash
            assert len(Outbox(store.db).entries()) == 1  # the send still waits
            await pilot.press("u")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            assert app.screen.session is session and "undone" in session.error
            assert [e.state for e in store.undo.history()] == ["undone", "done"]  # the N stays
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("y")
            await _until(pilot, lambda: not session.path.exists())

    asyncio.run(go())
    assert smtp.messages == []


BAD_HEADER = """
    import sys
    p = sys.argv[1]
    text = open(p, encoding="utf-8").read()
    open(p, "w", encoding="utf-8").write("Date: tomorrow\\n" + text + "\\nMy precious text.\\n")
"""


def test_a_parse_error_is_one_line_and_keeps_the_text(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, BAD_HEADER)
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            assert "line 1: the Date header cannot be set here" in session.error and "\n" not in session.error
            assert not session.parsed and "My precious text." in session.path.read_text()
            await pilot.press("y")  # refused: back on the review, nothing queued
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            await pilot.pause(0.2)
            assert Outbox(store.db).entries() == [] and "My precious text." in session.path.read_text()
            session.remove()

    asyncio.run(go())
    assert smtp.messages == []


def test_compose_without_a_sender_address_is_one_line(make_app):
    config = _config(0)
    acc = dataclasses.replace(config.accounts["test"], from_address=None)
    app, store, svc = make_app(5, config=dataclasses.replace(config, accounts={"test": acc}))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            await pilot.press("m")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ReviewScreen)
            return [n.message for n in app._notifications]

    notes = asyncio.run(go())
    assert any("no sender address" in n for n in notes)


def test_offline_the_message_waits_and_leaves_when_the_app_goes_online(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL), offline=True)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            review = app.screen
            assert "p postpone" not in review.hint_text() and "no postpone" in review.hint_text()
            await pilot.press("y")
            await _until(pilot, lambda: "test" in app.main.compose_ctl.drainers)
            await pilot.pause(0.5)
            assert smtp.messages == [] and len(Outbox(store.db).entries()) == 1  # kept, durable
            await pilot.press("ctrl+o")  # online: the drain goes at once
            await _until(pilot, lambda: len(smtp.messages) == 1)
            await _until(pilot, lambda: Outbox(store.db).entries() == [])

    asyncio.run(go())


class AppendingService(FakeService):
    """A service that can store messages (capabilities.append): postpone is offered."""

    capabilities = dataclasses.replace(FakeService.capabilities, append=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.appended: list[tuple[str, bytes, tuple]] = []

    def append(self, folder, raw, flags=()):
        self.appended.append((folder, raw, tuple(flags)))


NEW_MESSAGE = """
    import sys
    p = sys.argv[1]
    text = open(p, encoding="utf-8").read()
    head, _, body = text.partition("\\n\\n")
    head = head.replace("To: ", "To: carol@example.org").replace("Subject: ", "Subject: Draft idea")
    open(p, "w", encoding="utf-8").write(head + "\\nAttach: " + sys.argv[0] + "\\n\\nHalf a thought.\\n")
"""


def test_compose_attach_and_postpone_to_drafts(make_app, tmp_path, monkeypatch, smtp):
    """p on the review screen keeps the message in the store (durable, offline too) for the drain
    to store in Drafts (tests/integration/test_postpone_dovecot.py: against Dovecot)."""
    _editor(tmp_path, monkeypatch, NEW_MESSAGE)
    svc = AppendingService()
    app, store, _svc = make_app(5, config=_config(0), service=svc)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("m")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            review = app.screen
            session = review.session
            assert session.error == "" and "p postpone" in review.hint_text()
            assert [a.filename for a in session.draft.attachments] == ["editor.py"]
            assert "Attach:" not in session.path.read_text()  # consumed: not attached twice on e
            assert "Half a thought." in screen_text(app)  # the text under the headers
            await pilot.press("p")
            await _until(pilot, lambda: not session.path.exists())
            await _until(pilot, lambda: any("postponed" in n.message for n in app._notifications))

    asyncio.run(go())
    (entry,) = Postponed(store.db).entries()
    assert entry.folder == "Drafts" and entry.subject == "Draft idea" and entry.message_id
    raw = entry.message
    assert b"Subject: Draft idea" in raw and b"Half a thought." in raw and b'filename="editor.py"' in raw
    assert smtp.messages == [] and Outbox(store.db).entries() == []


def test_forward_as_attachment_has_no_default_key_and_can_be_bound(make_app, tmp_path, monkeypatch):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)  # (Bcc filled: a recipient)
    config = dataclasses.replace(_config(0), keys={"forward_attached": ("W",)})
    app, store, svc = make_app(5, config=config, service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            await pilot.press("W")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            session.remove()
            return session.draft

    draft = asyncio.run(go())
    assert draft.subject == "Fwd: Plans for Friday"
    (att,) = draft.attachments
    assert att.mimetype == "message/rfc822" and att.data == ORIGINAL


def test_send_without_an_smtp_table_stays_on_the_review(make_app, tmp_path, monkeypatch):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            await pilot.press("y")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen) and "smtp" in session.error)
            assert "no [accounts.test.smtp] table" in session.error and session.path.exists()
            assert Outbox(store.db).entries() == []
            session.remove()

    asyncio.run(go())


DRAFT = (b"From: Me <me@example.org>\r\nTo: carol@example.org\r\nBcc: boss@example.org\r\nSubject: Half done\r\n"
         b"In-Reply-To: <orig@example.org>\r\nReferences: <orig@example.org>\r\n\r\nTo be continued.\r\n")


def test_resume_draft_edits_it_again_and_the_queued_message_replaces_it(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, "import sys\nopen(sys.argv[1], 'a').write('Now done.\\n')\n")
    config = dataclasses.replace(_config(30), keys={"resume_draft": ("W",)})
    app, store, svc = make_app(5, config=config, service=FakeService(raw=DRAFT))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            uid = app.main.hlist.current_uid
            sid = store.sid_of([uid])[uid]
            await pilot.press("W")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session = app.screen.session
            d = session.draft
            assert (d.to, d.subject, d.in_reply_to) == ("carol@example.org", "Half done", "<orig@example.org>")
            assert session.draft_ref == ("INBOX", sid)
            await pilot.press("y")
            await _until(pilot, lambda: len(Outbox(store.db).entries()) == 1)
            (entry,) = Outbox(store.db).entries()
            assert (entry.draft_folder, entry.draft_sid) == ("INBOX", sid)
            await pilot.press("u")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            session.remove()

    asyncio.run(go())
    assert smtp.messages == []


def test_the_status_bar_counts_the_undo_window_down_then_says_sent(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(2.5), service=FakeService(raw=ORIGINAL))
    seen: list[str] = []

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            await pilot.press("y")

            def note() -> bool:
                text = screen_text(app)
                for line in text.splitlines():
                    if "sending in" in line or "sent:" in line:
                        seen.append(" ".join(line.split()))
                return "sent: Re: Plans for Friday" in text

            await _until(pilot, note)

    asyncio.run(go())
    counts = list(dict.fromkeys(s.split("sending in ")[1].split(" s")[0] for s in seen if "sending in" in s))
    # it counts down (a loaded machine may skip a second between two looks, never go up)
    assert counts[0] == "3" and len(counts) >= 2 and counts == sorted(counts, reverse=True), seen
    assert any("sending in 3 s — u to undo" in s for s in seen)
    assert len(smtp.messages) == 1


def test_a_refused_send_shows_the_servers_line_in_the_status_bar(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0.3), service=FakeService(raw=ORIGINAL))
    smtp.answer("DATA", "554 5.6.0 message refused by policy")

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            await pilot.press("y")
            await _until(pilot, lambda: "failed:" in app.main.status.info.flash)
            return app.main.status.info.flash

    flash = asyncio.run(go())
    assert "554 5.6.0 message refused by policy" in flash and "\n" not in flash
    (entry,) = Outbox(store.db).entries()
    assert entry.state == "failed"


def test_recipients_complete_from_the_store_and_the_aliases(make_app, tmp_path, monkeypatch):
    from textual.widgets import Input, OptionList

    from tuimail.ui.screens.recipients import RecipientsPrompt

    _editor(tmp_path, monkeypatch, "pass\n")
    config = dataclasses.replace(_config(0), aliases={"team": "Heidi Klum <heidi@example.org>, eve@example.org"})
    app, store, svc = make_app(40, config=config)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            await pilot.press("m")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            review = app.screen
            await pilot.press("t")
            await _until(pilot, lambda: isinstance(app.screen, RecipientsPrompt))
            prompt = app.screen
            await pilot.press(*"gra")
            await _until(pilot, lambda: "Grace Hopper <grace@example.org>" in screen_text(app))
            assert "5 messages" in screen_text(app)  # (40 rows, 8 senders: how often each was seen)
            await pilot.press("down", "enter")  # the first match replaces what was typed
            await _until(pilot, lambda: prompt.query_one(Input).value == "Grace Hopper <grace@example.org>, ")
            await pilot.press(*"tea")
            await _until(pilot, lambda: prompt.query_one("#matches", OptionList).option_count == 1)
            assert "alias team" in screen_text(app)
            await pilot.press("down", "enter", "enter")
            await _until(pilot, lambda: app.screen is review)
            session = review.session
            assert session.draft.to == ("Grace Hopper <grace@example.org>, Heidi Klum <heidi@example.org>,"
                                        " eve@example.org")
            assert "To: Grace Hopper <grace@example.org>, Heidi Klum" in session.path.read_text()
            assert session.error == "" and "Grace Hopper" in screen_text(app)
            await pilot.press("s")
            await pilot.pause()
            await pilot.press(*"Plans", "enter")
            await _until(pilot, lambda: review.session.draft.subject == "Plans")
            session.remove()

    asyncio.run(go())


def test_a_bad_recipient_typed_on_the_review_is_one_line_and_not_sent(make_app, tmp_path, monkeypatch, smtp):
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            review = app.screen
            await pilot.press("c")
            await pilot.pause()
            await pilot.press(*"bob", "enter")
            await _until(pilot, lambda: "is not an address" in review.session.error)
            assert "Cc: 'bob' is not an address" in screen_text(app)
            await pilot.press("y")  # refused: back on the review, nothing queued
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            await pilot.pause(0.2)
            assert Outbox(store.db).entries() == []
            await pilot.press("c")
            await pilot.pause()
            await pilot.press("ctrl+u", *"bob@example.net", "enter")  # (ctrl+u: clear the input)
            await _until(pilot, lambda: review.session.error == "")
            assert review.session.draft.cc == "bob@example.net"
            review.session.remove()

    asyncio.run(go())


def test_attach_prompt_completes_the_path_with_tab_and_lists_the_file(make_app, tmp_path, monkeypatch, smtp):
    """`a` on the review screen: Tab completes the path (as mutt's file prompt does) instead of
    moving the focus away; Enter attaches it and the list shows it; a path that is not a file says so."""
    _editor(tmp_path, monkeypatch, NEW_MESSAGE)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes-for-carol.txt").write_text("attachment body\n")
    app, store, _svc = make_app(5, config=_config(0))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("m")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            review = app.screen
            await pilot.press("a")
            await _until(pilot, lambda: app.screen is not review)
            for ch in str(docs / "no"):
                await pilot.press(ch)
            await pilot.pause(0.2)
            await pilot.press("tab")
            await pilot.pause(0.1)
            await pilot.press("enter")
            await _until(pilot, lambda: app.screen is review)
            names = [a.filename for a in review.session.draft.attachments]
            assert names == ["editor.py", "notes-for-carol.txt"]
            assert "notes-for-carol.txt" in screen_text(app)
            await pilot.press("a")
            await _until(pilot, lambda: app.screen is not review)
            for ch in str(docs / "missing.pdf"):
                await pilot.press(ch)
            await pilot.press("enter")
            await _until(pilot, lambda: app.screen is review)
            assert "missing.pdf: not a file" in screen_text(app)

    asyncio.run(go())


def test_sent_while_offline_the_status_bar_says_it_waits_then_it_leaves_online(make_app, tmp_path, monkeypatch,
                                                                                smtp):
    """Written on the train: the status line does not claim "sending…" while the app is offline;
    ctrl+o (back online) sends it and says so."""
    _editor(tmp_path, monkeypatch, ADD_TEXT_AND_BCC)
    app, store, svc = make_app(5, config=_config(0.2), service=FakeService(raw=ORIGINAL))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause()
            _wire(app, store, smtp)
            await pilot.press("ctrl+o")
            await pilot.press("r")
            await _until(pilot, lambda: isinstance(app.screen, ReviewScreen))
            await pilot.press("y")
            await _until(pilot, lambda: "offline: in the outbox, sent when back online" in screen_text(app))
            await pilot.pause(0.5)
            assert smtp.messages == [] and Outbox(store.db).entries()
            await pilot.press("ctrl+o")
            await _until(pilot, lambda: "sent: Re: Plans for Friday" in screen_text(app))

    asyncio.run(go())
    assert len(smtp.messages) == 1 and Outbox(store.db).entries() == []


def test_the_outbox_drains_start_with_the_first_screen(make_app):
    """Where an account has a drain (it can send, or keeps drafts): what a previous run left goes out."""
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL))
    svc.capabilities = dataclasses.replace(svc.capabilities, append=True)  # (its server keeps drafts)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await _until(pilot, lambda: app.main.made("compose_ctl") and "test" in app.main.compose_ctl.drainers)

    asyncio.run(go())


def test_no_drain_and_no_compose_controller_for_an_account_without_one(make_app):
    """The compose controller's modules cost ~20 ms of the UI thread just as a first sync is at
    its busiest: not made for an account that has no drain (a POP3 account without [smtp])."""
    app, store, svc = make_app(5, config=_config(0), service=FakeService(raw=ORIGINAL))
    svc.capabilities = dataclasses.replace(svc.capabilities, append=False)  # (no drafts on its server)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause(1.0)
            assert not app.main.made("compose_ctl")

    asyncio.run(go())
